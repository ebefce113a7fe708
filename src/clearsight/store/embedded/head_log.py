"""The head's durable copy: the ``head_log`` table, one row per group commit's new head rows (or
per deletion of head rows), each row's samples compressed into one BLOB.

The head is read from its in-memory mirror (``head.py``) only; the table exists so that what was
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

Compaction deletes every record in the transaction that writes the chunks; retention deletes the
records wholly older than its cutoff, and ``replay`` drops the samples below the retention floor
(persisted in the same transaction). The other samples a record held are therefore what replay
must rebuild: the log is exactly the head.

Encoding (``data``): a 10-byte header (``_HEADER``: format 1, kind, row count, the payload's
uncompressed size) then one zstd frame (level 1) of the byte-shuffled columns: series ids as deltas
(uint32), timestamps as deltas (int64), the values' IEEE-754 bits (int64). Byte shuffling puts the
high bytes of the columns together, which is what makes deltas and values of one magnitude
compress.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

from clearsight.model.samples import F64Array, I64Array
from clearsight.store.embedded import zstd_frames

U32Array = npt.NDArray[np.uint32]

DDL = """CREATE TABLE IF NOT EXISTS head_log (
    seq BIGINT NOT NULL,
    n UINTEGER NOT NULL,
    min_ts BIGINT NOT NULL,
    max_ts BIGINT NOT NULL,
    data BLOB NOT NULL
)"""

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
    """Writes records in the writer's connection (inside its transaction or as one autocommit
    statement). Writer thread only."""

    def __init__(self) -> None:
        self._seq = 1

    def append(self, con: duckdb.DuckDBPyConnection, sid: U32Array, ts: I64Array, vals: F64Array) -> None:
        if ts.shape[0] == 0:
            return
        data = encode_rows(sid, ts, vals)
        con.execute("INSERT INTO head_log VALUES (?, ?, ?, ?, ?)",
                    [self._seq, int(ts.shape[0]), int(ts.min()), int(ts.max()), data])
        self._seq += 1

    def delete(self, con: duckdb.DuckDBPyConnection, ids: U32Array, start_ms: int, end_ms: int) -> None:
        if ids.shape[0] == 0:
            return
        con.execute("INSERT INTO head_log VALUES (?, ?, ?, ?, ?)",
                    [self._seq, 0, start_ms, end_ms, encode_delete(ids)])
        self._seq += 1

    @staticmethod
    def clear(con: duckdb.DuckDBPyConnection) -> None:
        """Every record goes (compaction: the head is now in chunks)."""
        con.execute("DELETE FROM head_log")

    @staticmethod
    def drop_before(con: duckdb.DuckDBPyConnection, cutoff: int) -> None:
        """Records whose samples (or deleted range) all lie before ``cutoff`` go (retention)."""
        con.execute("DELETE FROM head_log WHERE max_ts < ?", [cutoff])

    def replay(self, con: duckdb.DuckDBPyConnection, floor: int) -> tuple[U32Array, I64Array, F64Array, int]:
        """``replay``, and the next record follows the last one read."""
        sid, ts, vals, damaged, top = replay(con, floor)
        self._seq = top + 1
        return sid, ts, vals, damaged


def replay(con: duckdb.DuckDBPyConnection, floor: int) -> tuple[U32Array, I64Array, F64Array, int, int]:
    """The head the records describe, sorted by (series, ts), unique, without samples below
    ``floor``; how many records were damaged (skipped, not decodable); the highest ``seq``."""
    rows = con.execute("SELECT seq, min_ts, max_ts, data FROM head_log ORDER BY seq").fetchall()
    sids: list[U32Array] = []
    tss: list[I64Array] = []
    valss: list[F64Array] = []
    seqs: list[I64Array] = []
    deletes: list[tuple[int, U32Array, int, int]] = []
    damaged = 0
    top = 0
    for seq, lo, hi, data in rows:
        top = max(top, int(seq))
        try:
            rec = decode(bytes(data))
        except HeadLogError:
            damaged += 1
            continue
        if rec.kind == DELETE:
            deletes.append((int(seq), rec.sid, int(lo), int(hi)))
            continue
        sids.append(rec.sid)
        tss.append(rec.ts)
        valss.append(rec.vals)
        seqs.append(np.full(rec.ts.shape[0], int(seq), dtype=np.int64))
    if not sids:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), damaged, top
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
    return sid, ts, vals, damaged, top
