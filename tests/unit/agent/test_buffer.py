"""Bounded buffers: oldest first, the oldest dropped and counted when full, the disk spool survives a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearsight.agent.buffer import DiskBuffer, MemoryBuffer


def drain(buf: MemoryBuffer | DiskBuffer) -> list[tuple[bytes, int]]:
    out = []
    while (e := buf.peek()) is not None:
        out.append((e.payload, e.samples))
        buf.ack(e.seq)
    return out


@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_fifo_and_drop_oldest_when_full(kind: str, tmp_path: Path) -> None:
    buf = MemoryBuffer(25) if kind == "memory" else DiskBuffer(tmp_path / "spool", 25)
    for i in range(5):
        buf.put(bytes([65 + i]) * 10, i + 1)  # 10 bytes each; 25 bytes hold two
    assert (buf.dropped_requests, buf.dropped_samples) == (3, 1 + 2 + 3)
    assert buf.size_bytes() == 20 and len(buf) == 2
    assert drain(buf) == [(b"D" * 10, 4), (b"E" * 10, 5)]
    assert buf.size_bytes() == 0


@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_one_request_larger_than_the_bound_is_still_kept(kind: str, tmp_path: Path) -> None:
    buf = MemoryBuffer(5) if kind == "memory" else DiskBuffer(tmp_path / "spool", 5)
    buf.put(b"0123456789", 7)
    assert buf.dropped_samples == 0 and len(buf) == 1


def test_disk_buffer_survives_a_restart_and_ignores_partial_writes(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = DiskBuffer(spool, 1 << 20)
    first.put(b"one", 1)
    first.put(b"two", 2)
    e = first.peek()
    assert e is not None
    first.ack(e.seq)  # "one" was delivered
    (spool / "0000000000000099-5.tmp").write_bytes(b"half")  # a crash in the middle of a put
    (spool / "notes.txt").write_text("not ours")
    again = DiskBuffer(spool, 1 << 20)
    assert len(again) == 1 and again.size_bytes() == 3
    again.put(b"three", 3)  # sequence numbers continue after the surviving ones
    assert drain(again) == [(b"two", 2), (b"three", 3)]
    assert sorted(p.name for p in spool.iterdir()) == ["notes.txt"]


def test_ack_of_a_stale_sequence_does_nothing(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, 100)
    buf.put(b"a", 1)
    buf.ack(12345)
    assert len(buf) == 1
