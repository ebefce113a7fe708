"""Processes the tests and benches spawn (tests/support/peers.py) run in their own directory: a
relative ``PYTHONPATH`` entry is made absolute for them, so ``PYTHONPATH=src`` run from a worktree
starts that worktree's server, not the clearsight installed in the venv."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support import peers


def test_relative_pythonpath_entries_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["src", "/opt/lib", ""]))
    env = peers.child_env({"EXTRA": "1"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(tmp_path / "src"), "/opt/lib", ""]
    assert env["EXTRA"] == "1"


def test_a_spawned_server_imports_the_code_pythonpath_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    monkeypatch.chdir(src.parent)
    monkeypatch.setenv("PYTHONPATH", "src")
    out = tmp_path / "where.txt"
    argv = [sys.executable, "-c", f"import clearsight; open({str(out)!r}, 'w').write(clearsight.__file__)"]
    proc = peers._spawn("where", argv, tmp_path / "work", "http://unused")
    assert proc.popen.wait(60) == 0
    assert Path(out.read_text()).resolve() == (src / "clearsight" / "__init__.py").resolve()
