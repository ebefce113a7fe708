"""The head: every recent sample as a few sorted columnar segments, so a read of recent data
gathers a few slices.

The head log (``head_log.py``, segment files of its own) is the durable copy (what a restart
replays); this class is what reads and compaction use.
Only the writer thread changes it, and only after the head log record (and the transaction, if
the change had one) is durable. Every change builds a new tuple of immutable segments and publishes it with one
attribute assignment, so a reader that took the segments (``pick``, ``select``) keeps a consistent
view however long it runs, without locks.

Layout: each segment holds rows sorted by ``(series id, ts)``; a ``(series id, ts)`` pair is in at
most one segment (the store deletes a pair before it writes it again). Segments are merged like a
base-``FANOUT`` counter: a group commit adds a segment of level 0, and whenever the ``FANOUT``
newest segments have the same level they become one segment of the next level. A head written in
``c`` group commits therefore has at most ``(FANOUT - 1) * log_FANOUT(c) + 1`` segments, and each
row is merged about ``log_FANOUT(c)`` times (with 8: 3 times for 500 commits; a binary counter
merged each row 9 times, which cost ~15 % of the ingest CPU with small group commits). A merge is
one stable argsort of a combined key over the sorted runs (timsort merges runs) and one gather
per column. A merge that would hold more than ``MAX_MERGE_ROWS`` (128k) rows is not made: the
``FANOUT`` segments stay side by side. Without that cap, the merges of the top level took the whole
head (60-88 ms for 726k-815k rows, beside queries: the slowest writes of bench/governance.py); with
it a merge costs at most ~15 ms and the head (compacted into chunks at ``compact_min_rows``, 1M rows
by default) keeps a few more segments: about one per 128k rows beyond the counter's.

Merges of at most ``INLINE_MERGE_ROWS`` (16k) rows run on the writer thread, in ``apply``; larger
ones on the merger (one niced thread, ``make_merger``), one at a time: the writer installs the
result at a later ``apply`` (or ``install_merged``, its idle hook) only while the source segments
(by identity) are still side by side in the head, else drops it. While a merge is in flight the
group commits add segments (and runs waiting for the merger stay, up to ``FANOUT`` per level), so
the head may hold more than the counter's bound; with ``MAX_SEGMENTS`` (64) segments and a merge
in flight the writer waits for it, so at most ~``MAX_SEGMENTS + 1``.

Memory: 20 bytes per row (uint32 id, int64 timestamp, float64 value) plus the transient copy of a
merge, plus 8 bytes per row of a segment that late or re-sent samples were looked up in (its key
column, kept with the segment: ``_Segment.keys``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any

import numpy as np
import numpy.typing as npt

from clearsight.model.samples import F64Array, I64Array
from clearsight.store.embedded.index import sorted_unique
from clearsight.store.embedded.pairs import find_pairs
from clearsight.threads import lower_priority

try:  # the Cython row selection (setup.py builds it); _Segment.rows_in_py is its reference
    from clearsight.store.embedded import _headsel  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without Cython or a C compiler
    _headsel = None

log = logging.getLogger(__name__)

U32Array = npt.NDArray[np.uint32]
FANOUT = 8
# Segments whose merge would hold more rows stay as they are (see the module's docstring).
MAX_MERGE_ROWS = 1 << 17
# Merges of at most this many rows run inline on the writer thread; larger ones on the merger.
INLINE_MERGE_ROWS = 1 << 14
# With this many segments, the writer waits for the merge in flight before it adds one more.
MAX_SEGMENTS = 64
MERGER_THREAD_NICE = 10  # the merger thread's priority below the writer's (like the query threads')
_LOADED = 1 << 30  # level of a segment loaded from the table: never merged with new ones
_KEY_SPAN = 1 << 32  # a combined key holds (series id << 32) | (ts - min ts) when ts fits in 32 bits


def order_by_series_ts(sid: U32Array, ts: I64Array) -> npt.NDArray[np.intp]:
    """Stable permutation sorting rows by (series id, ts). Fast on inputs made of sorted runs."""
    if ts.shape[0] < 2:
        return np.arange(ts.shape[0], dtype=np.intp)
    lo = int(ts.min())
    if int(ts.max()) - lo < _KEY_SPAN:
        key = sid.astype(np.uint64)
        key <<= np.uint64(32)
        key |= (ts - lo).view(np.uint64)
        return np.argsort(key, kind="stable")
    return np.lexsort((ts, sid))


@dataclass(frozen=True)
class _Segment:
    sid: U32Array
    ts: I64Array
    vals: F64Array
    min_ts: int
    max_ts: int
    level: int

    @staticmethod
    def of(
        sid: U32Array, ts: I64Array, vals: F64Array, level: int, bounds: tuple[int, int] | None = None
    ) -> _Segment:
        for a in (sid, ts, vals):
            a.flags.writeable = False
        lo, hi = bounds if bounds is not None else (int(ts.min()), int(ts.max()))
        return _Segment(sid, ts, vals, lo, hi, level)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @cached_property
    def keys(self) -> npt.NDArray[np.uint64] | None:
        """``(series id << 32) | (ts - min_ts)`` per row, ascending like the rows (None when the
        segment spans 2**32 ms or more). Built on the first pair lookup (late or re-sent samples)
        and kept with the segment: 8 bytes per row, only for segments that were searched."""
        if self.max_ts - self.min_ts >= _KEY_SPAN:
            return None
        key = self.sid.astype(np.uint64)
        key <<= np.uint64(32)
        key |= (self.ts - self.min_ts).view(np.uint64)
        return key

    def find(self, sid: U32Array, ts: I64Array) -> npt.NDArray[np.intp] | None:
        """Row of each (series, ts) pair, -1 where absent: one binary search per pair in the
        segment's key column (None when the segment has none: see ``keys``)."""
        keys = self.keys
        if keys is None:
            return None
        inside = (ts >= self.min_ts) & (ts <= self.max_ts)
        qk = sid.astype(np.uint64)
        qk <<= np.uint64(32)
        qk |= np.where(inside, ts - self.min_ts, 0).view(np.uint64)
        pos = np.searchsorted(keys, qk)
        pos_c = np.minimum(pos, keys.shape[0] - 1)
        hit = inside & (keys[pos_c] == qk)
        out: npt.NDArray[np.intp] = np.where(hit, pos_c, -1)
        return out

    def rows_of(self, ids: U32Array) -> npt.NDArray[np.intp]:
        """Row positions of the series ``ids`` (sorted, unique), grouped by series."""
        lo = np.searchsorted(self.sid, ids, side="left")
        hi = np.searchsorted(self.sid, ids, side="right")
        lens = hi - lo
        total = int(lens.sum())
        if total == 0:
            return np.zeros(0, dtype=np.intp)
        starts = np.zeros(lens.shape[0], dtype=np.intp)
        np.cumsum(lens[:-1], out=starts[1:])
        return np.repeat(lo - starts, lens) + np.arange(total, dtype=np.intp)

    def rows_in_py(self, ids: U32Array, start_ms: int, end_ms: int) -> npt.NDArray[np.intp]:
        """Row positions of the series ``ids`` (sorted, unique) with start_ms <= ts <= end_ms,
        grouped by series (numpy; the reference for the compiled ``rows_in``)."""
        rows = self.rows_of(ids)
        if rows.shape[0] == 0:
            return rows
        ts = self.ts[rows]
        inside = (ts >= start_ms) & (ts <= end_ms)
        return rows if bool(inside.all()) else rows[inside]

    def rows_in(self, ids: U32Array, start_ms: int, end_ms: int) -> npt.NDArray[np.intp]:
        if _headsel is None:
            return self.rows_in_py(ids, start_ms, end_ms)
        rows: npt.NDArray[np.intp] = _headsel.rows_in(self.sid, self.ts, ids, start_ms, end_ms)
        return rows


def make_merger(name: str = "clearsight-head-merge") -> ThreadPoolExecutor:
    """The head's background merger: one thread (started at the first merge handed to it), at a
    lower OS priority than the writer (``MERGER_THREAD_NICE``). ``HeadMirror.close`` stops it."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name,
                              initializer=partial(lower_priority, MERGER_THREAD_NICE))


def _merge(segs: list[_Segment]) -> _Segment:
    sid = np.concatenate([s.sid for s in segs])
    ts = np.concatenate([s.ts for s in segs])
    vals = np.concatenate([s.vals for s in segs])
    order = order_by_series_ts(sid, ts)
    bounds = (min(s.min_ts for s in segs), max(s.max_ts for s in segs))
    return _Segment.of(sid[order], ts[order], vals[order], segs[0].level + 1, bounds)


class HeadMirror:
    """In-memory rows of the head. Writer: ``replace_all``, ``apply``, ``drop_before``,
    ``clear``, ``install_merged``, ``close``. Readers: ``select`` (any thread).

    ``merger``: where merges larger than ``inline_merge_rows`` run (a one-thread executor, see
    ``make_merger``); None: every merge runs inline, on the writer thread. ``max_segments``: with
    that many segments and a merge in flight, the writer waits for it (bounds the segments a
    starved merger leaves)."""

    def __init__(
        self,
        max_merge_rows: int = MAX_MERGE_ROWS,
        inline_merge_rows: int = INLINE_MERGE_ROWS,
        merger: Executor | None = None,
        max_segments: int = MAX_SEGMENTS,
    ) -> None:
        self._view = HeadView.of(())
        self.max_merge_rows = max_merge_rows
        self.inline_merge_rows = inline_merge_rows
        self._merger = merger
        # The merge in flight: its sources (the segments, by identity) and its result to come.
        self._pending: tuple[tuple[_Segment, ...], Future[_Segment]] | None = None
        self.merges_installed = 0  # background merges installed
        self.merges_discarded = 0  # background merges whose sources had changed (or that failed)
        self.merges_waited = 0  # times the writer waited for the merger (``max_segments`` reached)
        self.max_segments = max_segments
        # Look for runs to merge in every segment at the next settle, not only at the tail: after
        # a change that can put same-level segments side by side or a run skipped (merger busy).
        self._scan_all = False

    @property
    def _segments(self) -> tuple[_Segment, ...]:
        return self._view.segments

    @_segments.setter
    def _segments(self, segs: tuple[_Segment, ...]) -> None:
        self._view = HeadView.of(segs)  # one assignment: readers see the old view or the new one

    def view(self) -> HeadView:
        """The head as it is now, for a read (immutable: consistent however long the read runs)."""
        return self._view

    @property
    def rows(self) -> int:
        return sum(len(s) for s in self._segments)

    @property
    def segments(self) -> int:
        return len(self._segments)

    @property
    def merging(self) -> bool:
        """A background merge is in flight or waits to be installed."""
        return self._pending is not None

    def clear(self) -> None:
        self._segments = ()
        self._scan_all = True

    def replace_all(self, sid: U32Array, ts: I64Array, vals: F64Array) -> None:
        """Sets the contents to the given rows (sorted by (series, ts), unique)."""
        self._segments = (_Segment.of(sid.copy(), ts.copy(), vals.copy(), _LOADED),) if ts.shape[0] else ()
        self._scan_all = True

    def close(self) -> None:
        """Stops the merger (waiting for the merge it runs, if any, whose result is dropped)."""
        self._pending = None
        if self._merger is not None:
            self._merger.shutdown(wait=True, cancel_futures=True)
            self._merger = None

    def install_merged(self) -> bool:
        """Writer thread: installs the background merge if it is done and its sources are still
        in the head side by side (else drops it), then starts the merges now due. True when the
        head changed."""
        segs = list(self._segments)
        before = tuple(segs)
        self._scan_all = True
        self._settle(segs)
        if len(segs) == len(before) and all(a is b for a, b in zip(segs, before, strict=True)):
            return False
        self._segments = tuple(segs)
        return True

    def apply(
        self,
        add: tuple[U32Array, I64Array, F64Array],
        delete: tuple[U32Array, I64Array] | None = None,
    ) -> None:
        """Deletes the ``delete`` pairs (each present), then adds the ``add`` rows (sorted by
        (series, ts), unique, none present after the deletes); one publication."""
        segs = list(self._segments)
        if delete is not None and delete[0].shape[0]:
            segs = [s for s in (_without(s, *delete) for s in segs) if s is not None]
            self._scan_all = True
        sid, ts, vals = add
        if ts.shape[0]:
            segs.append(
                _Segment.of(
                    np.ascontiguousarray(sid, dtype=np.uint32),
                    np.ascontiguousarray(ts, dtype=np.int64),
                    np.ascontiguousarray(vals, dtype=np.float64),
                    0,
                )
            )
        self._settle(segs)
        self._segments = tuple(segs)

    def _settle(self, segs: list[_Segment]) -> None:
        """Installs the finished background merge (when its sources are still a run of ``segs``),
        then merges every run of ``FANOUT`` segments of one level (at most ``max_merge_rows`` rows):
        inline up to ``inline_merge_rows``, else in the background, one at a time. Looks at the
        tail only (where a group commit completes a run), unless ``_scan_all``."""
        pending = self._pending
        if pending is not None and not pending[1].done() and len(segs) >= self.max_segments:
            wait([pending[1]])  # the merger fell behind (starved of CPU or the GIL): the writer waits for it
            self.merges_waited += 1
        if pending is not None and pending[1].done():
            self._pending = None
            self._install(segs, *pending)
            self._scan_all = True
        busy = self._pending[0] if self._pending is not None else ()
        i = 0 if self._scan_all else max(0, len(segs) - FANOUT)
        self._scan_all = False
        while i + FANOUT <= len(segs):
            level = segs[i].level
            if level == _LOADED or segs[i + FANOUT - 1].level != level:  # levels mostly descend: a quick test
                i += 1
                continue
            run = segs[i:i + FANOUT]
            if any(s.level != level for s in run):
                i += 1
                continue
            n = sum(len(s) for s in run)
            if n > self.max_merge_rows:
                i += FANOUT
                continue
            if any(s is b for s in run for b in busy):  # looked at again once it is installed or dropped
                i += FANOUT
                continue
            if n <= self.inline_merge_rows or self._merger is None:
                segs[i:i + FANOUT] = [_merge(run)]
                i = max(0, i - FANOUT + 1)  # the merged segment may complete a run of its level
                continue
            if self._pending is None:
                busy = tuple(run)
                self._pending = (busy, self._merger.submit(_merge, list(busy)))
            i += FANOUT  # else merged after the one in flight (its install makes the next settle look everywhere)

    def _install(self, segs: list[_Segment], sources: tuple[_Segment, ...], fut: Future[_Segment]) -> None:
        if fut.cancelled():  # the merger was shut down
            self.merges_discarded += 1
            return
        try:
            merged = fut.result()
        except Exception:
            log.exception("head merge failed; its segments stay as they are")
            self.merges_discarded += 1
            return
        for i, s in enumerate(segs):
            if s is sources[0]:
                if i + len(sources) <= len(segs) and all(a is b for a, b in zip(segs[i:i + len(sources)], sources,
                                                                               strict=True)):
                    segs[i:i + len(sources)] = [merged]
                    self.merges_installed += 1
                    return
                break
        self.merges_discarded += 1  # a delete, retention or compaction replaced a source meanwhile

    def drop_before(self, cutoff: int) -> int:
        """Removes rows with ts < cutoff; returns how many."""
        segs: list[_Segment] = []
        dropped = 0
        for s in self._segments:
            if s.min_ts >= cutoff:
                segs.append(s)
                continue
            keep = s.ts >= cutoff
            n = int(np.count_nonzero(keep))
            dropped += len(s) - n
            if n:
                segs.append(_Segment.of(s.sid[keep], s.ts[keep], s.vals[keep], s.level))
        self._segments = tuple(segs)
        self._scan_all = True
        return dropped

    def count_before(self, cutoff: int) -> int:
        """How many rows have ts < cutoff."""
        return sum(len(s) if s.max_ts < cutoff else int(np.count_nonzero(s.ts < cutoff))
                   for s in self._segments if s.min_ts < cutoff)

    def select(self, ids: U32Array, start_ms: int, end_ms: int) -> tuple[U32Array, I64Array, F64Array]:
        """Rows of the series ``ids`` (sorted, unique) with start_ms <= ts <= end_ms, sorted by
        (series, ts)."""
        return _select_in(self._segments, ids, start_ms, end_ms)  # one reference read: a consistent snapshot

    def pick(self, ids: U32Array, start_ms: int, end_ms: int) -> HeadPick:
        """Where the rows of the series ``ids`` (sorted, unique) with start_ms <= ts <= end_ms are,
        without copying them (``HeadPick``)."""
        return self._view.pick(ids, start_ms, end_ms)

    def rows_in(self, ids: U32Array, start_ms: int, end_ms: int) -> int:
        """``row_counts(ids, start_ms, end_ms).sum()``: with the compiled module the exact count of
        one pass of binary searches (``pick``), without the per-series array."""
        if _headsel is not None:
            return self.pick(ids, start_ms, end_ms).rows
        return int(self.row_counts(ids, start_ms, end_ms).sum())

    def row_counts(self, ids: U32Array, start_ms: int, end_ms: int) -> npt.NDArray[np.int64]:
        """Per series of ``ids`` (sorted, unique): an estimate of its rows in [start_ms, end_ms],
        without copying any: its rows in each segment overlapping the range, in proportion to the
        part of the segment's time span inside the range (rounded up); exact with the compiled
        module (its binary searches, ``pick``)."""
        if _headsel is not None:
            pick = self.pick(ids, start_ms, end_ms)
            assert pick.bounds is not None
            if not pick.segments:
                return np.zeros(ids.shape[0], dtype=np.int64)
            b = pick.bounds.reshape(ids.shape[0], len(pick.segments), 2)  # every segment: empty where outside
            exact: npt.NDArray[np.int64] = (b[:, :, 1] - b[:, :, 0]).sum(axis=1)
            return exact
        counts = np.zeros(ids.shape[0], dtype=np.int64)
        for s in self._segments:
            if s.max_ts < start_ms or s.min_ts > end_ms:
                continue
            n = np.searchsorted(s.sid, ids, side="right") - np.searchsorted(s.sid, ids, side="left")
            if s.min_ts < start_ms or s.max_ts > end_ms:
                inside = (min(s.max_ts, end_ms) - max(s.min_ts, start_ms) + 1) / (s.max_ts - s.min_ts + 1)
                n = np.ceil(n * inside).astype(np.int64)
            counts += n
        return counts

    def rows_between(self, lo_id: int, hi_id: int) -> tuple[U32Array, I64Array, F64Array]:
        """Every row of the series lo_id <= id < hi_id, sorted by (series, ts): a compaction
        slice, read from memory instead of sorting the table."""
        parts: list[tuple[U32Array, I64Array, F64Array]] = []
        for s in self._segments:
            a = int(np.searchsorted(s.sid, lo_id, side="left"))
            b = int(np.searchsorted(s.sid, hi_id, side="left"))
            if a < b:
                parts.append((s.sid[a:b], s.ts[a:b], s.vals[a:b]))
        return _merge_parts(parts)

    def lookup(self, sid: U32Array, ts: I64Array) -> tuple[npt.NDArray[np.bool_], F64Array]:
        """For each (series, ts) pair (unique): whether the head holds it, and its value (0.0
        where absent)."""
        found = np.zeros(sid.shape[0], dtype=np.bool_)
        vals = np.zeros(sid.shape[0], dtype=np.float64)
        if sid.shape[0] == 0:
            return found, vals
        lo, hi = int(ts.min()), int(ts.max())
        ids: U32Array | None = None
        for s in self._segments:
            if s.max_ts < lo or s.min_ts > hi:
                continue
            at = s.find(sid, ts)
            if at is not None:  # a binary search per pair, not a pass over the series' rows
                hit = at >= 0
                if bool(hit.any()):
                    found |= hit
                    vals[hit] = s.vals[at[hit]]
                continue
            ids = sorted_unique(sid) if ids is None else ids
            rows = s.rows_of(ids)
            if rows.shape[0] == 0:
                continue
            pos = find_pairs(s.sid[rows], s.ts[rows], sid, ts)
            hit = pos >= 0
            if bool(hit.any()):
                found |= hit
                vals[hit] = s.vals[rows[pos[hit]]]
        return found, vals


def _select_in(
    segments: tuple[_Segment, ...], ids: U32Array, start_ms: int, end_ms: int
) -> tuple[U32Array, I64Array, F64Array]:
    parts: list[tuple[U32Array, I64Array, F64Array]] = []
    ids = np.ascontiguousarray(ids, dtype=np.uint32)
    for s in segments:
        if s.max_ts < start_ms or s.min_ts > end_ms:
            continue
        rows = s.rows_in(ids, start_ms, end_ms)
        if rows.shape[0]:
            parts.append((s.sid[rows], s.ts[rows], s.vals[rows]))
    return _merge_parts(parts)


def _merge_parts(parts: list[tuple[U32Array, I64Array, F64Array]]) -> tuple[U32Array, I64Array, F64Array]:
    """Rows taken from several segments (each part sorted by (series, ts)) as one sorted set."""
    if not parts:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    if len(parts) == 1:
        return parts[0]
    sid = np.concatenate([p[0] for p in parts])
    ts = np.concatenate([p[1] for p in parts])
    vals = np.concatenate([p[2] for p in parts])
    order = order_by_series_ts(sid, ts)
    return sid[order], ts[order], vals[order]


# A compiled read's result: (offsets, timestamps, values, series without a sample), see _headsel.Segments.
Assembled = tuple[npt.NDArray[np.int64], I64Array, F64Array, int]
# ``HeadView.read_cached``'s: the same and the number of cached chunks it took.
CachedRead = tuple[npt.NDArray[np.int64], I64Array, F64Array, int, int]


@dataclass(frozen=True)
class HeadView:
    """The head at one moment: its segments and, with the compiled module, the same segments as
    ``_headsel.Segments`` (their buffers acquired once here, when the head changed, not per read)."""

    segments: tuple[_Segment, ...]
    native: Any

    @staticmethod
    def of(segs: tuple[_Segment, ...]) -> HeadView:
        if _headsel is None:
            return HeadView(segs, None)
        native = _headsel.Segments(tuple(s.sid for s in segs), tuple(s.ts for s in segs), tuple(s.vals for s in segs),
                                   tuple(s.min_ts for s in segs), tuple(s.max_ts for s in segs))
        return HeadView(segs, native)

    def pick(self, ids: U32Array, start_ms: int, end_ms: int) -> HeadPick:
        """Where the rows of the series ``ids`` (sorted, unique) with start_ms <= ts <= end_ms are,
        without copying them (``HeadPick``; with the compiled module its bounds cover every
        segment, empty in those outside the range)."""
        ids = np.ascontiguousarray(ids, dtype=np.uint32)
        if self.native is None:
            segs = tuple(s for s in self.segments if s.max_ts >= start_ms and s.min_ts <= end_ms)
            cols = _select_in(segs, ids, start_ms, end_ms)
            return HeadPick(segs, ids, start_ms, end_ms, None, int(cols[1].shape[0]), cols, None)
        bounds, total = self.native.bounds(ids, start_ms, end_ms)
        return HeadPick(self.segments, ids, start_ms, end_ms, bounds, int(total), None, self.native)

    def read_cached(
        self, ids: U32Array, perm: npt.NDArray[np.int64] | None, start_ms: int, end_ms: int, cap: int | None,
        catalog: Any, entries: OrderedDict[Any, tuple[I64Array, F64Array]], max_chunks: int,
    ) -> CachedRead | int | None:
        """A read over chunks and head in one compiled call (``_headsel.Segments.read_cached``): per
        series of ``ids`` (sorted, unique, uint32) in the order ``perm`` (positions into ``ids``;
        None: as they are), its samples with start_ms <= ts <= end_ms: those of its chunks
        overlapping the range in ``catalog`` (a catalogue snapshot's ``native``), cut from the
        decoded-chunk cache's ``entries`` (the caller holds its lock:
        ``DecodedChunkCache.read_entries``), then its head rows. ``CachedRead`` (``Assembled`` and
        the chunks taken), the ``needed`` count when the read limit refuses (as ``_locate`` counts
        it), or None: a chunk not decoded, more than ``max_chunks``, pieces not ascending, or no
        compiled module."""
        if self.native is None or catalog is None:
            return None
        out: CachedRead | int | None = self.native.read_cached(ids, perm, start_ms, end_ms, cap, catalog, entries,
                                                               max_chunks)
        return out


@dataclass(frozen=True)
class HeadPick:
    """The head's part of one read, located but not copied: the segments (immutable, so the pick
    stays consistent however long the read runs; with the compiled module every segment of the
    view, else those overlapping the range) and, per series and segment, its rows inside the range
    (``bounds``, laid out as ``_headsel.Segments.bounds`` gives them; None without the compiled
    module, which then copies the rows at once into ``cols``). ``rows``: how many. ``columns()``
    copies them out sorted by (series, ts); ``assemble`` reads them in place."""

    segments: tuple[_Segment, ...]
    ids: U32Array
    start_ms: int
    end_ms: int
    bounds: npt.NDArray[np.int64] | None
    rows: int
    cols: tuple[U32Array, I64Array, F64Array] | None
    native: Any  # the view's _headsel.Segments (None without the compiled module)

    def columns(self) -> tuple[U32Array, I64Array, F64Array]:
        if self.cols is not None:
            return self.cols
        if self.rows == 0:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return _select_in(self.segments, self.ids, self.start_ms, self.end_ms)

    def assemble(
        self, perm: npt.NDArray[np.int64] | None, c_sid: U32Array, kept: I64Array, c_ts: I64Array, c_val: F64Array
    ) -> Assembled | None:
        """Per series of ``ids`` in the order ``perm`` (positions into ``ids``; None: as they are),
        its decoded chunk samples (chunks ordered by (series, min ts), ``kept[j]`` samples of
        chunk ``j``, of series ``c_sid[j]``) then its head rows (``Assembled``), or None when a
        series' pieces overlap in time, or without the compiled module."""
        if self.bounds is None or self.native is None:
            return None
        out: Assembled | None = self.native.assemble(
            self.ids, perm, self.bounds, np.ascontiguousarray(c_sid, dtype=np.uint32),
            np.ascontiguousarray(kept, dtype=np.int64), np.ascontiguousarray(c_ts, dtype=np.int64),
            np.ascontiguousarray(c_val, dtype=np.float64))
        return out


def _without(seg: _Segment, sid: U32Array, ts: I64Array) -> _Segment | None:
    """``seg`` minus the rows whose (series, ts) is one of the given pairs; None when empty."""
    inside = (ts >= seg.min_ts) & (ts <= seg.max_ts)
    if not bool(inside.any()):
        return seg
    sid, ts = sid[inside], ts[inside]
    rows = seg.rows_of(sorted_unique(sid))
    if rows.shape[0] == 0:
        return seg
    lo, hi = int(ts.min()), int(ts.max())
    rows = rows[(seg.ts[rows] >= lo) & (seg.ts[rows] <= hi)]
    if rows.shape[0] == 0:
        return seg
    gone = set(zip(sid.tolist(), ts.tolist(), strict=True))
    hit = np.fromiter(
        ((p in gone) for p in zip(seg.sid[rows].tolist(), seg.ts[rows].tolist(), strict=True)),
        dtype=np.bool_,
        count=rows.shape[0],
    )
    if not bool(hit.any()):
        return seg
    keep = np.ones(len(seg), dtype=np.bool_)
    keep[rows[hit]] = False
    if not bool(keep.any()):
        return None
    return _Segment.of(seg.sid[keep], seg.ts[keep], seg.vals[keep], seg.level)
