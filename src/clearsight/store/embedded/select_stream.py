"""Splitting a select into batches of series bounded by their samples (``select_batches``).

A select returns every sample of every matched series at once. A reader that consumes series
independently (the PromQL engine folding ``sum(rate(x[5m]))``, see ``query/promql/streamed.py``)
can instead read the selection as batches: the matched series in label order, cut into runs whose
estimated samples stay within ``max_batch_samples`` (a series larger than that alone is a batch of
its own). Each batch is read when the reader asks for it, as a select of its series, so the series
of the batches, concatenated, are the series of the select in the same order, with the same samples.

The estimate counts, per series, the samples of its chunks overlapping the range plus its rows in
the head segments overlapping the range, a chunk or segment straddling a range edge in proportion
to the part of its time span inside the range (a 720-sample chunk of 3 h counts ~20 samples for a
5 min range), computed from the in-memory catalogue and head without decoding or copying samples.
With regular scrapes it is within about a sample per chunk; samples bunched in a chunk's part inside
the range can make a batch larger than the bound (by at most the chunks' other samples). A selection whose estimate fits in one batch is one batch, read as ``select``
reads it (no label sort, no split); one whose overlapping chunks and head rows hold at most a batch
(``fits_one_batch``, a bound on the estimate) is known to be one without estimating per series.

Consistency: each batch is one consistent read (``EmbeddedMetricsStore._fetch``); different batches
may see different committed states (a write acknowledged between two batches shows in the later
ones only), as two consecutive selects would. The series set is fixed when the batches are planned.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from clearsight.model.samples import I64Array
from clearsight.store.embedded.catalog import ChunkRows
from clearsight.store.embedded.label_order import Order

IdArray = npt.NDArray[np.uint32]


def estimate_samples(ids: IdArray, start_ms: int, end_ms: int, chunks: ChunkRows,
                     head_counts: Callable[[IdArray, int, int], I64Array]) -> I64Array:
    """Per series of ``ids`` (sorted, unique): an estimate of its samples in [start_ms, end_ms]."""
    est = head_counts(ids, start_ms, end_ms)
    pos = chunks.find(ids, start_ms, end_ms)
    if pos.shape[0]:
        lo, hi, n = chunks.min_ts[pos], chunks.max_ts[pos], chunks.n[pos]
        inside = (np.minimum(hi, end_ms) - np.maximum(lo, start_ms) + 1) / (hi - lo + 1)
        at = np.searchsorted(ids, chunks.series_id[pos])
        est = est + np.ceil(np.bincount(at, weights=n * inside, minlength=ids.shape[0])).astype(np.int64)
    return est


def fits_one_batch(ids: IdArray, start_ms: int, end_ms: int, chunks: ChunkRows,
                   head_rows: Callable[[IdArray, int, int], int], max_batch_samples: int) -> bool:
    """Whether ``estimate_samples`` of ``ids`` certainly sums to at most ``max_batch_samples``, from
    a bound it never exceeds (every sample of the chunks overlapping the range, where the estimate
    counts a straddling chunk's share, and ``head_rows``, the sum of ``head_counts``): a dashboard's
    selection, far below a batch, is then one batch without the per-series estimate (~10 numpy calls)."""
    if ids.shape[0] == 0:
        return True
    return head_rows(ids, start_ms, end_ms) + chunks.samples_overlapping(ids, start_ms, end_ms) <= max_batch_samples


def plan_batches(ids: IdArray, estimate: I64Array, max_batch_samples: int,
                 order: Callable[[IdArray], Order]) -> list[IdArray]:
    """``ids`` (sorted, unique) cut into batches (each sorted) that hold consecutive series in label
    order (``order``) with at most ``max_batch_samples`` estimated samples each, or one series."""
    if ids.shape[0] == 0:
        return []
    if int(estimate.sum()) <= max_batch_samples:
        return [ids]
    _, perm = order(ids)
    ordered, est = (ids, estimate) if perm is None else (ids[perm], estimate[perm])
    cuts: list[int] = []
    acc = 0
    for i, n in enumerate(est.tolist()):
        if acc and acc + n > max_batch_samples:
            cuts.append(i)
            acc = 0
        acc += n
    return [np.sort(part) for part in np.split(ordered, cuts)]


__all__ = ["estimate_samples", "fits_one_batch", "plan_batches"]
