"""Password hashing (Argon2id; bcrypt hashes from elsewhere verify and are upgraded) and policy."""

from __future__ import annotations

import functools

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)  # argon2id, OWASP minimum


class PasswordPolicyError(ValueError):
    pass


def check_policy(password: str, username: str) -> None:
    """Raises PasswordPolicyError naming the rule the password breaks."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"password must be at most {MAX_LENGTH} characters long")
    if password.strip().lower() == username.strip().lower():
        raise PasswordPolicyError("password must not be the username")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> tuple[bool, str | None]:
    """``(ok, new_hash)``: ``new_hash`` is set when the stored hash should be replaced (bcrypt or
    outdated Argon2 parameters)."""
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            ok = bcrypt.checkpw(password.encode()[:72], stored.encode())
        except ValueError:
            return False, None
        return ok, (hash_password(password) if ok else None)
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    return True, (hash_password(password) if _hasher.check_needs_rehash(stored) else None)


@functools.cache
def _dummy_hash() -> str:
    """Verified against for unknown users, so a login takes as long whether or not the user exists.
    Made on first use: hashing costs ~30 ms of CPU and 19 MiB, which every start paid at import."""
    return _hasher.hash("clearsight-dummy-password")


def burn_time(password: str) -> None:
    """One verification's worth of work for a login whose user does not exist."""
    verify_password(_dummy_hash(), password)
