"""An append-only log of opaque byte records in checksummed, preallocated segment files.

A store's write-ahead copy of what it acknowledged before the data reaches its database (the
metrics head log, ``store/embedded/head_log.py``). One writer thread appends; nothing here is
signal-specific.

**Files**: a directory of segments named ``<index>.seg`` (index zero-padded, increasing). A segment
is created at its full size (``segment_bytes``, 4 MiB by default; a record larger than that gets a
segment of its own, its size rounded up to 64 KiB): ``posix_fallocate`` reserves the blocks, zeros are
written over them and synced, and only then is the file renamed from ``<index>.seg.new`` into place.
Appends therefore overwrite zeros inside an existing file: the file never grows, ``fdatasync`` has
no size to record, and a full disk shows at the creation of a segment (or, under RLIMIT_FSIZE, at
the first byte past the limit) the same way for every write until space returns.

**Frames**: each record is ``magic u32 | length u32 | seq u64 | crc32 u32`` (little endian, 20 bytes)
then ``length`` payload bytes, the CRC (``zlib.crc32``) covering the first 16 header bytes and the
payload. Sequence numbers increase by one within a segment (a failed sync skips one across
segments). The end of a segment's records is the first all-zero header after which the segment
holds only zeros.

**Append** = one ``os.pwrite`` of the frame (retried for the remainder when short, which yields the
real errno) then ``os.fdatasync`` (both release the GIL). A failed write zeros what it wrote and
leaves the tail where it was, so the next append overwrites it; a failed sync zeros the frame if it
can and abandons the segment (the next append starts a new one). Both raise ``LogFull``
(``Unavailable``: HTTP 503 with Retry-After), nothing of the record is acknowledged, and the next
append simply tries again. ``retract(seq)`` zeros the last record again (its database commit
failed after it was appended).

**Opening** scans every segment in order. A bad frame followed by nothing valid in the last segment
is a torn tail (a write cut by a crash, never acknowledged): its bytes are zeroed and a WARNING
gives their count. A segment file shorter than a segment that ends in a record's bytes was cut
(segments are created whole): an ERROR says the records past its end are lost. A bad frame followed by valid ones (or in any segment but the last) is damage:
the scan resynchronises on the next valid frame, every intact record before and after it is kept,
the intact records are written into a fresh segment that replaces the damaged one (moved aside as
``<name>.damaged-<ts>``), and an ERROR names the byte ranges and the sequence numbers lost.

**Spare segment** (``spare=True``): once the tail segment is half full (or when ``ready()`` finds
no tail), the next segment is created on a thread of its own (``<index>.seg.new``, filled and synced,
then renamed to ``<index>.seg`` and the directory synced), so that the append that fills a segment
only switches files instead of creating one (~3-7 ms of zeros and syncs on the writer thread). An
append that needs a segment while the spare is still being made waits for it; a spare that failed
(a full disk) is created again inline by that append, which then raises ``LogFull`` the usual way.
A spare left by a crash is an empty segment after the tail: opening takes it as the tail (a torn
record in the segment before it is still cut as a torn tail, not reported as damage).

**Truncation**: ``drop_through(seq)`` deletes the segments whose records are all at or below
``seq`` (after the store's database holds them); ``reset()`` deletes every segment. Sequence numbers
never go back (``advance(seq)`` raises the next one, e.g. from the store's own bookkeeping when
every segment was dropped).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from clearsight.store.kernel.repair import fsync_path
from clearsight.store.kernel.writer import Unavailable
from clearsight.threads import lower_priority

log = logging.getLogger(__name__)

MAGIC = 0x4C52_4C43  # "CLRL"
_HEADER = struct.Struct("<IIQI")  # magic, payload length, seq, crc32
HEADER_BYTES = _HEADER.size
_MAGIC_BYTES = struct.pack("<I", MAGIC)
DEFAULT_SEGMENT_BYTES = 4 << 20
_ROUND = 64 << 10
_ZEROS = bytes(1 << 20)
SUFFIX = ".seg"
_FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
SPARE_THREAD_NICE = 10  # the spare's thread runs after the writer (its syncs compete for the disk)


class LogWriteError(Unavailable):
    """A record could not be made durable (nothing of it is acknowledged); retry later."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message, retry_after)


class LogFull(LogWriteError):
    """The log's disk (or file size limit, or quota) is full: retry once space returns."""


@dataclass
class _Segment:
    index: int
    path: Path
    size: int
    first: int = 0  # seq of its first record (0: none)
    last: int = 0  # seq of its last record (0: none)
    used: int = 0  # bytes of intact records from the start


@dataclass(frozen=True)
class _Frame:
    at: int
    end: int
    seq: int


def _frame_at(data: bytes | memoryview, at: int, end: int, after: int) -> _Frame | None:
    """The intact frame at ``at`` (within ``data[:end]``) with a seq above ``after``, or None."""
    if at + HEADER_BYTES > end:
        return None
    magic, length, seq, crc = _HEADER.unpack_from(data, at)
    stop = at + HEADER_BYTES + length
    if magic != MAGIC or stop > end or seq <= after:
        return None
    if zlib.crc32(data[at + HEADER_BYTES: stop], zlib.crc32(data[at: at + 16])) != crc:
        return None
    return _Frame(at, stop, seq)


def _resync(data: bytes, at: int, end: int, after: int) -> _Frame | None:
    """The first intact frame starting after ``at`` (the next magic whose frame checks out)."""
    pos = data.find(_MAGIC_BYTES, at + 1, end)
    while pos >= 0:
        fr = _frame_at(data, pos, end, after)
        if fr is not None:
            return fr
        pos = data.find(_MAGIC_BYTES, pos + 1, end)
    return None


@dataclass
class _Scan:
    frames: list[_Frame]
    bad: list[tuple[int, int]]  # byte ranges that are not intact frames
    end: int  # end of the segment's non-zero bytes


def _scan(data: bytes, after: int) -> _Scan:
    end = len(data.rstrip(b"\0"))
    frames: list[_Frame] = []
    bad: list[tuple[int, int]] = []
    at = 0
    last = after
    while at < end:
        fr = _frame_at(data, at, len(data), last)
        if fr is None:
            fr = _resync(data, at, end, last)
            bad.append((at, fr.at if fr is not None else end))
            if fr is None:
                break
        frames.append(fr)
        last = fr.seq
        at = fr.end
    return _Scan(frames, bad, end)


class _WriteFailed(OSError):
    """``OSError`` of ``_pwrite_all`` with the bytes it wrote before failing."""

    def __init__(self, err: int, strerror: str, written: int) -> None:
        super().__init__(err, strerror)
        self.written = written


def _pwrite_all(fd: int, data: bytes | bytearray | memoryview, at: int) -> int:
    """Writes all of ``data`` at ``at``; a short write is retried for the remainder (which raises
    the real error: ENOSPC, EFBIG, EDQUOT...). Raises ``_WriteFailed``."""
    view = memoryview(data)
    done = 0
    stalls = 0
    while done < len(view):
        try:
            n = os.pwrite(fd, view[done:], at + done)
        except OSError as e:
            raise _WriteFailed(e.errno or errno.EIO, e.strerror or str(e), done) from e
        if n <= 0:
            stalls += 1
            if stalls > 1:
                raise _WriteFailed(errno.ENOSPC, f"no progress writing {len(view) - done} bytes", done)
            continue
        done += n
    return done


def _describe(e: OSError) -> str:
    return f"{e.strerror or e} (errno {e.errno})" if e.errno else str(e)


def _error(what: str, e: OSError) -> LogWriteError:
    cls = LogFull if e.errno in _FULL_ERRNOS else LogWriteError
    return cls(f"{what}: {_describe(e)}")


class RecordLog:
    """The log in ``directory`` (created if missing), scanned and repaired when opened. One writer
    thread calls every method; ``records``/``bytes`` may be read from any thread."""

    def __init__(self, directory: Path, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES, what: str = "record log",
                 spare: bool = False) -> None:
        if segment_bytes < 4096:
            raise ValueError("segment_bytes must be at least 4096")
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.what = what
        self.repairs: list[str] = []
        self._segments: list[_Segment] = []
        self._fd: int | None = None  # the tail segment, open for appends (None: the next append starts one)
        self._next_seq = 1
        self._last_frame: tuple[int, int, int] | None = None  # (seq, at, length) of the last append
        self.records = 0  # intact records held (all segments)
        self.bytes = 0  # their frame bytes
        self.spare = spare
        self._spare_thread: threading.Thread | None = None  # making the next segment (see _start_spare)
        self._spare_made: _Segment | None = None  # the spare, in place, not yet used
        self.spares_used = 0  # appends that switched to a spare (observable by tests)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open()

    # --- opening ---------------------------------------------------------------------------------

    def _open(self) -> None:
        for p in self.directory.glob(f"*{SUFFIX}.new"):  # a segment whose creation did not finish
            p.unlink()
        for p in self.directory.glob(f"*{SUFFIX}.repair"):
            target = p.with_name(p.name.removesuffix(".repair"))
            if target.exists():
                p.unlink()  # the rewrite did not finish: the damaged original is still in place
            else:
                p.rename(target)  # the original was moved aside, its rewrite not yet renamed
        names = sorted(p for p in self.directory.iterdir() if p.name.endswith(SUFFIX) and p.name[:-len(SUFFIX)].isdigit())
        last = 0
        # A spare left by a crash (an empty segment after the tail) does not make the tail an
        # earlier segment: a torn record there is still a torn tail.
        tail_k = len(names) - 1
        if len(names) > 1 and not names[-1].read_bytes().strip(b"\0"):
            tail_k -= 1
        for k, path in enumerate(names):
            data = path.read_bytes()
            seg = _Segment(int(path.name[:-len(SUFFIX)]), path, len(data))
            scan = _scan(data, last)
            is_tail = k == tail_k
            if len(data) < self.segment_bytes and (scan.bad or data[-HEADER_BYTES:].strip(b"\0")):
                # segments are created whole: a shorter file was cut, and what it held past its end is lost
                kept_to = scan.frames[-1].end if scan.frames else 0
                msg = (f"{path} is shorter than a segment ({len(data)} of {self.segment_bytes} bytes): the file "
                       f"was cut; the records after its {len(scan.frames)} intact ones (byte {kept_to} on) are lost")
                log.error("%s: %s", self.what, msg)
                self.repairs.append(msg)
                if scan.bad and scan.bad[-1][1] == scan.end:
                    self._zero(path, scan.bad[-1][0], scan.end)
                    scan.bad.pop()
            if scan.bad and is_tail and len(scan.bad) == 1 and scan.bad[0][1] == scan.end:
                at, stop = scan.bad[0]
                log.warning("%s: %s ends with %d bytes that are not an intact record (from byte %d): a write "
                            "cut short by a crash, never acknowledged; cut", self.what, path, stop - at, at)
                self._zero(path, at, stop)
            elif scan.bad:
                self._repair(seg, data, scan)
            if scan.frames:
                seg.first, seg.last = scan.frames[0].seq, scan.frames[-1].seq
                seg.used = scan.frames[-1].end
                last = seg.last
                self.records += len(scan.frames)
                self.bytes += sum(fr.end - fr.at for fr in scan.frames)
            self._segments.append(seg)
        self._next_seq = last + 1
        if self._segments:
            self._fd = os.open(self._segments[-1].path, os.O_RDWR)

    def _zero(self, path: Path, at: int, stop: int) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            _pwrite_all(fd, bytes(stop - at), at)
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def _repair(self, seg: _Segment, data: bytes, scan: _Scan) -> None:
        """Rewrites the intact records of a damaged segment into a fresh one in its place; the
        damaged file is kept beside it as ``<name>.damaged-<ts>``."""
        lost = []
        for at, stop in scan.bad:
            before = [fr.seq for fr in scan.frames if fr.end <= at]
            after = [fr.seq for fr in scan.frames if fr.at >= stop]
            lo = before[-1] + 1 if before else None
            hi = after[0] - 1 if after else None
            if lo is not None and hi is not None:
                seqs = f"records {lo}..{hi}" if hi >= lo else "no whole record"
            elif lo is not None:
                seqs = f"the records from {lo} on"
            else:
                seqs = f"the records before {hi + 1}" if hi is not None else "every record of it"
            lost.append(f"bytes {at}..{stop} ({stop - at} bytes; {seqs})")
        tmp = seg.path.with_name(seg.path.name + ".repair")
        size = max(seg.size, self.segment_bytes)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            self._fill(fd, size)
            at = 0
            for fr in scan.frames:
                _pwrite_all(fd, data[fr.at: fr.end], at)
                at += fr.end - fr.at
            os.fdatasync(fd)
        finally:
            os.close(fd)
        aside = seg.path.with_name(f"{seg.path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        seg.path.rename(aside)
        tmp.rename(seg.path)
        fsync_path(self.directory)
        seg.size = size
        shift = 0  # the kept frames now lie back to back
        frames = []
        for fr in scan.frames:
            frames.append(_Frame(shift, shift + fr.end - fr.at, fr.seq))
            shift += fr.end - fr.at
        scan.frames[:] = frames
        msg = (f"{seg.path} is damaged: lost {'; '.join(lost)}; kept {len(frames)} intact records "
               f"(rewritten in place); the damaged file moved aside: {aside}")
        log.error("%s: %s", self.what, msg)
        self.repairs.append(msg)

    # --- reading ---------------------------------------------------------------------------------

    def read(self) -> Iterator[tuple[int, bytes]]:
        """Every record held, ``(seq, payload)`` in seq order (read from the files)."""
        for seg in list(self._segments):
            if not seg.used:
                continue
            with open(seg.path, "rb") as f:
                data = f.read(seg.used)
            at = 0
            after = 0
            while at < len(data):
                fr = _frame_at(data, at, len(data), after)
                if fr is None:
                    log.error("%s: %s changed on disk since it was opened (byte %d); its later records are "
                              "skipped", self.what, seg.path, at)
                    break
                yield fr.seq, data[at + HEADER_BYTES: fr.end]
                after = fr.seq
                at = fr.end

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def file_bytes(self) -> int:
        """Bytes of the segment files (preallocated), the spare's included."""
        spare = self._spare_made
        return sum(s.size for s in self._segments) + (spare.size if spare is not None else 0)

    @property
    def segments(self) -> int:
        return len(self._segments)

    def advance(self, seq: int) -> None:
        """The next record gets at least ``seq``."""
        self._next_seq = max(self._next_seq, seq)

    # --- appending -------------------------------------------------------------------------------

    def _fill(self, fd: int, size: int) -> None:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
        for at in range(0, size, len(_ZEROS)):
            _pwrite_all(fd, memoryview(_ZEROS)[: min(len(_ZEROS), size - at)], at)
        os.fdatasync(fd)

    def _make_segment(self, index: int, size: int) -> tuple[int, _Segment]:
        """Creates segment ``index`` of ``size`` bytes whole (see the module's docstring); returns its
        open fd. ``LogWriteError`` (``LogFull`` on a full disk) leaves nothing behind."""
        path = self.directory / f"{index:012d}{SUFFIX}"
        tmp = path.with_name(path.name + ".new")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            raise _error(f"{self.what}: creating {tmp}", e) from e
        try:
            self._fill(fd, size)
            os.rename(tmp, path)
            fsync_path(self.directory)
        except OSError as e:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _error(f"{self.what}: creating a segment of {size} bytes ({path})", e) from e
        return fd, _Segment(index, path, size)

    def _next_index(self) -> int:
        if self._spare_made is not None:
            return self._spare_made.index + 1
        return self._segments[-1].index + 1 if self._segments else 1

    def _new_segment(self, need: int) -> None:
        size = self.segment_bytes if need <= self.segment_bytes else -(-need // _ROUND) * _ROUND
        spare = self._take_spare()
        if spare is not None:
            fd, seg = spare
            if need <= seg.size:
                self._switch(fd, seg)
                self.spares_used += 1
                return
            self._switch(fd, seg)  # too small for this record: kept as an empty segment, dropped later
        fd, seg = self._make_segment(self._next_index(), size)
        self._switch(fd, seg)

    def _switch(self, fd: int, seg: _Segment) -> None:
        self._close_fd()
        self._fd = fd
        self._segments.append(seg)

    # --- the spare segment (``spare=True``) -------------------------------------------------------

    def _start_spare(self) -> None:
        """Starts making the next segment on a thread of its own (none is made or being made)."""
        if self._spare_thread is not None or self._spare_made is not None:
            return
        index = self._next_index()
        t = threading.Thread(target=self._make_spare, args=(index,), name="clearsight-log-spare", daemon=True)
        self._spare_thread = t
        t.start()

    def _make_spare(self, index: int) -> None:
        lower_priority(SPARE_THREAD_NICE)
        try:
            fd, seg = self._make_segment(index, self.segment_bytes)
        except Exception as e:  # a full disk: the append that needs it creates it inline (and raises)
            log.debug("%s: no spare segment: %s", self.what, e)
            return
        os.close(fd)  # reopened by the writer when used: an fd is not handed between threads
        self._spare_made = seg

    def _settle_spare(self) -> None:
        """Waits for a spare being made (then in ``_spare_made`` unless it failed)."""
        t = self._spare_thread
        if t is not None:
            t.join()
            self._spare_thread = None

    def _take_spare(self) -> tuple[int, _Segment] | None:
        """The spare, opened, if one was made (waiting for one being made); None otherwise."""
        self._settle_spare()
        seg, self._spare_made = self._spare_made, None
        if seg is None:
            return None
        try:
            return os.open(seg.path, os.O_RDWR), seg
        except OSError as e:
            log.warning("%s: the spare segment %s cannot be opened (%s); creating another", self.what, seg.path,
                        _describe(e))
            return None

    def _drop_spare(self) -> None:
        """Deletes the spare (waiting for one being made)."""
        self._settle_spare()
        seg, self._spare_made = self._spare_made, None
        if seg is not None:
            with contextlib.suppress(OSError):
                seg.path.unlink()

    def ready(self) -> None:
        """Creates the tail segment now when there is none (after a truncation), so that the next
        append does not wait for a segment's creation (~2.5-7 ms here): with ``spare``, on the
        spare's thread (this returns at once); else here, ``LogWriteError`` if that fails (the next
        append tries again)."""
        if self._fd is not None:
            return
        if self.spare:
            self._start_spare()
        else:
            self._new_segment(0)

    def append(self, payload: bytes) -> int:
        """Appends ``payload`` durably; returns its seq. ``LogFull``/``LogWriteError``: nothing of
        it is stored (or it will not be replayed), and the log accepts the next append."""
        seq = self._next_seq
        frame = bytearray(HEADER_BYTES + len(payload))
        frame[HEADER_BYTES:] = payload
        _HEADER.pack_into(frame, 0, MAGIC, len(payload), seq, 0)
        crc = zlib.crc32(payload, zlib.crc32(memoryview(frame)[:16]))
        struct.pack_into("<I", frame, 16, crc)
        tail = self._segments[-1] if self._segments else None
        if self._fd is None or tail is None or tail.used + len(frame) > tail.size:
            self._new_segment(len(frame))
            tail = self._segments[-1]
        fd = self._fd
        assert fd is not None
        at = tail.used
        try:
            _pwrite_all(fd, frame, at)
        except _WriteFailed as e:
            written = e.written
            if written:
                try:  # the next append starts here again; garbage must not remain after it
                    _pwrite_all(fd, bytes(written), at)
                except OSError:
                    self._close_fd()  # cannot clean it: the next append starts a new segment
            raise _error(f"{self.what}: writing a record of {len(frame)} bytes at byte {at} of {tail.path}",
                         e) from e
        try:
            os.fdatasync(fd)
        except OSError as e:
            # The page cache no longer says what the disk holds: stop using this segment, and
            # try to zero the frame so a reopen does not bring back what was refused.
            with contextlib.suppress(OSError):
                _pwrite_all(fd, bytes(len(frame)), at)
                os.fdatasync(fd)
            self._close_fd()
            self._next_seq = seq + 1
            raise _error(f"{self.what}: syncing {tail.path}", e) from e
        tail.used = at + len(frame)
        tail.first = tail.first or seq
        tail.last = seq
        self._next_seq = seq + 1
        self._last_frame = (seq, at, len(frame))
        self.records += 1
        self.bytes += len(frame)
        if self.spare and 2 * tail.used >= tail.size:
            self._start_spare()  # a no-op while one is made or waiting
        return seq

    def retract(self, seq: int) -> None:
        """Withdraws the last record appended (``seq``), whose effect on the store failed: its frame
        is zeroed and synced, the tail moves back. Raises ``LogWriteError`` if that fails (the
        record then stays, and is replayed)."""
        if self._last_frame is None or self._last_frame[0] != seq or self._fd is None:
            raise LogWriteError(f"{self.what}: record {seq} is not the last one appended; cannot retract it")
        _, at, length = self._last_frame
        tail = self._segments[-1]
        try:
            _pwrite_all(self._fd, bytes(length), at)
            os.fdatasync(self._fd)
        except OSError as e:
            self._close_fd()
            raise _error(f"{self.what}: withdrawing record {seq} of {tail.path}", e) from e
        tail.used = at
        if tail.last == seq:
            tail.last = seq - 1 if tail.first < seq else 0
            tail.first = tail.first if tail.last else 0
        self._next_seq = seq
        self._last_frame = None
        self.records -= 1
        self.bytes -= length

    # --- truncation ------------------------------------------------------------------------------

    def drop_through(self, seq: int) -> int:
        """Deletes the segments whose records all have a seq at or below ``seq`` (empty ones too);
        returns how many. The tail segment goes as well when it qualifies (the next append starts
        a new one)."""
        keep: list[_Segment] = []
        dropped = 0
        for seg in self._segments:
            if seg.last <= seq:
                if seg is self._segments[-1]:
                    self._close_fd()
                self._unlink(seg)
                dropped += 1
            else:
                keep.append(seg)
        if dropped:
            self._segments = keep
            self._last_frame = None
            fsync_path(self.directory)
        return dropped

    def reset(self) -> None:
        """Deletes every segment, the spare too (sequence numbers continue)."""
        self._close_fd()
        self._drop_spare()
        for seg in self._segments:
            self._unlink(seg)
        self._segments = []
        self._last_frame = None
        self.records = 0
        self.bytes = 0
        fsync_path(self.directory)

    def _unlink(self, seg: _Segment) -> None:
        try:
            seg.path.unlink()
        except FileNotFoundError:
            pass
        self.records -= seg.last - seg.first + 1 if seg.first else 0
        self.bytes -= seg.used

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Closes the tail; an unused spare is deleted."""
        self._close_fd()
        self._drop_spare()
