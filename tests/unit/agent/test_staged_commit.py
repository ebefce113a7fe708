"""Exactly once across a SIGKILL at any instant of a log poll: the read position and the spool
requests holding what was read up to it are committed in one atomic write (buffer.stage, the source's
commit naming the staged requests, buffer.publish; buffer.recover at the next start).

A kill is simulated by abandoning the objects at that instant (no close, no cleanup) and building
new ones on the same files, as a restarted agent does. Every line must reach the senders once."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path

import pytest

from clearsight.agent.buffer import DiskBuffer
from clearsight.agent.logrecord import LogRecord
from clearsight.agent.otlp_logs import LogEncoder
from clearsight.agent.sources import LogSource
from clearsight.agent.sources.files import FileSource
from clearsight.agent.sources.state import StateFile

MARK = re.compile(rb"L(\d{5});")  # a record's number in its body
STEPS = ("staged", "committed", "published", "delivered")


class Agent:
    """The parts of a restarted agent that matter here: a log source, the log spool, the encoder
    (also used by tests/integration/test_agent_journald.py with the journald source)."""

    def __init__(self, tmp_path: Path, source: LogSource | None = None) -> None:
        self.source = source or FileSource([str(tmp_path / "logs" / "*.log")], StateFile(tmp_path / "state.json"),
                                           read_from="beginning")
        self.spool = DiskBuffer(tmp_path / "spool", 1 << 24)
        self.spool.recover(self.source.staged())
        self.encoder = LogEncoder({"host.name": "h"}, max_records=7)

    def poll(self, delivered: Counter[int], kill_after: str | None = None,
             records: list[LogRecord] | None = None) -> bool:
        """One poll as runner._read_logs does it (``records``: what the source's read gave, else one
        ``read()`` here), stopping dead after ``kill_after``; the sender delivers what is published.
        True when the poll ran to its end."""
        records = self.source.read() if records is None else records
        staged = [self.spool.stage(p, n) for p, n in self.encoder.encode("files", records, 1)]
        if kill_after == "staged":
            return self.killed()
        self.source.commit(staged)
        if kill_after == "committed":
            return self.killed()
        self.spool.publish(staged)
        if kill_after == "published":
            return self.killed()
        self.deliver(delivered)
        if kill_after == "delivered":
            return self.killed()
        return True

    def killed(self) -> bool:
        """The kernel closes a killed process' files; nothing else happens (close() saves nothing)."""
        self.source.close()
        return False

    def deliver(self, delivered: Counter[int]) -> None:
        while (e := self.spool.peek()) is not None:
            delivered.update(int(m) for m in MARK.findall(gzip.decompress(e.payload)))
            self.spool.ack(e.seq)


def write_lines(log: Path, start: int, n: int) -> None:
    with open(log, "a") as fh:
        fh.writelines(f"L{i:05d}; some text\n" for i in range(start, start + n))


@pytest.mark.parametrize("kill_after", STEPS)
def test_a_kill_at_each_step_of_a_poll_loses_nothing_and_sends_nothing_twice(tmp_path: Path,
                                                                              kill_after: str) -> None:
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    delivered: Counter[int] = Counter()
    write_lines(log, 0, 30)
    agent = Agent(tmp_path)
    assert agent.poll(delivered)
    write_lines(log, 30, 25)
    assert not agent.poll(delivered, kill_after=kill_after)  # SIGKILL here
    write_lines(log, 55, 10)  # more lines while the agent is down
    restarted = Agent(tmp_path)
    restarted.deliver(delivered)  # what the spool held from before the kill
    assert restarted.poll(delivered)
    restarted.source.close()
    assert sorted(delivered) == list(range(65))
    assert set(delivered.values()) == {1}, {k: v for k, v in delivered.items() if v != 1}
    assert not list((tmp_path / "spool").glob("*.staged"))


def test_repeated_kills_between_commit_and_publish(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    delivered: Counter[int] = Counter()
    n = 0
    for round_ in range(5):
        write_lines(log, n, 9 + round_)
        n += 9 + round_
        Agent(tmp_path).poll(delivered, kill_after=STEPS[round_ % len(STEPS)])
    final = Agent(tmp_path)
    final.deliver(delivered)
    assert final.poll(delivered)
    final.source.close()
    assert sorted(delivered) == list(range(n)) and set(delivered.values()) == {1}


def test_recover_deletes_staged_requests_no_saved_state_names(tmp_path: Path) -> None:
    spool = DiskBuffer(tmp_path / "spool", 1 << 20)
    kept = spool.stage(b"kept", 2)
    spool.stage(b"orphan", 3)
    again = DiskBuffer(tmp_path / "spool", 1 << 20)
    assert len(again) == 0  # staged requests are not sent until recovered
    again.recover([kept, "0123456789abcdef-9"])  # a name whose request was published long ago
    e = again.peek()
    assert e is not None and (e.payload, e.samples) == (b"kept", 2)
    again.ack(e.seq)
    assert again.peek() is None and not list((tmp_path / "spool").iterdir())


def test_state_file_keeps_staged_names_beside_the_document(tmp_path: Path) -> None:
    st = StateFile(tmp_path / "s.json")
    st.save({"cursor": "c1"}, ["a-1", "b-2"])
    again = StateFile(tmp_path / "s.json")
    assert again.load() == {"cursor": "c1"} and again.staged == ["a-1", "b-2"]
    st.save({"cursor": "c2"})
    third = StateFile(tmp_path / "s.json")
    assert third.load() == {"cursor": "c2"} and third.staged == []
