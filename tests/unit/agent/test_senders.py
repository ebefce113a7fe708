"""Several senders on one buffer: claim/release/ack in any order, on memory and disk buffers, and two
shippers delivering every request exactly once between them."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from clearsight.agent.buffer import Buffer, DiskBuffer, MemoryBuffer
from clearsight.agent.shipper import Response, Shipper


@pytest.fixture(params=["memory", "disk"])
def buf(request: pytest.FixtureRequest, tmp_path: Path) -> Buffer:
    return MemoryBuffer(1 << 20) if request.param == "memory" else DiskBuffer(tmp_path / "spool", 1 << 20)


def test_claim_release_ack(buf: Buffer) -> None:
    for i in range(3):
        buf.put(f"p{i}".encode(), i + 1)
    a, b, c = buf.claim(), buf.claim(), buf.claim()
    assert a is not None and b is not None and c is not None
    assert [a.payload, b.payload, c.payload] == [b"p0", b"p1", b"p2"]
    assert buf.claim() is None  # all held
    buf.ack(b.seq)  # out of order
    buf.release(a.seq)  # given back undelivered
    again = buf.claim()
    assert again is not None and again.payload == b"p0"
    buf.ack(again.seq)
    buf.ack(c.seq)
    assert len(buf) == 0 and buf.size_bytes() == 0 and buf.claim() is None


class Recorder:
    def __init__(self, seen: list[bytes], lock: threading.Lock) -> None:
        self.seen, self.lock = seen, lock

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        with self.lock:
            self.seen.append(body)
        return Response(200, {}, "")

    def close(self) -> None:
        pass


def test_two_senders_deliver_each_request_once(buf: Buffer) -> None:
    seen: list[bytes] = []
    lock = threading.Lock()
    for i in range(200):
        buf.put(f"r{i}".encode(), 1)
    senders = [Shipper("http://x/v1/logs", buf, transport=Recorder(seen, lock), shared=True) for _ in range(2)]
    stop = threading.Event()
    threads = [threading.Thread(target=s.run, args=(stop,)) for s in senders]
    for t in threads:
        t.start()
    while len(buf):
        buf.wait(0.05)
        stop.wait(0.01)
    stop.set()
    buf.wake()
    for t in threads:
        t.join(30)
    assert sorted(seen) == sorted(f"r{i}".encode() for i in range(200))
    assert sum(s.stats.requests_sent for s in senders) == 200
