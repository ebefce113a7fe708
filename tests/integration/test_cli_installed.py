"""The ``clearsight`` command is where the README says ``make run`` (``make setup``) puts it:
``.venv/bin/clearsight``, beside the interpreter running the tests, and it queries a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.peers import REPO, start_clearsight


def test_cli_is_in_the_venv_bin_the_readme_names(tmp_path: Path) -> None:
    assert ".venv/bin/clearsight query" in (REPO / "README.md").read_text()
    cli = Path(sys.executable).parent / "clearsight"
    assert cli.is_file(), f"{cli} missing: `make setup` must install the console script"
    cs = start_clearsight(tmp_path)
    try:
        out = subprocess.run(
            [str(cli), "query", "1+1", "--url", cs.url, "--output", "json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        cs.stop()
    assert out.returncode == 0, out.stderr
    assert '"2"' in out.stdout, out.stdout
