"""Password hashing: the unknown-user dummy hash is made on first use and verifies like any hash."""

from __future__ import annotations

import subprocess
import sys

from clearsight.auth import passwords


def test_importing_the_module_hashes_nothing() -> None:
    code = ("import argon2, clearsight.auth.passwords as p; "
            "print(p._dummy_hash.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_burn_time_verifies_against_a_real_argon2_hash() -> None:
    passwords.burn_time("not the dummy password")
    dummy = passwords._dummy_hash()
    assert dummy.startswith("$argon2id$")
    assert passwords.verify_password(dummy, "clearsight-dummy-password") == (True, None)
    assert passwords.verify_password(dummy, "not the dummy password") == (False, None)
    assert passwords._dummy_hash() is dummy  # made once
