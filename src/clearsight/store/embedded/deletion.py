"""Deleting a time range of selected series (Prometheus' admin ``delete_series``) in the embedded
store: the SQL and array steps; ``duckdb_store.EmbeddedMetricsStore.delete_series`` runs them on
the writer thread in one transaction.

No tombstones: the samples are removed physically at once (head rows deleted, i.e. a DELETE record in the head log, chunks wholly inside
the range dropped, the chunks reaching outside it re-encoded without them), so ``clean_tombstones``
has nothing to do. Memory stays bounded: the selected series are processed in runs whose chunks to
re-encode hold at most a budget of samples, one transaction per run (a deletion failing part-way
has deleted the runs before; deleting is idempotent, so it is simply sent again). Being a writer command, a
deletion is ordered with the appends: a batch acknowledged before it is deleted (in the range), a
batch queued after it is kept, and a ``kill -9`` after it returns loses nothing of it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from clearsight.model.samples import F64Array, I64Array
from clearsight.store.embedded.index import IdArray


def outside_range(
    sids: npt.NDArray[np.uint32], ts: I64Array, vals: F64Array, start_ms: int, end_ms: int, floor: int
) -> tuple[npt.NDArray[np.uint32], I64Array, F64Array, int]:
    """The samples of decoded chunks that stay: outside [start_ms, end_ms] and not expired (older
    than the retention ``floor``, hidden from reads already). Returns them and how many samples
    were inside the range."""
    inside = (ts >= start_ms) & (ts <= end_ms)
    keep = ~inside & (ts >= floor)
    return sids[keep], ts[keep], vals[keep], int(np.count_nonzero(inside & (ts >= floor)))


def straddling(min_ts: I64Array, max_ts: I64Array, start_ms: int, end_ms: int) -> npt.NDArray[np.bool_]:
    """Which chunks (overlapping [start_ms, end_ms]) reach outside it: only those are decoded and
    re-encoded; a chunk wholly inside is dropped as it is."""
    out: npt.NDArray[np.bool_] = (min_ts < start_ms) | (max_ts > end_ms)
    return out


def slices(ids: IdArray, cost_sid: npt.NDArray[np.uint32], cost: I64Array, budget: int) -> list[IdArray]:
    """``ids`` (sorted) cut into consecutive runs whose cost (the samples to decode: ``cost[i]`` for
    series ``cost_sid[i]``, several entries per series allowed) stays within ``budget`` each; a
    series costing more than the budget gets a run of its own."""
    per = np.bincount(np.searchsorted(ids, cost_sid), weights=cost, minlength=ids.shape[0]).astype(np.int64)
    out: list[IdArray] = []
    start, used = 0, 0
    for i, c in enumerate(per.tolist()):
        if i > start and used + c > budget:
            out.append(ids[start:i])
            start, used = i, 0
        used += c
    if ids.shape[0] > start:
        out.append(ids[start:])
    return out


def emptied(ids: IdArray, remaining: npt.NDArray[np.int64]) -> IdArray:
    """The series of ``ids`` with no sample left (``remaining``: ids that still have one)."""
    out: IdArray = np.setdiff1d(ids, remaining.astype(np.uint32), assume_unique=False).astype(np.uint32)
    return out
