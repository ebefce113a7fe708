"""The kernel's record log (store/kernel/record_log.py): what was appended is what a reopen reads; a
torn tail is cut at any byte; damage in the middle loses only the damaged frames (the segment is
rewritten, the damaged file kept aside); a failed write or sync (short write, ENOSPC, EFBIG, EIO)
raises LogFull/LogWriteError, leaves no garbage, and the next append after space returns works."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.store.interface import StoreClosed
from clearsight.store.kernel import record_log
from clearsight.store.kernel.record_log import HEADER_BYTES, LogFull, LogWriteError, RecordLog
from clearsight.store.kernel.writer import Unavailable

SEG = 4096
payloads = st.lists(st.binary(min_size=0, max_size=600), min_size=1, max_size=30)
fresh = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read(d: Path, **kw: Any) -> list[tuple[int, bytes]]:
    log = RecordLog(d, segment_bytes=SEG, **kw)
    try:
        return list(log.read())
    finally:
        log.close()


def _fill(d: Path, records: list[bytes], seg: int = SEG) -> list[tuple[int, int, Path]]:
    """Appends ``records``; returns each one's (frame start, frame end, segment path)."""
    log = RecordLog(d, segment_bytes=seg)
    where = []
    for r in records:
        before = log.segments
        log.append(r)
        s = log._segments[-1]
        at = s.used - HEADER_BYTES - len(r)
        assert log.segments >= before
        where.append((at, s.used, s.path))
    log.close()
    return where


@fresh
@given(records=payloads, big=st.integers(0, 2))
def test_appended_records_are_read_back_after_a_reopen(tmp_path_factory: pytest.TempPathFactory,
                                                       records: list[bytes], big: int) -> None:
    d = tmp_path_factory.mktemp("log")
    records = records + [os.urandom(SEG * 2 + 17)] * big  # larger than a segment: one of its own
    _fill(d, records)
    assert _read(d) == list(enumerate(records, start=1))
    sizes = sorted(p.stat().st_size for p in d.iterdir())  # preallocated: the segment size, or one record's
    large = sizes.count(64 << 10)  # a record of 2 segments + 37 bytes: rounded up to 64 KiB (the next fits)
    assert (large > 0) == (big > 0)
    assert all(s == SEG for s in sizes[: len(sizes) - large])


def test_torn_tail_is_cut_at_every_byte_of_the_last_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = [b"first record", os.urandom(50), b"the last one, cut anywhere"]
    base = tmp_path / "base"
    where = _fill(base, records)
    at, end, path = where[-1]
    for cut in range(at, end):
        d = tmp_path / f"cut{cut}"
        shutil.copytree(base, d)
        p = d / path.name
        data = bytearray(p.read_bytes())
        data[cut:end] = bytes(end - cut)  # the write reached byte ``cut`` only (the rest: preallocated zeros)
        p.write_bytes(bytes(data))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=record_log.__name__):
            log = RecordLog(d, segment_bytes=SEG)
        assert list(log.read()) == list(enumerate(records[:-1], start=1)), cut
        written = len(bytes(data[at:cut]).rstrip(b"\0"))  # the cut frame's bytes up to its last non-zero one
        if written:
            assert f"ends with {written} bytes that are not an intact record (from byte {at})" in caplog.text
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert log.append(b"after") == 3  # overwrites the cut record
        log.close()
        assert _read(d) == [*enumerate(records[:-1], start=1), (3, b"after")]
        assert not [q for q in d.iterdir() if "damaged" in q.name]
        shutil.rmtree(d)


@pytest.mark.parametrize("into", [30, 0])
def test_a_segment_file_truncated_mid_record(tmp_path: Path, caplog: pytest.LogCaptureFixture, into: int) -> None:
    """Segments are created whole: a shorter file was cut (not by a crash), and that is an error
    naming what is lost; the records before the cut are kept."""
    where = _fill(tmp_path, [b"a" * 100, b"b" * 100, b"c" * 100])
    at, _, path = where[-1]
    with open(path, "r+b") as f:
        f.truncate(at + into)
    with caplog.at_level(logging.ERROR, logger=record_log.__name__):
        log = RecordLog(tmp_path, segment_bytes=SEG)
    assert [s for s, _ in log.read()] == [1, 2]
    assert f"shorter than a segment ({at + into} of {SEG} bytes)" in caplog.text
    assert f"the records after its 2 intact ones (byte {at} on) are lost" in caplog.text
    assert log.append(b"d" * 5000) == 3  # does not fit the short file: a new segment
    log.close()
    assert [s for s, _ in _read(tmp_path)] == [1, 2, 3]


@fresh
@given(n=st.integers(3, 40), data=st.data())
def test_overwritten_bytes_lose_only_the_frames_they_hit(tmp_path_factory: pytest.TempPathFactory, n: int,
                                                         data: st.DataObject) -> None:
    d = tmp_path_factory.mktemp("dmg")
    records = [os.urandom(data.draw(st.integers(0, 120))) for _ in range(n)]
    where = _fill(d, records, seg=64 << 10)
    path = where[0][2]
    raw = bytearray(path.read_bytes())
    used = where[-1][1]
    a = data.draw(st.integers(0, used + 100))
    b = data.draw(st.integers(a + 1, a + 300))
    junk = data.draw(st.sampled_from(["random", "zeros", "ones"]))
    new = os.urandom(b - a) if junk == "random" else (bytes(b - a) if junk == "zeros" else b"\xff" * (b - a))
    old = bytes(raw[a:b])
    raw[a:b] = new
    path.write_bytes(bytes(raw))
    hit = set()  # the frames whose bytes changed
    for k, (s, e, _) in enumerate(where):
        lo, hi = max(s, a), min(e, b)
        if lo < hi and old[lo - a: hi - a] != new[lo - a: hi - a]:
            hit.add(k)
    got = _read(d, what="t")
    want_at_least = [(k + 1, r) for k, r in enumerate(records) if k not in hit]
    assert got == want_at_least  # every record outside the damaged frames, nothing else
    intact_after = bool(hit) and any(k not in hit and k > min(hit) for k in range(n))
    # damage followed by intact records is moved aside; a torn tail (nothing intact after) is cut
    assert bool([q for q in d.iterdir() if ".damaged-" in q.name]) == intact_after


def test_damage_in_the_middle_is_reported_and_the_file_moved_aside(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    records = [bytes([k]) * 40 for k in range(1, 11)]
    where = _fill(tmp_path, records)
    at, end, path = where[4]  # record 5
    raw = bytearray(path.read_bytes())
    raw[at + 25: at + 30] = b"XXXXX"
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.ERROR, logger=record_log.__name__):
        log = RecordLog(tmp_path, segment_bytes=SEG)
    assert [s for s, _ in log.read()] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert f"bytes {at}..{end} ({end - at} bytes; records 5..5)" in caplog.text
    aside = [q for q in tmp_path.iterdir() if ".damaged-" in q.name]
    assert len(aside) == 1 and aside[0].read_bytes() == bytes(raw)
    assert log.repairs and str(aside[0]) in log.repairs[0]
    assert log.append(b"next") == 11
    log.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=record_log.__name__):
        assert [s for s, _ in _read(tmp_path)] == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert not caplog.records  # repaired once: clean from then on


def test_damage_to_an_earlier_segments_tail(tmp_path: Path) -> None:
    records = [bytes([k]) * 1300 for k in range(1, 10)]  # 3 records per 4 KiB segment
    where = _fill(tmp_path, records)
    at, _, path = where[2]  # the last record of the first segment
    assert where[3][2] != path
    raw = bytearray(path.read_bytes())
    raw[at + 100] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert [s for s, _ in _read(tmp_path)] == [1, 2, 4, 5, 6, 7, 8, 9]
    assert [q for q in tmp_path.iterdir() if ".damaged-" in q.name]


class Faults:
    """``os.pwrite``/``os.fdatasync``/``os.posix_fallocate`` as the record log sees them, with
    failures to inject."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pwrite_plan: list[Callable[[int, Any, int], int]] = []
        self.sync_fail = 0
        self.fallocate_fail: int | None = None
        real_pwrite, real_sync, real_falloc = os.pwrite, os.fdatasync, os.posix_fallocate

        def pwrite(fd: int, data: Any, at: int) -> int:
            if self.pwrite_plan:
                return self.pwrite_plan.pop(0)(fd, data, at)
            return real_pwrite(fd, data, at)

        def fdatasync(fd: int) -> None:
            if self.sync_fail:
                self.sync_fail -= 1
                raise OSError(errno.EIO, "Input/output error")
            real_sync(fd)

        def falloc(fd: int, off: int, size: int) -> None:
            if self.fallocate_fail is not None:
                raise OSError(self.fallocate_fail, os.strerror(self.fallocate_fail))
            real_falloc(fd, off, size)

        self.real_pwrite = real_pwrite
        monkeypatch.setattr(record_log.os, "pwrite", pwrite)
        monkeypatch.setattr(record_log.os, "fdatasync", fdatasync)
        monkeypatch.setattr(record_log.os, "posix_fallocate", falloc)

    def short(self, fd: int, data: Any, at: int) -> int:
        """Writes half (a write cut at a file size limit) and says so."""
        half = memoryview(data)[: max(1, len(data) // 2)]
        return self.real_pwrite(fd, half, at)

    @staticmethod
    def fail(code: int) -> Callable[[int, Any, int], int]:
        def raise_(fd: int, data: Any, at: int) -> int:
            raise OSError(code, os.strerror(code))
        return raise_


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
def test_a_short_write_then_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    faults = Faults(monkeypatch)
    log = RecordLog(tmp_path, segment_bytes=SEG)
    assert log.append(b"acknowledged 1") == 1
    faults.pwrite_plan = [faults.short, Faults.fail(code)]  # the remainder yields the real error
    with pytest.raises(LogFull) as e:
        log.append(b"refused " * 20)
    assert os.strerror(code) in str(e.value) and "short write" not in str(e.value)
    assert isinstance(e.value, Unavailable) and isinstance(e.value, StoreClosed) and e.value.retry_after >= 1
    faults.pwrite_plan = [Faults.fail(code)]  # still full: refused the same way
    with pytest.raises(LogFull):
        log.append(b"refused again")
    assert log.append(b"acknowledged 2") == 2  # space is back
    log.close()
    assert _read(tmp_path) == [(1, b"acknowledged 1"), (2, b"acknowledged 2")]
    raw = next(tmp_path.glob("*.seg")).read_bytes()
    assert b"refused" not in raw  # the half-written frame was zeroed, then overwritten


def test_a_failed_cleanup_moves_on_to_a_new_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faults = Faults(monkeypatch)
    log = RecordLog(tmp_path, segment_bytes=SEG)
    log.append(b"one")
    faults.pwrite_plan = [faults.short, Faults.fail(errno.EIO), Faults.fail(errno.EIO)]  # zeroing fails too
    with pytest.raises(LogWriteError) as e:
        log.append(b"refused " * 20)
    assert not isinstance(e.value, LogFull)
    assert log.append(b"two") == 2
    assert log.segments == 2
    log.close()
    assert _read(tmp_path) == [(1, b"one"), (2, b"two")]


def test_no_space_for_a_new_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faults = Faults(monkeypatch)
    log = RecordLog(tmp_path, segment_bytes=SEG)
    faults.fallocate_fail = errno.ENOSPC
    for _ in range(3):
        with pytest.raises(LogFull, match="No space left on device"):
            log.append(b"x")
        assert list(tmp_path.iterdir()) == []  # no half-created segment left
    faults.fallocate_fail = None
    faults.pwrite_plan = [Faults.fail(errno.EFBIG)]  # zeroing a new segment past RLIMIT_FSIZE
    with pytest.raises(LogFull, match="File too large"):
        log.append(b"x")
    assert list(tmp_path.iterdir()) == []
    assert log.append(b"x") == 1
    log.close()
    assert _read(tmp_path) == [(1, b"x")]


def test_a_failed_sync_fails_the_record_and_abandons_the_segment(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    faults = Faults(monkeypatch)
    log = RecordLog(tmp_path, segment_bytes=SEG)
    log.append(b"one")
    faults.sync_fail = 1
    with pytest.raises(LogWriteError, match="Input/output error"):
        log.append(b"refused")
    seq = log.append(b"two")
    assert log.segments == 2
    log.close()
    got = _read(tmp_path)
    assert got == [(1, b"one"), (seq, b"two")]  # the refused frame was zeroed


def test_retract_drop_through_and_reset(tmp_path: Path) -> None:
    log = RecordLog(tmp_path, segment_bytes=SEG)
    for k in range(1, 8):
        log.append(bytes([k]) * 1500)  # 2 per segment
    log.retract(7)
    with pytest.raises(LogWriteError):
        log.retract(3)  # not the last record
    assert log.records == 6 and log.next_seq == 7
    assert log.drop_through(4) == 3  # segments of 1-2 and 3-4, and the last one, empty since the retract
    assert [s for s, _ in log.read()] == [5, 6]
    assert log.records == 2
    log.reset()
    assert list(tmp_path.iterdir()) == [] and log.records == 0 and log.bytes == 0
    assert log.append(b"z") == 7  # sequence numbers continue
    log.close()
    log = RecordLog(tmp_path, segment_bytes=SEG)
    assert list(log.read()) == [(7, b"z")]
    log.drop_through(7)
    log.close()
    log = RecordLog(tmp_path, segment_bytes=SEG)
    log.advance(8)  # the store's own record of the last seq
    assert log.append(b"y") == 8
    log.close()


def test_leftovers_of_an_interrupted_creation_or_repair(tmp_path: Path) -> None:
    _fill(tmp_path, [b"a", b"b"])
    seg = next(tmp_path.glob("*.seg"))
    (tmp_path / "000000000002.seg.new").write_bytes(bytes(100))  # creation cut by a crash
    shutil.copy(seg, seg.with_name(seg.name + ".repair"))  # repair cut before the renames
    assert _read(tmp_path) == [(1, b"a"), (2, b"b")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [seg.name]
    seg.rename(seg.with_name(seg.name + ".repair"))  # repair cut between the renames
    assert _read(tmp_path) == [(1, b"a"), (2, b"b")]


def _settled(log: RecordLog) -> RecordLog:
    log._settle_spare()  # the spare's thread has finished
    return log


def test_a_spare_segment_is_made_ahead_and_used(tmp_path: Path) -> None:
    """With ``spare``, a segment half full starts the next one on a thread of its own; the append
    that fills the segment switches to it. Records read back the same across segments."""
    log = RecordLog(tmp_path, segment_bytes=SEG, spare=True)
    records = [bytes([k]) * 900 for k in range(1, 10)]  # 4 frames (3,680 bytes) per 4 KiB segment
    for r in records[:3]:
        log.append(r)
    _settled(log)
    assert log.spares_used == 0 and log.segments == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000000001.seg", "000000000002.seg"]
    assert not (tmp_path / "000000000002.seg").read_bytes().strip(b"\0")  # made whole: zeros
    assert log.file_bytes == 2 * SEG
    for r in records[3:]:
        log.append(r)
    assert _settled(log).spares_used == 2 and log.segments == 3
    log.close()  # the unused spare (a fourth segment) is deleted
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"00000000000{k}.seg" for k in (1, 2, 3)]
    assert _read(tmp_path) == list(enumerate(records, start=1))


def test_a_record_larger_than_the_spare(tmp_path: Path) -> None:
    log = RecordLog(tmp_path, segment_bytes=SEG, spare=True)
    log.append(b"a" * 2100)
    _settled(log)
    big = os.urandom(SEG * 2 + 17)
    log.append(big)  # the spare (too small) stays as an empty segment before its own one
    assert log.segments == 3 and log.spares_used == 0
    log.append(b"b")  # into the big one's room
    log.close()
    assert _read(tmp_path) == [(1, b"a" * 2100), (2, big), (3, b"b")]
    log = RecordLog(tmp_path, segment_bytes=SEG, spare=True)
    assert log.drop_through(1) == 2  # the empty one goes with the records before it
    assert [s for s, _ in log.read()] == [2, 3]
    log.close()


def test_ready_makes_the_next_segment_as_a_spare(tmp_path: Path) -> None:
    log = RecordLog(tmp_path, segment_bytes=SEG, spare=True)
    log.append(b"one")
    log.drop_through(1)
    log.ready()  # returns at once; the spare's thread makes the segment
    assert log.segments == 0
    assert _settled(log).file_bytes == SEG
    assert log.append(b"two") == 2 and log.spares_used == 1 and log.segments == 1
    log.reset()  # every segment, and a spare, goes
    assert list(tmp_path.iterdir()) == []
    log.close()


def test_a_spare_left_by_a_crash_is_the_tail_and_a_torn_record_before_it_is_cut(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = RecordLog(tmp_path, segment_bytes=SEG, spare=True)
    for k in range(3):
        log.append(bytes([k + 1]) * 900)
    _settled(log)
    tail = log._segments[-1]
    torn = tail.used
    log._close_fd()  # as kill -9 leaves it: the spare stays on disk
    log._spare_made = None
    with open(tail.path, "r+b") as f:  # a record half way through its pwrite
        f.seek(torn)
        f.write(record_log._HEADER.pack(record_log.MAGIC, 500, 4, 0) + b"\x07" * 100)
    with caplog.at_level(logging.WARNING, logger=record_log.__name__):
        again = RecordLog(tmp_path, segment_bytes=SEG, spare=True)
    assert "never acknowledged" in caplog.text and not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert again.segments == 2  # the spare is the tail now
    assert again.append(b"next") == 4
    again.close()
    assert [s for s, _ in _read(tmp_path)] == [1, 2, 3, 4]


def test_a_spare_that_cannot_be_made_leaves_the_append_to_fail_and_retry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faults = Faults(monkeypatch)
    log = RecordLog(tmp_path, segment_bytes=SEG, spare=True)
    log.append(b"a" * 1000)
    faults.fallocate_fail = errno.ENOSPC  # the disk is full from here on
    log.append(b"a" * 1100)  # half full: starts a spare, which fails
    _settled(log)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000000001.seg"]  # nothing half made
    for _ in range(2):
        with pytest.raises(LogFull, match="No space left on device"):
            log.append(b"b" * 2100)  # needs a new segment: made inline, which reports the full disk
    faults.fallocate_fail = None
    assert log.append(b"c" * 2100) == 3
    log.close()
    assert _read(tmp_path) == [(1, b"a" * 1000), (2, b"a" * 1100), (3, b"c" * 2100)]
