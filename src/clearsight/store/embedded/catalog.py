"""The chunk catalogue: every row of the ``chunks`` table located in memory, so a read finds its
chunks with two ``searchsorted`` calls instead of a SQL statement (a DuckDB statement costs 1-3 ms
however little it reads, which was most of a small dashboard query's time), plus a bounded LRU of
the chunks' compressed bytes, so hot chunks never go to DuckDB at all.

Entries: ``(series id, min_ts, max_ts, n, codec, scale)`` and a process-local ``uid``, in numpy
columns sorted by ``(series id, min_ts)``. A ``(series id, min_ts)`` pair names at most one chunk at
any committed state (a ``(series, ts)`` is stored once), so it is the key the writer deletes by and
the key a missed blob is fetched by. Chunks are immutable: a rewrite deletes an entry and adds one
with a new ``uid``; the blob cache is keyed by ``uid`` and can therefore never hold stale bytes.

Only the writer thread changes the catalogue, and only after the transaction that changed the
table committed (inside the store's publication, like the head mirror): ``apply`` builds new
columns and publishes them with one attribute assignment. Readers take ``snapshot()`` and keep a
consistent view however long they run, without locks.

Memory: 34 bytes per chunk for the columns (a 720-sample chunk: 0.05 bytes per sample) plus the
blob cache, bounded by ``max_blob_bytes``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from clearsight.model.samples import I64Array
from clearsight.store.embedded.pairs import find_pairs

try:  # the Cython range filters (setup.py builds it); ChunkRows.find_py is its reference
    from clearsight.store.embedded import _inrange  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without Cython or a C compiler
    _inrange = None
try:  # the compiled small read (head.HeadView.read_cached) takes a snapshot's columns as _headsel.Catalog
    from clearsight.store.embedded import _headsel  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without Cython or a C compiler
    _headsel = None

U8Array = npt.NDArray[np.uint8]
U32Array = npt.NDArray[np.uint32]


@dataclass(frozen=True)
class ChunkRows:
    """Catalogue columns (one entry per chunk), sorted by (series id, min_ts) in a snapshot."""

    series_id: U32Array
    min_ts: I64Array
    max_ts: I64Array
    n: I64Array
    codec: U8Array
    scale: U8Array
    uid: I64Array

    @staticmethod
    def empty() -> ChunkRows:
        return ChunkRows(
            np.zeros(0, dtype=np.uint32),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.uint8),
            np.zeros(0, dtype=np.uint8),
            np.zeros(0, dtype=np.int64),
        )

    def __len__(self) -> int:
        return int(self.series_id.shape[0])

    @cached_property
    def native(self) -> Any:
        """The snapshot's series ids, min/max ts, sample counts and uids as ``_headsel.Catalog`` (their
        buffers acquired once per snapshot, on its first read, not per read); None without the
        compiled module."""
        if _headsel is None:
            return None
        return _headsel.Catalog(*(np.ascontiguousarray(a, dtype=d) for a, d in (
            (self.series_id, np.uint32), (self.min_ts, np.int64), (self.max_ts, np.int64), (self.n, np.int64),
            (self.uid, np.int64))))

    def take(self, pos: npt.NDArray[np.intp]) -> ChunkRows:
        return ChunkRows(
            self.series_id[pos], self.min_ts[pos], self.max_ts[pos], self.n[pos],
            self.codec[pos], self.scale[pos], self.uid[pos],
        )

    def find(self, ids: U32Array, start_ms: int, end_ms: int) -> npt.NDArray[np.intp]:
        """Positions of the chunks of series ``ids`` (sorted, unique, uint32) overlapping
        [start_ms, end_ms], in (series id, min_ts) order (compiled: one pass of binary searches,
        no temporaries; ``find_py`` without the compiled module)."""
        if _inrange is None or self.series_id.shape[0] == 0 or ids.dtype != np.uint32:
            return self.find_py(ids, start_ms, end_ms)
        out: npt.NDArray[np.intp] = _inrange.chunks_in_range(
            self.series_id, self.min_ts, self.max_ts, ids, start_ms, end_ms)
        return out

    def samples_inside(self, pos: npt.NDArray[np.intp], start_ms: int, end_ms: int) -> int:
        """The samples of the chunks at ``pos`` lying wholly inside [start_ms, end_ms]."""
        if _inrange is None:
            return self.samples_inside_py(pos, start_ms, end_ms)
        return int(_inrange.samples_inside(pos, self.min_ts, self.max_ts, self.n, start_ms, end_ms))

    def samples_overlapping(self, ids: U32Array, start_ms: int, end_ms: int) -> int:
        """The samples of the chunks of series ``ids`` (sorted, unique) overlapping [start_ms,
        end_ms]: at least what a read of them there takes from the chunks."""
        if _inrange is None or self.series_id.shape[0] == 0 or ids.dtype != np.uint32:
            return self.samples_overlapping_py(ids, start_ms, end_ms)
        return int(_inrange.samples_overlapping(self.series_id, self.min_ts, self.max_ts, self.n, ids, start_ms,
                                                end_ms))

    def samples_overlapping_py(self, ids: U32Array, start_ms: int, end_ms: int) -> int:
        """``samples_overlapping`` in numpy (the reference)."""
        return int(self.n[self.find_py(ids, start_ms, end_ms)].sum())

    def samples_inside_py(self, pos: npt.NDArray[np.intp], start_ms: int, end_ms: int) -> int:
        """``samples_inside`` in numpy (the reference)."""
        inside = (self.min_ts[pos] >= start_ms) & (self.max_ts[pos] <= end_ms)
        return int(self.n[pos][inside].sum())

    def find_py(self, ids: U32Array, start_ms: int, end_ms: int) -> npt.NDArray[np.intp]:
        """``find`` in numpy (the reference)."""
        sid = self.series_id
        if sid.shape[0] == 0 or ids.shape[0] == 0:
            return np.zeros(0, dtype=np.intp)
        lo = np.searchsorted(sid, ids, side="left")
        hi = np.searchsorted(sid, ids, side="right")
        lens = hi - lo
        total = int(lens.sum())
        if total == 0:
            return np.zeros(0, dtype=np.intp)
        if ids.shape[0] == 1:
            pos = np.arange(int(lo[0]), int(hi[0]), dtype=np.intp)
        else:
            starts = np.zeros(lens.shape[0], dtype=np.intp)
            np.cumsum(lens[:-1], out=starts[1:])
            pos = np.repeat(lo - starts, lens) + np.arange(total, dtype=np.intp)
        hit = (self.max_ts[pos] >= start_ms) & (self.min_ts[pos] <= end_ms)
        if bool(hit.all()):
            return pos
        out: npt.NDArray[np.intp] = pos[hit]
        return out


@dataclass
class CatalogDelta:
    """What one transaction did to the chunks table, applied to the catalogue at its commit."""

    added: list[tuple[ChunkRows, list[bytes]]]
    removed_sid: list[U32Array]
    removed_min_ts: list[I64Array]
    removed_before: int | None = None  # every chunk with max_ts < this was deleted

    @staticmethod
    def new() -> CatalogDelta:
        return CatalogDelta([], [], [])

    def __bool__(self) -> bool:
        return bool(self.added or self.removed_sid or self.removed_before is not None)


def _merge_key(sid: U32Array, min_ts: I64Array) -> npt.NDArray[np.intp]:
    return np.lexsort((min_ts, sid))


class ChunkCatalog:
    """The in-memory chunk catalogue and its blob cache. Writer: ``replace_all``, ``apply``.
    Readers (any thread): ``snapshot``, ``blobs``, ``remember``."""

    def __init__(self, max_blob_bytes: int) -> None:
        self._rows = ChunkRows.empty()
        self._next_uid = 1
        self._lock = threading.Lock()
        self._blobs: OrderedDict[int, bytes] = OrderedDict()
        self._blob_bytes = 0
        self.max_blob_bytes = max(0, max_blob_bytes)
        self.blob_hits = 0
        self.blob_misses = 0

    # --- state -------------------------------------------------------------------------------------

    def snapshot(self) -> ChunkRows:
        return self._rows  # one reference read: a consistent snapshot

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def blob_bytes(self) -> int:
        return self._blob_bytes

    def _uids(self, k: int) -> I64Array:
        out = np.arange(self._next_uid, self._next_uid + k, dtype=np.int64)
        self._next_uid += k
        return out

    def replace_all(
        self, sid: U32Array, min_ts: I64Array, max_ts: I64Array, n: I64Array, codec: U8Array, scale: U8Array
    ) -> None:
        """Sets the catalogue to the given chunks (any order); blobs are loaded on demand."""
        order = _merge_key(sid, min_ts)
        self._rows = ChunkRows(
            np.ascontiguousarray(sid[order], dtype=np.uint32),
            np.ascontiguousarray(min_ts[order], dtype=np.int64),
            np.ascontiguousarray(max_ts[order], dtype=np.int64),
            np.ascontiguousarray(n[order], dtype=np.int64),
            np.ascontiguousarray(codec[order], dtype=np.uint8),
            np.ascontiguousarray(scale[order], dtype=np.uint8),
            self._uids(int(sid.shape[0])),
        )
        with self._lock:
            self._blobs.clear()
            self._blob_bytes = 0

    def apply(self, delta: CatalogDelta) -> None:
        """Publishes the catalogue after ``delta`` (removals first, then additions). The added
        chunks' bytes enter the blob cache (new chunks are the ones read next)."""
        rows = self._rows
        keep = np.ones(len(rows), dtype=np.bool_)
        if delta.removed_before is not None:
            keep &= rows.max_ts >= delta.removed_before
        if delta.removed_sid:
            r_sid = np.concatenate(delta.removed_sid)
            r_min = np.concatenate(delta.removed_min_ts)
            if r_sid.shape[0]:
                pos = _locate(rows, r_sid, r_min)
                keep[pos[pos >= 0]] = False
        dropped_uids = rows.uid[~keep]
        parts = [rows.take(np.flatnonzero(keep))] if not bool(keep.all()) else [rows]
        new_blobs: list[tuple[I64Array, list[bytes]]] = []
        for add, data in delta.added:
            if len(add) == 0:
                continue
            uids = self._uids(len(add))
            parts.append(ChunkRows(add.series_id, add.min_ts, add.max_ts, add.n, add.codec, add.scale, uids))
            new_blobs.append((uids, data))
        if len(parts) == 1:
            merged = parts[0]
        else:
            cat = ChunkRows(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))
            merged = cat.take(_merge_key(cat.series_id, cat.min_ts))
        self._rows = merged
        with self._lock:
            for u in dropped_uids.tolist():
                b = self._blobs.pop(u, None)
                if b is not None:
                    self._blob_bytes -= len(b)
        for uids, data in new_blobs:
            self.remember(uids, data)

    # --- blobs ---------------------------------------------------------------------------------------

    def blobs(self, uids: I64Array) -> list[bytes | None]:
        """The cached compressed bytes of the chunks ``uids`` (None where not cached)."""
        blobs = self._blobs
        with self._lock:
            out = [blobs.get(u) for u in uids.tolist()]
            for u, b in zip(uids.tolist(), out, strict=True):
                if b is not None:
                    blobs.move_to_end(u)
        miss = sum(1 for b in out if b is None)
        self.blob_misses += miss
        self.blob_hits += len(out) - miss
        return out

    def remember(self, uids: I64Array | Sequence[int], data: Sequence[bytes]) -> None:
        """Puts blobs into the cache (evicting the least recently used beyond the bound)."""
        if self.max_blob_bytes == 0:
            return
        blobs = self._blobs
        with self._lock:
            for u, b in zip(np.asarray(uids).tolist(), data, strict=True):
                if len(b) > self.max_blob_bytes or u in blobs:
                    continue
                blobs[u] = b
                self._blob_bytes += len(b)
            while self._blob_bytes > self.max_blob_bytes and blobs:
                _, old = blobs.popitem(last=False)
                self._blob_bytes -= len(old)

    def resize(self, max_blob_bytes: int) -> None:
        with self._lock:
            self.max_blob_bytes = max(0, max_blob_bytes)
            while self._blob_bytes > self.max_blob_bytes and self._blobs:
                _, old = self._blobs.popitem(last=False)
                self._blob_bytes -= len(old)


_FIELDS = ("series_id", "min_ts", "max_ts", "n", "codec", "scale", "uid")


def _locate(rows: ChunkRows, sid: U32Array, min_ts: I64Array) -> npt.NDArray[np.intp]:
    """Position in ``rows`` of each (sid, min_ts) pair, -1 where absent."""
    return find_pairs(rows.series_id, rows.min_ts, sid, min_ts)
