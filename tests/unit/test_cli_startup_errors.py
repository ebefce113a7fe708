"""cli/startup_errors.py: the one-line message for a data directory held by another process."""

from __future__ import annotations

from pathlib import Path

from clearsight.cli.startup_errors import lock_holder_message

DUCKDB_LOCK = ('IO Error: Could not set lock on file "/srv/data/metrics.duckdb": Conflicting lock is held in '
               "/usr/bin/python3.11 (PID 4242). See also https://duckdb.org/docs/current/connect/concurrency")


def test_names_the_holder_from_its_command_line(tmp_path: Path) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cmdline").write_bytes(b"python3\0-m\0clearsight\0server\0--data-dir\0/srv/data\0")
    msg = lock_holder_message(OSError(DUCKDB_LOCK), "/srv/data", proc_root=tmp_path)
    assert msg == ("clearsight: the data directory /srv/data is in use by another process: PID 4242 "
                   "(python3 -m clearsight server --data-dir /srv/data); stop it, or start this server with "
                   "another --data-dir")


def test_falls_back_to_the_executable_when_the_process_is_gone(tmp_path: Path) -> None:
    msg = lock_holder_message(RuntimeError(DUCKDB_LOCK), "./data", proc_root=tmp_path)
    assert msg is not None and "PID 4242 (/usr/bin/python3.11)" in msg and "\n" not in msg


def test_other_errors_are_not_explained(tmp_path: Path) -> None:
    assert lock_holder_message(RuntimeError("disk full"), "./data", proc_root=tmp_path) is None
