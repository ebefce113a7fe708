"""TOTP MFA state on SQLite and PostgreSQL with real codes from pyotp: enrolment, confirmation,
clock drift of one step, no code accepted twice, single-use recovery codes, organisation policy,
and the login challenges' expiry, attempt limit and lockout."""

from __future__ import annotations

import pyotp
import pytest

from clearsight.auth.directory import Directory
from clearsight.auth.errors import Conflict, InvalidInput, LockedOut, NotFound
from clearsight.auth.totp import CHALLENGE_ATTEMPTS, CHALLENGE_TTL_S, Mfa, MfaChallenges

PW = "correct horse battery staple"
T0 = 1_800_000_000.0  # a multiple of 30


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def alice(directory: Directory) -> int:
    return directory.create_user("alice", PW, "default", "admin").id


def _enrolled(directory: Directory, user: int) -> tuple[Mfa, Clock, pyotp.TOTP, list[str]]:
    clock = Clock(T0)
    mfa = Mfa(directory.db, clock=clock)
    e = mfa.enrol(user, "alice")
    assert e.otpauth_uri.startswith("otpauth://totp/Clearsight:alice?secret=" + e.secret)
    totp = pyotp.TOTP(e.secret)
    codes = mfa.confirm(user, totp.at(T0))
    return mfa, clock, totp, codes


def test_enrol_confirm_and_verify_real_codes(directory: Directory, alice: int) -> None:
    mfa = Mfa(directory.db, clock=Clock(T0))
    assert not mfa.status(alice).enabled and not mfa.enabled(alice)
    e = mfa.enrol(alice, "alice")
    assert mfa.status(alice).pending and not mfa.enabled(alice)
    assert not mfa.verify(alice, pyotp.TOTP(e.secret).at(T0))  # not confirmed yet
    with pytest.raises(InvalidInput):
        mfa.confirm(alice, "000000" if pyotp.TOTP(e.secret).at(T0) != "000000" else "111111")
    codes = mfa.confirm(alice, pyotp.TOTP(e.secret).at(T0))
    assert len(codes) == 10 and len(set(codes)) == 10 and all(len(c) == 19 for c in codes)
    st = mfa.status(alice)
    assert st.enabled and not st.pending and st.recovery_codes_left == 10
    with pytest.raises(Conflict):
        mfa.enrol(alice, "alice")
    with pytest.raises(Conflict):
        mfa.confirm(alice, pyotp.TOTP(e.secret).at(T0))


def test_a_code_is_accepted_once_and_within_one_step(directory: Directory, alice: int) -> None:
    mfa, clock, totp, _ = _enrolled(directory, alice)
    assert not mfa.verify(alice, totp.at(T0))  # the step used to confirm
    clock.t = T0 + 31
    assert mfa.verify(alice, totp.at(T0 + 30))
    assert not mfa.verify(alice, totp.at(T0 + 30))  # replayed
    assert mfa.verify(alice, totp.at(T0 + 60))  # one step ahead (drift)
    clock.t = T0 + 300
    assert not mfa.verify(alice, totp.at(T0 + 200))  # too old
    assert not mfa.verify(alice, totp.at(T0 + 400))  # too far ahead
    assert mfa.verify(alice, totp.at(T0 + 270))  # one step behind
    for bad in ("", "12345", "1234567", "abcdef", " "):
        assert not mfa.verify(alice, bad)


def test_recovery_codes_are_single_use(directory: Directory, alice: int) -> None:
    mfa, _, _, codes = _enrolled(directory, alice)
    assert mfa.verify(alice, recovery_code=codes[0].upper())  # case and dashes do not matter
    assert not mfa.verify(alice, recovery_code=codes[0])
    assert mfa.verify(alice, recovery_code=codes[1].replace("-", ""))
    assert not mfa.verify(alice, recovery_code="aaaa-bbbb-cccc-dddd")
    assert mfa.status(alice).recovery_codes_left == 8


def test_disable_and_re_enrol(directory: Directory, alice: int) -> None:
    mfa, _, _, codes = _enrolled(directory, alice)
    mfa.disable(alice)
    assert not mfa.enabled(alice) and mfa.status(alice).recovery_codes_left == 0
    assert not mfa.verify(alice, recovery_code=codes[2])
    with pytest.raises(NotFound):
        mfa.confirm(alice, "123456")
    mfa.enrol(alice, "alice")
    assert mfa.status(alice).pending


def test_organisation_policy(directory: Directory) -> None:
    mfa = Mfa(directory.db)
    assert not mfa.org_requires("default")
    mfa.set_org_required("default", True)
    assert mfa.org_requires("default") and not mfa.org_requires("team-b")
    mfa.set_org_required("default", False)
    assert not mfa.org_requires("default")
    with pytest.raises(NotFound):
        mfa.set_org_required("nope", True)


def test_challenges_expire_allow_few_attempts_and_lock_out() -> None:
    clock = Clock(100.0)
    ch = MfaChallenges(clock=clock)
    tok = ch.create(7, "alice", "default", {"default": "admin"}, enrol=False)
    c = ch.get(tok)
    assert c is not None and c.user_id == 7 and ch.get("csm_other") is None and ch.get("") is None
    clock.t += CHALLENGE_TTL_S + 1
    assert ch.get(tok) is None
    tok = ch.create(7, "alice", "default", {"default": "admin"}, enrol=False)
    for _ in range(CHALLENGE_ATTEMPTS):
        c = ch.get(tok)
        assert c is not None
        ch.failed(tok, c)
    assert ch.get(tok) is None  # used up
    with pytest.raises(LockedOut) as e:  # 5 failures in a row: the password lockout's first step
        ch.check_locked(7)
    assert e.value.retry_after_s > 0
    ch.check_locked(8)  # another user is not affected
    clock.t += 10
    ch.check_locked(7)
    ch.succeeded(7)
