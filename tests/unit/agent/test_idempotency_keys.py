"""Idempotency keys per batch: every attempt of one buffered request carries the same
``x-idempotency-key``, through retries, a 409 (first attempt still being handled) and an agent restart
on the disk spool; different requests get different keys."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from clearsight.agent.buffer import DiskBuffer, MemoryBuffer, batch_key
from clearsight.agent.shipper import IDEMPOTENCY_HEADER, Response, Shipper


class Recorder:
    """A transport answering from a script and recording each attempt's key."""

    def __init__(self, *answers: Response | OSError) -> None:
        self.answers = list(answers)
        self.keys: list[str] = []

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        self.keys.append(headers[IDEMPOTENCY_HEADER])
        a = self.answers.pop(0)
        if isinstance(a, OSError):
            raise a
        return a

    def close(self) -> None:
        return None


class NoWait:
    def wait(self, timeout: float | None = None) -> bool:
        return False

    def is_set(self) -> bool:
        return False


OK = Response(204, {}, "")
REPLAYED = Response(204, {"x-idempotent-replay": "true"}, "")


def test_key_is_the_same_for_every_attempt_and_409_is_retried() -> None:
    buf = MemoryBuffer(1 << 20)
    buf.put(b"batch-1", 3)
    t = Recorder(TimeoutError("timed out"), Response(409, {}, "being handled"), Response(503, {}, "busy"), REPLAYED)
    sh = Shipper("http://s/api/v1/write", buf, transport=t, rng=lambda: 0.0)
    assert sh.send_oldest(NoWait())
    assert t.keys == [batch_key(b"batch-1")] * 4
    assert t.keys[0].startswith("cs1-") and len(t.keys[0]) == 36
    assert (sh.stats.retries, sh.stats.requests_sent, sh.stats.samples_sent, sh.stats.replays) == (3, 1, 3, 1)
    assert sh.stats.rejected_requests == 0 and len(buf) == 0


def test_different_requests_get_different_keys_and_a_restart_keeps_them(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = DiskBuffer(spool, 1 << 20)
    first.put(b"collection at t1", 10)
    first.put(b"collection at t2", 10)
    a, b = first.claim(), first.claim()
    assert a is not None and b is not None and a.key != b.key
    # the agent dies after sending (the server wrote both) and before the acks: a new process reads the
    # spool, its sequence numbers start again, the keys do not
    again = DiskBuffer(spool, 1 << 20)
    t = Recorder(REPLAYED, REPLAYED)
    sh = Shipper("http://s/v1/logs", again, transport=t)
    assert sh.send_oldest(NoWait()) and sh.send_oldest(NoWait())
    assert t.keys == [a.key, b.key]
    assert sh.stats.replays == 2 and len(again) == 0
    # an emptied spool restarts its sequence at 1: a new request still gets a key of its own bytes
    third = DiskBuffer(spool, 1 << 20)
    third.put(b"collection at t3", 10)
    c = third.peek()
    assert c is not None and c.seq == 1 and c.key not in (a.key, b.key)


def test_a_4xx_other_than_409_and_429_is_still_dropped() -> None:
    buf = MemoryBuffer(1 << 20)
    buf.put(b"bad", 2)
    t = Recorder(Response(400, {}, "bad data"))
    sh = Shipper("http://s/api/v1/write", buf, transport=t)
    assert sh.send_oldest(NoWait())
    assert (sh.stats.rejected_requests, sh.stats.rejected_samples, len(buf)) == (1, 2, 0)
