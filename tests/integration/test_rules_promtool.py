"""The same rule unit-test files through Debian's ``promtool test rules`` (Prometheus 2.42) and
through ``clearsight rules test``: same verdicts, same failure details, same exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.peers import require_binary

DATA = Path(__file__).parent / "rules_testdata"
CASES = ["pass.yml", "basic.yml", "fail.yml", "basic_bad.yml", "evalerror.yml", "missing_rule_file.yml"]


def _run(argv: list[str]) -> tuple[int, str, str]:
    r = subprocess.run(argv, cwd=DATA, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize("case", CASES)
def test_same_verdict_and_details_as_promtool(case: str) -> None:
    promtool = require_binary("promtool")
    p_code, p_out, p_err = _run([promtool, "test", "rules", case])
    c_code, c_out, c_err = _run([sys.executable, "-m", "clearsight", "rules", "test", case])
    assert (c_code, c_out, c_err) == (p_code, p_out, p_err)
    # The files cover both verdicts: the *pass* files pass, the others fail with details.
    assert (p_code == 0) == (case in ("pass.yml", "basic.yml", "missing_rule_file.yml"))
    if p_code:
        assert p_err.startswith("  FAILED:\n") and len(p_err.splitlines()) >= 2


def test_several_files_in_one_run_as_promtool() -> None:
    promtool = require_binary("promtool")
    files = ["basic.yml", "fail.yml", "missing_rule_file.yml", "pass.yml"]
    assert _run([sys.executable, "-m", "clearsight", "rules", "test", *files]) == _run(
        [promtool, "test", "rules", *files])
