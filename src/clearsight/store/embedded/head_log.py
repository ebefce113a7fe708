"""The head's durable copy: one record per group commit's new head rows (or per deletion of head
rows), each record's samples compressed, appended to a checksummed segment log of its own
(``<data_dir>/metrics.headlog/``, kernel ``record_log.py``; schema 6). Schema 5 kept the same records
as rows of a DuckDB table, ``head_log``: one ``INSERT`` per group commit cost ~0.5 ms of CPU in
DuckDB's Python client (parse, plan, bind every call) and many GIL hand-offs under load; an append
is one ``pwrite`` and one ``fdatasync`` (docs/storage.md "Decision: the head log in files of its
own").

The head is read from its in-memory mirror (``head.py``) only; the log exists so that what was
acknowledged survives ``kill -9``, and is read back at open (``replay``). One row per sample (the
``samples`` table of schema 4) kept a second, uncompressed copy of the head in DuckDB's memory until
the next checkpoint (~24 bytes per row, beside the mirror's 20); a record holds the same rows in
~4-8 bytes each (measured in docs/storage.md "Memory").

Records, in ``seq`` order, form a log:

- ``ROWS``: samples ``(series id, ts, value)``, sorted by (series, ts), unique within the record. A
  later record's sample at the same ``(series, ts)`` replaces an earlier one (an overwrite of a head
  sample is written as a new record, never as a change of an old one);
- ``DELETE``: series ids and a time range ``[min_ts, max_ts]``: the samples of earlier records of
  those series in that range are gone (``delete_series``).

Compaction records the last seq it moved into chunks (``clearsight_meta`` ``head_log_compacted``) in
the transaction that writes the chunks and deletes the log's segments after that commit; ``replay``
skips the records at or below it (a crash between the two loses nothing and replays nothing twice).
Retention leaves the log alone: ``replay`` drops the samples below the retention floor (persisted in
retention's transaction), and the next compaction empties the log. The other samples a record held
are therefore what replay must rebuild: the log is exactly the head.

A log record is the record's time range (``_RANGE``: two int64, a ROWS record's min/max ts, a DELETE's
range) then ``data``. Encoding (``data``): a 10-byte header (``_HEADER``: format 1, kind, row count, the payload's
uncompressed size) then one zstd frame (level 1) of the byte-shuffled columns: series ids as deltas
(uint32), timestamps as deltas (int64), the values' IEEE-754 bits (int64). Byte shuffling puts the
high bytes of the columns together, which is what makes deltas and values of one magnitude
compress.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clearsight.model.samples import F64Array, I64Array
from clearsight.store.embedded import zstd_frames
from clearsight.store.kernel import record_log

log = logging.getLogger(__name__)

U32Array = npt.NDArray[np.uint32]

# Schema 5's table of records (schema 6 moves its rows into the log at open, then drops it).
LEGACY_TABLE = "head_log"
# A log record: the record's time range (a DELETE's range; a ROWS record's min/max ts) then ``data``.
_RANGE = struct.Struct("<qq")

ROWS = 1
DELETE = 2
_FORMAT = 1
_HEADER = struct.Struct("<BBII")  # format, kind, rows, payload bytes (uncompressed)
_LEVEL = 1  # zstd level: ~0.3 us per row here; higher levels gain little on these columns


class HeadLogError(ValueError):
    """A record that does not decode (damaged)."""


def _shuffle(a: npt.NDArray[np.generic]) -> bytes:
    """The bytes of ``a`` grouped by byte position (all first bytes, then all second bytes, ...)."""
    width = a.dtype.itemsize
    return np.ascontiguousarray(a).view(np.uint8).reshape(-1, width).T.tobytes()


def _unshuffle(raw: npt.NDArray[np.uint8], n: int, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
    width = np.dtype(dtype).itemsize
    return np.ascontiguousarray(raw.reshape(width, n).T).view(dtype).reshape(n)


def encode_rows(sid: U32Array, ts: I64Array, vals: F64Array) -> bytes:
    """A ``ROWS`` record of samples sorted by (series, ts)."""
    n = int(ts.shape[0])
    d_sid = np.diff(sid.astype(np.uint32), prepend=np.uint32(0))
    d_ts = np.diff(ts.astype(np.int64), prepend=np.int64(0))
    payload = _shuffle(d_sid) + _shuffle(d_ts) + _shuffle(np.ascontiguousarray(vals, dtype=np.float64).view(np.int64))
    return _HEADER.pack(_FORMAT, ROWS, n, len(payload)) + zstd_frames.compress(payload, _LEVEL)


def encode_delete(ids: U32Array) -> bytes:
    """A ``DELETE`` record of the series ``ids`` (sorted, unique); its range is in the row."""
    n = int(ids.shape[0])
    payload = _shuffle(np.diff(ids.astype(np.uint32), prepend=np.uint32(0)))
    return _HEADER.pack(_FORMAT, DELETE, n, len(payload)) + zstd_frames.compress(payload, _LEVEL)


@dataclass(frozen=True)
class Record:
    kind: int
    sid: U32Array
    ts: I64Array
    vals: F64Array


def decode(data: bytes) -> Record:
    """The record ``data`` (``ts``/``vals`` empty for a ``DELETE``); ``HeadLogError`` if damaged."""
    if len(data) < _HEADER.size:
        raise HeadLogError("head log record shorter than its header")
    fmt, kind, n, size = _HEADER.unpack_from(data)
    if fmt != _FORMAT or kind not in (ROWS, DELETE):
        raise HeadLogError(f"head log record of format {fmt}, kind {kind}")
    if size != n * (20 if kind == ROWS else 4):
        raise HeadLogError(f"head log record of {n} rows holds {size} bytes")
    raw = np.empty(size, dtype=np.uint8)
    try:
        zstd_frames.decompress_into(memoryview(data)[_HEADER.size:], raw)
    except zstd_frames.ZstdError as e:
        raise HeadLogError(str(e)) from e
    sid = np.cumsum(_unshuffle(raw[: 4 * n], n, np.uint32), dtype=np.uint32)
    if kind == DELETE:
        return Record(kind, sid, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
    ts = np.cumsum(_unshuffle(raw[4 * n: 12 * n], n, np.int64), dtype=np.int64)
    vals = _unshuffle(raw[12 * n:], n, np.int64).view(np.float64)
    return Record(kind, sid, ts, vals)


class HeadLog:
    """The head's records in a ``RecordLog`` (kernel ``record_log.py``) in ``directory``. Writer
    thread only.

    A record written before its database transaction commits (new series, deletes, rewritten
    chunks in the same group) is *open* until ``settle()``; ``withdraw()`` zeros it again when that
    transaction failed, so a refused write leaves nothing behind."""

    def __init__(self, directory: Path, *, segment_bytes: int = record_log.DEFAULT_SEGMENT_BYTES,
                 spare: bool = True) -> None:
        # spare: the next segment is made on a thread of its own (record_log.py), not by the group
        # commit that fills a segment
        self.log = record_log.RecordLog(directory, segment_bytes=segment_bytes, what="metrics head log", spare=spare)
        self._open_seq = 0

    @property
    def last_seq(self) -> int:
        """The seq of the last record appended (0: none yet)."""
        return self.log.next_seq - 1

    def _append(self, kind_data: bytes, lo: int, hi: int) -> None:
        self._open_seq = self.log.append(_RANGE.pack(lo, hi) + kind_data)

    def append(self, sid: U32Array, ts: I64Array, vals: F64Array) -> None:
        if ts.shape[0] == 0:
            return
        self._append(encode_rows(sid, ts, vals), int(ts.min()), int(ts.max()))

    def delete(self, ids: U32Array, start_ms: int, end_ms: int) -> None:
        if ids.shape[0] == 0:
            return
        self._append(encode_delete(ids), start_ms, end_ms)

    def settle(self) -> None:
        """The open record's transaction committed (or it needed none)."""
        self._open_seq = 0

    def withdraw(self) -> None:
        """The open record's transaction failed: the record is zeroed again (logged, not raised,
        when even that fails: the record then stays and is replayed)."""
        seq, self._open_seq = self._open_seq, 0
        if not seq:
            return
        try:
            self.log.retract(seq)
        except record_log.LogWriteError as e:
            log.error("a head log record of a failed commit could not be withdrawn (%s): its samples will "
                      "reappear when the log is replayed", e)

    def truncate(self, seq: int, *, ready: bool = False) -> None:
        """The records at or below ``seq`` are in the database: their segments go. ``ready``: then
        starts making the next segment (the next write does not wait for all of it)."""
        try:
            self.log.drop_through(seq)
        except OSError as e:  # they are skipped at replay anyway (clearsight_meta head_log_compacted)
            log.warning("metrics head log: deleting segments failed: %s", e)
        self.log.advance(seq + 1)
        if ready:
            try:
                self.log.ready()
            except record_log.LogWriteError as e:
                log.warning("metrics head log: %s (the next write tries again)", e)

    def close(self) -> None:
        """Closes the log; empty segments (a clean stop compacted everything) are deleted."""
        if self.log.records == 0 and self.log.segments:
            with contextlib.suppress(OSError):
                self.log.reset()
        self.log.close()

    def migrate(self, rows: list[tuple[int, int, int, bytes]]) -> int:
        """Schema 5 -> 6: the legacy ``head_log`` table's rows ``(seq, min_ts, max_ts, data)`` become
        the log's records (what the log held before is dropped: only a migration cut short by a
        crash leaves any). Returns how many."""
        self.log.reset()
        for _seq, lo, hi, data in sorted(rows):
            self._append(bytes(data), int(lo), int(hi))
        self._open_seq = 0
        return len(rows)

    def replay(self, floor: int, compacted: int) -> tuple[U32Array, I64Array, F64Array, int, int]:
        """The head the records after ``compacted`` describe, sorted by (series, ts), unique,
        without samples below ``floor``; how many records were damaged (skipped, not decodable);
        the highest series id any record names (ids up to it must not be given to new series)."""
        self.log.advance(compacted + 1)
        return replay(((seq, data) for seq, data in self.log.read() if seq > compacted), floor)


def replay(records: Iterable[tuple[int, bytes]], floor: int) -> tuple[U32Array, I64Array, F64Array, int, int]:
    """``HeadLog.replay`` of the records ``(seq, payload)`` given in seq order."""
    sids: list[U32Array] = []
    tss: list[I64Array] = []
    valss: list[F64Array] = []
    seqs: list[I64Array] = []
    deletes: list[tuple[int, U32Array, int, int]] = []
    damaged = 0
    top_sid = 0
    for seq, data in records:
        try:
            if len(data) < _RANGE.size:
                raise HeadLogError("head log record shorter than its range")
            lo, hi = _RANGE.unpack_from(data)
            rec = decode(data[_RANGE.size:])
        except HeadLogError:
            damaged += 1
            continue
        if rec.sid.shape[0]:
            top_sid = max(top_sid, int(rec.sid.max()))
        if rec.kind == DELETE:
            deletes.append((seq, rec.sid, lo, hi))
            continue
        sids.append(rec.sid)
        tss.append(rec.ts)
        valss.append(rec.vals)
        seqs.append(np.full(rec.ts.shape[0], seq, dtype=np.int64))
    if not sids:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), damaged, top_sid
    sid = np.concatenate(sids)
    ts = np.concatenate(tss)
    vals = np.concatenate(valss)
    seq_of = np.concatenate(seqs)
    keep = ts >= floor
    for d_seq, ids, lo, hi in deletes:
        keep &= ~((seq_of < d_seq) & (ts >= lo) & (ts <= hi) & np.isin(sid, ids))
    sid, ts, vals, seq_of = sid[keep], ts[keep], vals[keep], seq_of[keep]
    order = np.lexsort((seq_of, ts, sid))
    sid, ts, vals = sid[order], ts[order], vals[order]
    if sid.shape[0] > 1:  # the last record's sample of each (series, ts) wins
        last = np.ones(sid.shape[0], dtype=np.bool_)
        last[:-1] = (sid[1:] != sid[:-1]) | (ts[1:] != ts[:-1])
        sid, ts, vals = sid[last], ts[last], vals[last]
    return sid, ts, vals, damaged, top_sid
