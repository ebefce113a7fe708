"""The journald source on real journal files written by systemd-journal-remote and read by journalctl
(DESIGN.md section 4): exact mapping, cursor persisted across restarts (no gap, no duplicate), start at
the end, a bounded poll. A missing systemd-journal-remote or journalctl is a failure, never a skip."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from clearsight.agent.sources.journald import JournaldSource
from clearsight.agent.sources.state import StateFile
from tests.support.peers import PeerMissing, require_binary

pytestmark = pytest.mark.peer

REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT = "0123456789abcdef0123456789abcdef"


def write_entries(directory: Path, entries: list[dict[str, str]], first_seq: int) -> None:
    """Append entries to DIR/agent.journal (systemd's export format piped to systemd-journal-remote)."""
    if not os.path.exists(REMOTE):
        raise PeerMissing(f"{REMOTE} is not installed: run `make peers` (scripts/install-peers.sh)")
    chunks = []
    for i, e in enumerate(entries):
        seq = first_seq + i
        fields = {"__REALTIME_TIMESTAMP": str(1_796_418_000_000_000 + seq * 1_000_000),
                  "__MONOTONIC_TIMESTAMP": str(1000 + seq), "_BOOT_ID": BOOT, **e}
        chunks.append("".join(f"{k}={v}\n" for k, v in fields.items()) + "\n")
    r = subprocess.run([REMOTE, "-o", str(directory / "agent.journal"), "-"], input="".join(chunks).encode(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def entry(n: int, prio: str = "6", unit: str = "app.service") -> dict[str, str]:
    return {"MESSAGE": f"line {n}", "PRIORITY": prio, "_SYSTEMD_UNIT": unit, "_PID": str(100 + n),
            "_HOSTNAME": "web-1", "SYSLOG_IDENTIFIER": "app"}


def source(directory: Path, state: Path, **kw: object) -> JournaldSource:
    return JournaldSource(StateFile(state), journalctl=require_binary("journalctl"), directory=str(directory),
                          **kw)  # type: ignore[arg-type]


def test_mapping_and_resume_after_restart(tmp_path: Path) -> None:
    jdir, state = tmp_path / "journal", tmp_path / "state" / "journald.json"
    jdir.mkdir()
    write_entries(jdir, [entry(1, "3"), entry(2, "6", "db.service"), entry(3, "7")], 1)
    src = source(jdir, state, read_from="beginning")
    recs = src.read()
    assert [r.body for r in recs] == ["line 1", "line 2", "line 3"]
    r1 = recs[0]
    assert r1.time_ns == (1_796_418_000_000_000 + 1_000_000) * 1000
    assert (r1.severity_number, r1.severity_text) == (17, "err")
    assert (recs[1].severity_number, recs[2].severity_text) == (9, "debug")
    assert dict(r1.attributes) == {"unit": "app.service", "pid": 101, "hostname": "web-1", "boot_id": BOOT,
                                   "syslog_identifier": "app"}
    assert dict(recs[1].attributes)["unit"] == "db.service"
    src.commit()
    assert src.read() == []  # nothing new
    src.commit()

    # the agent restarts (a new source on the same state): it resumes after line 3
    write_entries(jdir, [entry(4), entry(5)], 4)
    again = source(jdir, state, read_from="beginning")
    assert [r.body for r in again.read()] == ["line 4", "line 5"]
    # killed before commit: the next start reads them again (at least once), then nothing twice
    third = source(jdir, state, read_from="beginning")
    assert [r.body for r in third.read()] == ["line 4", "line 5"]
    third.commit()
    assert source(jdir, state).read() == []


def test_first_start_at_the_end_and_bounded_polls(tmp_path: Path) -> None:
    jdir = tmp_path / "journal"
    jdir.mkdir()
    write_entries(jdir, [entry(i) for i in range(1, 4)], 1)
    src = source(jdir, tmp_path / "j.json")  # read_from: end
    assert src.read() == []
    src.commit()
    write_entries(jdir, [entry(i) for i in range(4, 9)], 4)
    small = source(jdir, tmp_path / "j.json", max_entries=2)
    got = []
    for _ in range(4):
        got += [r.body for r in small.read()]
        small.commit()
    assert got == [f"line {i}" for i in range(4, 9)]


def test_units_filter(tmp_path: Path) -> None:
    jdir = tmp_path / "journal"
    jdir.mkdir()
    write_entries(jdir, [entry(1, unit="a.service"), entry(2, unit="b.service"), entry(3, unit="a.service")], 1)
    src = source(jdir, tmp_path / "j.json", read_from="beginning", units=["a.service"])
    assert [r.body for r in src.read()] == ["line 1", "line 3"]


def test_journalctl_failure_is_counted(tmp_path: Path) -> None:
    src = JournaldSource(StateFile(tmp_path / "j.json"), journalctl=str(tmp_path / "no-journalctl"))
    assert src.read() == [] and src.errors == {"exec": 1}
    bad = JournaldSource(StateFile(tmp_path / "j.json"), journalctl=require_binary("journalctl"),
                         directory=str(tmp_path / "journal"), units=["x"])
    bad.cursor = "not-a-cursor"
    assert bad.read() == [] and bad.errors == {"journalctl": 1}


def test_empty_journal_at_first_start_loses_nothing(tmp_path: Path) -> None:
    jdir = tmp_path / "journal"
    jdir.mkdir()
    src = source(jdir, tmp_path / "j.json")  # read_from: end, and nothing there yet
    assert src.read() == []
    src.commit()
    write_entries(jdir, [entry(1), entry(2)], 1)
    assert [r.body for r in src.read()] == ["line 1", "line 2"]
