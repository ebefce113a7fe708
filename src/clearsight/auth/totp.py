"""TOTP multi-factor authentication (RFC 6238: SHA-1, 6 digits, 30 s, as authenticator apps expect).

- ``Mfa`` (state database): enrol (a new secret and its ``otpauth://`` URI), confirm with a first code
  (which returns 10 single-use recovery codes, stored as SHA-256 of 80 random bits each), verify a code
  (one step of clock drift either way; a code's time step is never accepted twice), disable, and the
  per-organisation policy "members must use MFA".
- ``MfaChallenges`` (memory): the short-lived ``mfa_token`` a password login answers with when a second
  factor is needed, and the per-user lockout after failed codes (the password lockout's backoff).

The TOTP secret is stored as is: the server must compute codes from it, so hashing is impossible,
and encrypting it under a key kept beside the database would add nothing. Protect the state database
(file permissions, PostgreSQL access) as you protect the secrets in it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, func, select, update

from clearsight.auth.directory import lock_duration_s, now_ms
from clearsight.auth.errors import Conflict, InvalidInput, LockedOut, NotFound
from clearsight.auth.models import MfaRecoveryCode, MfaTotp, Organisation, OrgPolicy
from clearsight.auth.state import StateDb

ISSUER = "Clearsight"
STEP_S = 30
RECOVERY_CODES = 10
CHALLENGE_TTL_S = 300.0
CHALLENGE_ATTEMPTS = 5
MAX_CHALLENGES = 10_000
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o/1/l/i


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class MfaStatus:
    enabled: bool  # confirmed
    pending: bool  # enrolled, not yet confirmed
    recovery_codes_left: int


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))  # 16 x log2(31) = 79 bits
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def _valid_code(code: str) -> bool:
    return len(code) == 6 and code.isdigit()


class Mfa:
    def __init__(self, db: StateDb, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    # -- per user
    def status(self, user_id: int) -> MfaStatus:
        with self.db.session() as s:
            row = s.get(MfaTotp, user_id)
            left = s.scalar(select(func.count()).select_from(MfaRecoveryCode)
                            .where(MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_ms.is_(None)))
        return MfaStatus(bool(row and row.confirmed), bool(row and not row.confirmed), int(left or 0))

    def enabled(self, user_id: int) -> bool:
        with self.db.session() as s:
            return bool(s.scalar(select(MfaTotp.confirmed).where(MfaTotp.user_id == user_id)))

    def enrol(self, user_id: int, username: str) -> Enrolment:
        """A new, unconfirmed secret (replacing an unconfirmed one). Conflict when MFA is already on."""
        secret = pyotp.random_base32(32)
        with self.db.session() as s, s.begin():
            row = s.get(MfaTotp, user_id)
            if row is not None and row.confirmed:
                raise Conflict("MFA is already enabled: disable it first to enrol a new authenticator")
            if row is None:
                s.add(MfaTotp(user_id=user_id, secret=secret, confirmed=False, last_step=0, created_ms=now_ms()))
            else:
                row.secret, row.last_step, row.created_ms = secret, 0, now_ms()
        return Enrolment(secret, pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER))

    def confirm(self, user_id: int, code: str) -> list[str]:
        """Turns MFA on with a first valid code; returns the recovery codes (shown once)."""
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        with self.db.session() as s, s.begin():
            row = s.get(MfaTotp, user_id)
            if row is None:
                raise NotFound("no MFA enrolment: POST /api/v1/auth/mfa/enrol first")
            if row.confirmed:
                raise Conflict("MFA is already enabled")
            step = self._match(row.secret, code, row.last_step)
            if step is None:
                raise InvalidInput("wrong or expired code")
            row.confirmed, row.last_step = True, step
            s.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))
            for c in codes:
                s.add(MfaRecoveryCode(user_id=user_id, code_hash=_code_hash(c)))
        return codes

    def verify(self, user_id: int, code: str = "", recovery_code: str = "") -> bool:
        """True for a current code (not used before) or an unused recovery code (then used up)."""
        with self.db.session() as s, s.begin():
            row = s.get(MfaTotp, user_id)
            if row is None or not row.confirmed:
                return False
            if code:
                step = self._match(row.secret, code, row.last_step)
                if step is None:
                    return False
                # compare-and-set: two requests with the same code cannot both pass
                done = s.execute(update(MfaTotp).where(MfaTotp.user_id == user_id, MfaTotp.last_step < step)
                                 .values(last_step=step))
                return bool(done.rowcount)  # type: ignore[attr-defined]
            if recovery_code:
                done = s.execute(update(MfaRecoveryCode)
                                 .where(MfaRecoveryCode.user_id == user_id,
                                        MfaRecoveryCode.code_hash == _code_hash(recovery_code),
                                        MfaRecoveryCode.used_ms.is_(None))
                                 .values(used_ms=now_ms()))
                return bool(done.rowcount)  # type: ignore[attr-defined]
        return False

    def disable(self, user_id: int) -> None:
        with self.db.session() as s, s.begin():
            s.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))
            s.execute(delete(MfaTotp).where(MfaTotp.user_id == user_id))

    def _match(self, secret: str, code: str, last_step: int) -> int | None:
        """The time step ``code`` belongs to (now, or one step either side), if after ``last_step``."""
        code = code.strip().replace(" ", "")
        if not _valid_code(code):
            return None
        totp = pyotp.TOTP(secret)
        now = int(self.clock()) // STEP_S
        for step in (now, now - 1, now + 1):
            if step > last_step and hmac.compare_digest(totp.at(step * STEP_S), code):
                return step
        return None

    # -- per organisation
    def org_requires(self, org: str) -> bool:
        with self.db.session() as s:
            return bool(s.scalar(select(OrgPolicy.mfa_required).join(Organisation, Organisation.id == OrgPolicy.org_id)
                                 .where(Organisation.name == org)))

    def set_org_required(self, org: str, required: bool) -> None:
        with self.db.session() as s, s.begin():
            o = s.scalar(select(Organisation).where(Organisation.name == org))
            if o is None:
                raise NotFound(f"organisation {org!r} not found")
            row = s.get(OrgPolicy, o.id)
            if row is None:
                s.add(OrgPolicy(org_id=o.id, mfa_required=required))
            else:
                row.mfa_required = required


@dataclass
class Challenge:
    user_id: int
    username: str
    org: str
    orgs: dict[str, str]
    enrol: bool  # the organisation requires MFA and the user has none yet: enrol, then confirm
    expires: float
    attempts: int = 0


class MfaChallenges:
    """Pending second steps of logins (memory, this process) and per-user lockout after bad codes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._pending: dict[str, Challenge] = {}
        self._failures: dict[int, tuple[int, float]] = {}  # user -> (failures in a row, locked until)
        self._lock = threading.Lock()

    def create(self, user_id: int, username: str, org: str, orgs: dict[str, str], *, enrol: bool) -> str:
        token = "csm_" + secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            if len(self._pending) >= MAX_CHALLENGES:
                self._pending = {k: v for k, v in self._pending.items() if v.expires > now}
                if len(self._pending) >= MAX_CHALLENGES:
                    self._pending.pop(next(iter(self._pending)))
            self._pending[_code_hash(token)] = Challenge(user_id, username, org, orgs, enrol,
                                                         now + CHALLENGE_TTL_S)
        return token

    def get(self, token: str) -> Challenge | None:
        c = self._pending.get(_code_hash(token)) if token else None
        if c is None or c.expires <= self.clock():
            return None
        return c

    def finish(self, token: str) -> None:
        with self._lock:
            self._pending.pop(_code_hash(token), None)

    def check_locked(self, user_id: int) -> None:
        until = self._failures.get(user_id, (0, 0.0))[1]
        left = until - self.clock()
        if left > 0:
            raise LockedOut("too many wrong MFA codes: try again later", left)

    def failed(self, token: str, c: Challenge) -> None:
        with self._lock:
            c.attempts += 1
            if c.attempts >= CHALLENGE_ATTEMPTS:
                self._pending.pop(_code_hash(token), None)
            n = self._failures.get(c.user_id, (0, 0.0))[0] + 1
            self._failures[c.user_id] = (n, self.clock() + lock_duration_s(n))

    def succeeded(self, user_id: int) -> None:
        with self._lock:
            self._failures.pop(user_id, None)
