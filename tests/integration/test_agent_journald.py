"""The journald source on real journal files written by systemd-journal-remote and read by journalctl
(DESIGN.md section 4): exact mapping, cursor persisted across restarts (no gap, no duplicate), start at
the end, a bounded poll. A missing systemd-journal-remote or journalctl is a failure, never a skip."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearsight.agent.logrecord import LogRecord
from clearsight.agent.sources.journald import JournaldSource
from clearsight.agent.sources.state import StateFile
from tests.support.peers import PeerMissing, require_binary
from tests.unit.agent.test_staged_commit import STEPS, Agent

pytestmark = pytest.mark.peer

REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT = "0123456789abcdef0123456789abcdef"
BASE_US = (int(time.time()) - 600) * 1_000_000  # entry n happened at BASE_US + n seconds (recent: queries find it)


def write_entries(directory: Path, entries: list[dict[str, str]], first_seq: int) -> None:
    """Append entries to DIR/agent.journal (systemd's export format piped to systemd-journal-remote)."""
    if not os.path.exists(REMOTE):
        raise PeerMissing(f"{REMOTE} is not installed: run `make peers` (scripts/install-peers.sh)")
    chunks = []
    for i, e in enumerate(entries):
        seq = first_seq + i
        fields = {"__REALTIME_TIMESTAMP": str(BASE_US + seq * 1_000_000),
                  "__MONOTONIC_TIMESTAMP": str(1000 + seq), "_BOOT_ID": BOOT, **e}
        chunks.append("".join(f"{k}={v}\n" for k, v in fields.items()) + "\n")
    r = subprocess.run([REMOTE, "-o", str(directory / "agent.journal"), "-"], input="".join(chunks).encode(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def entry(n: int, prio: str = "6", unit: str = "app.service") -> dict[str, str]:
    return {"MESSAGE": f"line {n}", "PRIORITY": prio, "_SYSTEMD_UNIT": unit, "_PID": str(100 + n),
            "_HOSTNAME": "web-1", "SYSLOG_IDENTIFIER": "app"}


OPEN: list[JournaldSource] = []


@pytest.fixture(autouse=True)
def _close_sources() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def source(directory: Path, state: Path, **kw: object) -> JournaldSource:
    s = JournaldSource(StateFile(state), journalctl=require_binary("journalctl"), directory=str(directory),
                       **kw)  # type: ignore[arg-type]
    OPEN.append(s)
    return s


def read(src: JournaldSource, n: int, settle: float = 0.5) -> list[LogRecord]:
    """Poll until ``n`` records came (journalctl --follow prints asynchronously), then ``settle`` seconds
    more to see that nothing else comes (a guard against hanging, not a timing assertion)."""
    out: list[LogRecord] = []
    deadline = time.monotonic() + 30
    while len(out) < n:
        assert time.monotonic() < deadline, f"{len(out)} of {n} records: {[r.body for r in out]}, {src.errors}"
        out += src.read()
        time.sleep(0.05)
    end = time.monotonic() + settle
    while time.monotonic() < end:
        out += src.read()
        time.sleep(0.05)
    return out


def test_mapping_and_resume_after_restart(tmp_path: Path) -> None:
    jdir, state = tmp_path / "journal", tmp_path / "state" / "journald.json"
    jdir.mkdir()
    write_entries(jdir, [entry(1, "3"), entry(2, "6", "db.service"), entry(3, "7")], 1)
    src = source(jdir, state, read_from="beginning")
    recs = read(src, 3)
    assert [r.body for r in recs] == ["line 1", "line 2", "line 3"]
    r1 = recs[0]
    assert r1.time_ns == (BASE_US + 1_000_000) * 1000
    assert (r1.severity_number, r1.severity_text) == (17, "err")
    assert (recs[1].severity_number, recs[2].severity_text) == (9, "debug")
    assert dict(r1.attributes) == {"unit": "app.service", "pid": 101, "hostname": "web-1", "boot_id": BOOT,
                                   "syslog_identifier": "app"}
    assert dict(recs[1].attributes)["unit"] == "db.service"
    src.commit()
    assert read(src, 0) == []  # nothing new
    src.close()

    # the agent restarts (a new source on the same state): it resumes after line 3
    write_entries(jdir, [entry(4), entry(5)], 4)
    again = source(jdir, state, read_from="beginning")
    assert [r.body for r in read(again, 2)] == ["line 4", "line 5"]
    again.close()
    # killed before commit: the next start reads them again (at least once), then nothing twice
    third = source(jdir, state, read_from="beginning")
    assert [r.body for r in read(third, 2)] == ["line 4", "line 5"]
    third.commit()
    third.close()
    assert read(source(jdir, state), 0) == []


def test_first_start_at_the_end_and_bounded_polls(tmp_path: Path) -> None:
    jdir = tmp_path / "journal"
    jdir.mkdir()
    write_entries(jdir, [entry(i) for i in range(1, 4)], 1)
    src = source(jdir, tmp_path / "j.json")  # read_from: end
    assert read(src, 0) == []
    src.commit()  # the journal's end is saved: what comes while the agent is down is not skipped
    src.close()
    write_entries(jdir, [entry(i) for i in range(4, 9)], 4)
    small = source(jdir, tmp_path / "j.json", max_entries=2)
    got: list[str] = []
    deadline = time.monotonic() + 30
    while len(got) < 5:
        assert time.monotonic() < deadline, got
        batch = small.read()
        assert len(batch) <= 2
        got += [r.body for r in batch]
        small.commit()
        time.sleep(0.05)
    assert got == [f"line {i}" for i in range(4, 9)]


def test_units_filter(tmp_path: Path) -> None:
    jdir = tmp_path / "journal"
    jdir.mkdir()
    write_entries(jdir, [entry(1, unit="a.service"), entry(2, unit="b.service"), entry(3, unit="a.service")], 1)
    src = source(jdir, tmp_path / "j.json", read_from="beginning", units=["a.service"])
    assert [r.body for r in read(src, 2)] == ["line 1", "line 3"]


def test_journalctl_failure_is_counted(tmp_path: Path) -> None:
    src = JournaldSource(StateFile(tmp_path / "j.json"), journalctl=str(tmp_path / "no-journalctl"))
    assert src.read() == [] and src.errors == {"exec": 2}  # the tail cursor, then journalctl itself
    (tmp_path / "j.json").write_text('{"cursor": "not-a-cursor"}')
    bad = source(tmp_path / "journal", tmp_path / "j.json")
    deadline = time.monotonic() + 30
    while "journalctl" not in bad.errors:  # journalctl refuses the cursor and exits
        assert bad.read() == [] and time.monotonic() < deadline
        time.sleep(0.05)


def test_empty_journal_at_first_start_loses_nothing(tmp_path: Path) -> None:
    jdir = tmp_path / "journal"
    jdir.mkdir()
    src = source(jdir, tmp_path / "j.json")  # read_from: end, and nothing there yet
    assert read(src, 0) == []
    src.commit()
    write_entries(jdir, [entry(1), entry(2)], 1)
    assert [r.body for r in read(src, 2)] == ["line 1", "line 2"]


@pytest.mark.parametrize("kill_after", STEPS)
def test_a_kill_at_each_step_of_a_poll_resumes_with_no_gap_and_no_duplicate(tmp_path: Path, kill_after: str) -> None:
    """The agent's poll (stage, commit the cursor naming the staged requests, publish) on the real
    journal, killed after each step: after the restart every entry reached the senders once."""
    jdir, state = tmp_path / "journal", tmp_path / "state" / "journald.json"
    jdir.mkdir()

    def numbered(first: int, n: int) -> list[dict[str, str]]:
        return [{**entry(i), "MESSAGE": f"L{i:05d}; line {i}"} for i in range(first, first + n)]

    delivered: Counter[int] = Counter()
    write_entries(jdir, numbered(0, 12), 0)
    first = Agent(tmp_path, source(jdir, state, read_from="beginning"))
    assert first.poll(delivered, records=read(first.source, 12, settle=0.2))
    write_entries(jdir, numbered(12, 9), 12)
    first.poll(delivered, kill_after=kill_after, records=read(first.source, 9, settle=0.2))
    first.source.close()  # SIGKILL: the process and its journalctl are gone, nothing else happens
    write_entries(jdir, numbered(21, 5), 21)  # more entries while the agent is down
    restarted = Agent(tmp_path, source(jdir, state, read_from="beginning"))
    restarted.deliver(delivered)
    expected = 5 if kill_after != "staged" else 14  # not committed: the 9 are read again
    assert restarted.poll(delivered, records=read(restarted.source, expected, settle=0.3))
    assert sorted(delivered) == list(range(26))
    assert set(delivered.values()) == {1}, {k: v for k, v in delivered.items() if v != 1}
