"""Assembling a small read (a few series, as a dashboard's selectors ask for) with Python
bookkeeping over plain lists and one concatenation per column.

The store's general assembly (``EmbeddedMetricsStore._assemble``) is vectorized: two dozen numpy
calls whose fixed cost (~1-3 us each) dominates when the answer holds a handful of series. Here a
read of at most ``MAX_SERIES`` series walks the chunk list and the head's series runs in Python,
slices the decoded columns per series and concatenates once. It answers only when every series'
pieces (its chunks, then its head rows) are in ascending time order as they come; overlapping
pieces (late samples compacted after newer ones) return None and the general path sorts them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from clearsight.model.labels import Labels
from clearsight.model.samples import F64Array, I64Array, SeriesData

IdArray = npt.NDArray[np.uint32]
Order = tuple[list[Labels], npt.NDArray[np.int64] | None]

MAX_SERIES = 16


def assemble_small(
    ids: IdArray,
    c_chunk_sid: IdArray,
    kept: I64Array,
    c_ts: I64Array,
    c_val: F64Array,
    h_sid: IdArray,
    h_ts: I64Array,
    h_val: F64Array,
    order: Callable[[IdArray], Order],
) -> SeriesData | None:
    """The series of ``ids`` (sorted) from decoded chunk samples (chunk after chunk, chunks ordered
    by (series, min_ts), ``kept[i]`` samples from chunk ``i``) and head rows (ordered by (series,
    ts)), in the label order ``order(ids)`` gives; None when a series' pieces overlap in time."""
    k = int(ids.shape[0])
    ids_l = ids.tolist()
    at = {s: i for i, s in enumerate(ids_l)}
    # pieces[i]: (columns, start, stop) of series i, in time order when they do not overlap
    pieces: list[list[tuple[bool, int, int]]] = [[] for _ in range(k)]
    a = 0
    for sid, n in zip(c_chunk_sid.tolist(), kept.tolist(), strict=True):
        if n:
            pieces[at[sid]].append((False, a, a + n))
        a += n
    if h_ts.shape[0]:
        lo = np.searchsorted(h_sid, ids, side="left").tolist()
        hi = np.searchsorted(h_sid, ids, side="right").tolist()
        for i in range(k):
            if hi[i] > lo[i]:
                pieces[i].append((True, lo[i], hi[i]))
    present = [i for i in range(k) if pieces[i]]
    if not present:
        return SeriesData.empty()
    ts_parts: list[I64Array] = []
    val_parts: list[F64Array] = []
    lens: list[int] = []
    sub = ids[present] if len(present) < k else ids
    labels, perm = order(sub)
    follows = 0  # where the next piece starts when the pieces are the chunk columns in storage order
    for j in perm.tolist() if perm is not None else range(len(present)):
        last = None
        n_series = 0
        for head, p, q in pieces[present[j]]:
            ts_col = h_ts if head else c_ts
            if last is not None and int(ts_col[p]) <= last:
                return None  # overlapping pieces: the general path sorts them
            last = int(ts_col[q - 1])
            ts_parts.append(ts_col[p:q])
            val_parts.append((h_val if head else c_val)[p:q])
            n_series += q - p
            follows = q if follows >= 0 and not head and p == follows else -1
        lens.append(n_series)
    offsets = np.fromiter(itertools.accumulate(lens, initial=0), dtype=np.int64, count=len(lens) + 1)
    if follows == c_ts.shape[0]:  # the decoded columns as they are (a copy: they may be cached)
        return SeriesData(labels, offsets, c_ts.copy(), c_val.copy())
    ts = np.concatenate(ts_parts) if len(ts_parts) > 1 else ts_parts[0].copy()
    vals = np.concatenate(val_parts) if len(val_parts) > 1 else val_parts[0].copy()
    return SeriesData(labels, offsets, ts, vals)


__all__ = ["MAX_SERIES", "assemble_small"]
