"""The sealed block format of the log store: the lines of one stream, in time order, compressed.

A block is one row of a day's ``logblk_YYYYMMDD`` table (docs/storage.md "Logs"): the stream id,
the first and last timestamp, the first and last write sequence number, the line count, and two
BLOBs:

- ``body``: every line's UTF-8 bytes concatenated (no separator) and zstd-compressed as one frame,
  so similar lines of a stream share one compression window (the point of the layout: ~200-byte
  lines compressed one by one, or in DuckDB's per-vector string framing, stay near 4.5x);
- ``meta``: one Arrow IPC record batch (no schema: ``META_SCHEMA`` is fixed), its buffers
  zstd-compressed, holding per line the timestamp and write sequence as deltas from the previous
  line, the body length, severity, severity text, attributes, trace and span id and resource id.

Decoding is Arrow's (C++): no Python per line. ``seq`` is the write order within the day (equal
timestamps come back in it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from clearsight.model.logs import SPAN_ID_BYTES, TRACE_ID_BYTES

try:  # memmem without the GIL (setup.py builds it); bytes.__contains__ is its reference
    from clearsight.store.embedded import _logscan  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without Cython or a C compiler
    _logscan = None

BODY_LEVEL = 3  # zstd level of bodies (measured: 5x-6.5x on bench lines at ~0.4 us/line)
_CODEC = pa.Codec("zstd", compression_level=BODY_LEVEL)
_IPC = pa.ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=BODY_LEVEL))

META_SCHEMA = pa.schema([
    ("ts_delta", pa.int64()),
    ("seq_delta", pa.int64()),
    ("body_len", pa.int32()),
    ("severity", pa.uint8()),
    ("severity_text", pa.string()),
    ("attr_keys", pa.list_(pa.string())),
    ("attr_values", pa.list_(pa.string())),
    ("trace_id", pa.binary(TRACE_ID_BYTES)),
    ("span_id", pa.binary(SPAN_ID_BYTES)),
    ("resource_id", pa.uint32()),
])

# The columns a decoded block has (the partition tables' columns and ``seq``), in this order.
ROW_SCHEMA = pa.schema([
    ("ts", pa.int64()),
    ("stream_id", pa.uint32()),
    ("severity", pa.uint8()),
    ("severity_text", pa.string()),
    ("body", pa.string()),
    ("attr_keys", pa.list_(pa.string())),
    ("attr_values", pa.list_(pa.string())),
    ("trace_id", pa.binary(TRACE_ID_BYTES)),
    ("span_id", pa.binary(SPAN_ID_BYTES)),
    ("resource_id", pa.uint32()),
    ("seq", pa.int64()),
])


def _stream(batch: pa.RecordBatch | None) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, META_SCHEMA, options=_IPC) as w:
        if batch is not None:
            w.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


_SCHEMA_MSG = len(_stream(None)) - 8  # an IPC stream: schema message, batches, 8-byte end marker


def _message(batch: pa.RecordBatch) -> bytes:
    """The batch's IPC message alone (the schema is ``META_SCHEMA``, not stored per block)."""
    return _stream(batch)[_SCHEMA_MSG:-8]


class BlockInfo(NamedTuple):
    """What a block holds: its stream, first/last timestamp and sequence number, line count and
    uncompressed body size (the columns of ``logblk_*`` before the two BLOBs)."""

    stream_id: int
    min_ts: int
    max_ts: int
    first_seq: int
    last_seq: int
    n: int
    body_bytes: int


@dataclass(frozen=True)
class Block:
    """One encoded block (a row of ``logblk_YYYYMMDD_NNNNNN``)."""

    info: BlockInfo
    meta: bytes
    body: bytes


# The columns of a ``logblk_*`` table (logs_schema.BLOCK_COLUMNS) as Arrow types.
TABLE_SCHEMA = pa.schema([
    ("stream_id", pa.uint32()), ("min_ts", pa.int64()), ("max_ts", pa.int64()), ("first_seq", pa.int64()),
    ("last_seq", pa.int64()), ("n", pa.uint32()), ("body_bytes", pa.uint64()), ("meta", pa.binary()),
    ("body", pa.binary()),
])


def table_of(blocks: list[Block]) -> pa.Table:
    """Blocks as rows of a ``logblk_*`` table."""
    cols: list[list[Any]] = [list(c) for c in zip(*(b.info for b in blocks), strict=True)] if blocks else [[]] * 7
    return pa.Table.from_arrays([*cols, [b.meta for b in blocks], [b.body for b in blocks]], schema=TABLE_SCHEMA)


def _deltas(x: npt.NDArray[np.int64], base: int) -> npt.NDArray[np.int64]:
    out = np.empty_like(x)
    if x.size:
        out[0] = x[0] - base
        np.subtract(x[1:], x[:-1], out=out[1:])
    return out


def _column(t: pa.Table, name: str, typ: pa.DataType) -> pa.Array:
    return t.column(name).combine_chunks().cast(typ)


def encode(stream_id: int, rows: pa.Table) -> Block:
    """A block of ``rows`` (ROW_SCHEMA columns, all of ``stream_id``, sorted by ``(ts, seq)``)."""
    n = rows.num_rows
    ts = np.asarray(rows.column("ts").to_numpy(), dtype=np.int64)
    seq = np.asarray(rows.column("seq").to_numpy(), dtype=np.int64)
    body = rows.column("body").combine_chunks()
    lengths = np.asarray(pc.binary_length(body).to_numpy(zero_copy_only=False), dtype=np.int32)
    offsets = np.frombuffer(body.buffers()[1], dtype=np.int32, count=n + 1, offset=body.offset * 4)
    data = body.buffers()[2]
    start, end = int(offsets[0]), int(offsets[-1])
    raw = data[start:end] if data is not None else pa.py_buffer(b"")
    meta = pa.record_batch([
        pa.array(_deltas(ts, int(ts[0]))),
        pa.array(_deltas(seq, int(seq.min()))),
        pa.array(lengths),
        _column(rows, "severity", pa.uint8()),
        _column(rows, "severity_text", pa.string()),
        _column(rows, "attr_keys", pa.list_(pa.string())),
        _column(rows, "attr_values", pa.list_(pa.string())),
        _column(rows, "trace_id", pa.binary(TRACE_ID_BYTES)),
        _column(rows, "span_id", pa.binary(SPAN_ID_BYTES)),
        _column(rows, "resource_id", pa.uint32()),
    ], schema=META_SCHEMA)
    return Block(BlockInfo(stream_id, int(ts[0]), int(ts[-1]), int(seq.min()), int(seq.max()), n, end - start),
                 meta=_message(meta),
                 body=_CODEC.compress(raw, asbytes=True) if end > start else b"")


def body_data(body: bytes | pa.Buffer, body_bytes: int) -> bytes:
    """A block's lines' bytes, concatenated (one zstd decompression)."""
    return _CODEC.decompress(body, decompressed_size=body_bytes, asbytes=True) if body_bytes else b""


def decode(stream_id: int, min_ts: int, first_seq: int, meta: bytes | pa.Buffer, data: bytes) -> pa.Table:
    """The rows of a block (ROW_SCHEMA) from its meta and its ``body_data``."""
    batch = pa.ipc.read_record_batch(pa.ipc.read_message(meta), META_SCHEMA)
    n = batch.num_rows
    ts = np.cumsum(np.asarray(batch.column(0).to_numpy(), dtype=np.int64)) + min_ts
    seq = np.cumsum(np.asarray(batch.column(1).to_numpy(), dtype=np.int64)) + first_seq
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.asarray(batch.column(2).to_numpy(), dtype=np.int32), out=offsets[1:])
    if int(offsets[-1]) != len(data):
        raise ValueError(f"log block of stream {stream_id}: {len(data)} body bytes, its lines need {offsets[-1]}")
    body_arr = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    return pa.table([
        pa.array(ts), pa.array(np.full(n, stream_id, dtype=np.uint32)), batch.column(3), batch.column(4), body_arr,
        batch.column(5), batch.column(6), batch.column(7), batch.column(8), batch.column(9), pa.array(seq),
    ], schema=ROW_SCHEMA)


def sizes(min_ts: int, first_seq: int, meta: bytes | pa.Buffer) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                                                     npt.NDArray[np.int64]]:
    """Timestamps, body sizes and sequence numbers of a block's lines (no body decompressed)."""
    batch = pa.ipc.read_record_batch(pa.ipc.read_message(meta), META_SCHEMA)
    ts = np.cumsum(np.asarray(batch.column(0).to_numpy(), dtype=np.int64)) + min_ts
    seq = np.cumsum(np.asarray(batch.column(1).to_numpy(), dtype=np.int64)) + first_seq
    return ts, np.asarray(batch.column(2).to_numpy(), dtype=np.int64), seq


def contains_all(data: bytes, needles: tuple[bytes, ...]) -> bool:
    """Whether ``data`` holds every needle (natively without the GIL when built)."""
    if _logscan is not None:
        return bool(_logscan.contains_all(data, needles))
    return all(nd in data for nd in needles)


def scan(body: bytes | pa.Buffer, body_bytes: int, needles: tuple[bytes, ...]) -> bytes | None:
    """A block's ``body_data`` when it holds every needle, else None (decompression and search
    both run without the GIL: several threads scan blocks in parallel)."""
    data = body_data(body, body_bytes)
    return data if contains_all(data, needles) else None
