"""The embedded store's batched select (store/embedded/select_stream.py) and the streamed
aggregation over it: the batches, concatenated, are the select; each is bounded; a query over a
selection many times a batch answers what the materialised query answers while its peak memory
stays near a batch."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.labels import make_labels
from clearsight.model.matchers import Matcher, MatchType
from clearsight.model.rollups import ONE_HOUR_MS
from clearsight.model.samples import SampleBatch, SeriesData
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.values import QueryLimitExceeded
from clearsight.store.embedded import EmbeddedMetricsStore, select_stream
from clearsight.store.interface import BatchedSeriesSelector
from clearsight.store.storetest import workload
from tests.unit.store.rollup_data import DAY, HOUR, RawOnly, batch, random_series
from tests.unit.store.rollup_data import T0 as RT0

N_SERIES = 600
N_SAMPLES = 160
JOB = [Matcher(MatchType.EQ, "job", "node")]
T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMetricsStore]:
    """600 series x 160 samples in chunks, and 20 more samples per series in the head."""
    s = EmbeddedMetricsStore(tmp_path_factory.mktemp("stream"), retention_ms=10**13,
                             out_of_order_window_ms=3_600_000, chunk_cache_samples=0)
    labels = workload.series_labels(N_SERIES, series_per_host=100)
    ts = workload.timestamps(N_SAMPLES + 20)
    vals = workload.values_matrix(N_SERIES, N_SAMPLES + 20)
    for b in workload.scrape_batches(labels, ts[:N_SAMPLES], vals[:, :N_SAMPLES], batch_series=N_SERIES):
        s.append("t", b).result()
    s.compact()
    for b in workload.scrape_batches(labels, ts[N_SAMPLES:], vals[:, N_SAMPLES:], batch_series=N_SERIES):
        s.append("t", b).result()
    try:
        yield s
    finally:
        s.close()


def _end() -> int:
    return int(workload.timestamps(N_SAMPLES + 20)[-1])


def _concat(parts: list[SeriesData]) -> SeriesData:
    offsets = [np.zeros(1, dtype=np.int64)]
    base = 0
    for p in parts:
        offsets.append(p.offsets[1:] + base)
        base += int(p.offsets[-1])
    return SeriesData([lbl for p in parts for lbl in p.labels], np.concatenate(offsets),
                      np.concatenate([p.timestamps for p in parts]), np.concatenate([p.values for p in parts]))


@pytest.mark.parametrize("bound", [1, 500, 7_000, 50_000, 10**9])
@pytest.mark.parametrize("window", [(0, 10**15), (-3_600_000, -1_000_000), (-200_000, 0)])
def test_batches_concatenated_are_the_select(store: EmbeddedMetricsStore, bound: int, window: tuple[int, int]) -> None:
    lo, hi = (window if window[0] == 0 else (_end() + window[0], _end() + window[1]))
    want = store.select("t", JOB, lo, hi)
    parts = [read() for read in store.select_batches("t", JOB, lo, hi, bound)]
    got = _concat(parts)
    assert got.labels == want.labels
    assert got.offsets.tolist() == want.offsets.tolist()
    assert got.timestamps.tolist() == want.timestamps.tolist()
    assert got.values.view(np.int64).tolist() == want.values.view(np.int64).tolist()
    for p in parts:  # bounded: at most ``bound`` samples (the estimate prorates the chunks and head
        # segments at the range edges: regular scrapes, off by about one sample each), or a single series
        assert len(p) == 1 or int(p.offsets[-1]) <= bound + 4 * len(p)
    if bound >= 10**9:
        assert len(parts) == 1


@pytest.mark.parametrize("window", [(0, 10**15), (-3_600_000, -1_000_000), (-200_000, 0), (-300_000, -240_000)])
def test_the_one_batch_bound_never_undercounts_the_estimate(store: EmbeddedMetricsStore,
                                                            window: tuple[int, int]) -> None:
    """``fits_one_batch`` (what ``select_batches`` asks before estimating per series) holds only
    where the estimate fits too, and then ``select_batches`` gives the one batch ``plan_batches``
    would: the bound (overlapping chunks' samples and head rows) is never below the estimate."""
    lo, hi = (window if window[0] == 0 else (_end() + window[0], _end() + window[1]))
    ids = store._ids("t", [JOB], lo, hi)
    snap = store._catalog.snapshot()
    est = int(select_stream.estimate_samples(ids, lo, hi, snap, store._head.row_counts).sum())
    bound = store._head.rows_in(ids, lo, hi) + snap.samples_overlapping(ids, lo, hi)
    assert est <= bound
    assert bound > 0
    for limit in (est - 1, est, bound - 1, bound, bound + 1):
        fits = select_stream.fits_one_batch(ids, lo, hi, snap, store._head.rows_in, limit)
        assert fits == (bound <= limit)
        if fits:
            assert est <= limit
            parts = store.select_batches("t", JOB, lo, hi, limit)
            assert len(parts) == 1


def test_nothing_selected_is_no_batch(store: EmbeddedMetricsStore) -> None:
    assert store.select_batches("t", [Matcher(MatchType.EQ, "job", "nope")], 0, 10**15, 100) == []
    assert store.select_batches("other", JOB, 0, 10**15, 100) == []
    assert store.select_batches("t", JOB, 10, 5, 100) == []
    assert isinstance(store.querier("t"), BatchedSeriesSelector)


def _peak(store: EmbeddedMetricsStore, engine: Engine, query: str) -> tuple[list[tuple[object, list[int]]], int]:
    end = _end()
    tracemalloc.start()
    try:
        res = engine.range(store.querier("t"), query, end - 2_400_000, end, 60_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return [(s.labels, s.values.view(np.int64).tolist()) for s in res.series], peak


def test_wide_aggregation_streams_with_memory_bounded_by_the_batch(store: EmbeddedMetricsStore) -> None:
    # The selection (600 series x ~180 samples, ~108k samples) is ~20 batches of 5,000 samples.
    query = "sum by (instance) (rate({job=\"node\"}[5m]))"
    _peak(store, Engine(stream_batch_samples=5_000), query)  # warm: imports, label order
    want, materialised_peak = _peak(store, Engine(stream_batch_samples=0), query)
    got, streamed_peak = _peak(store, Engine(stream_batch_samples=5_000), query)
    assert got == want
    # Materialised, the query holds the selection (>= 16 bytes a sample); streamed, a batch of
    # 5,000 samples (its decode, select and rate rows are a few times that), never the selection.
    assert materialised_peak > 108_000 * 16
    assert streamed_peak < materialised_peak / 3
    assert streamed_peak < 5_000 * 16 * 12 + 600 * 41 * 8


def test_max_samples_is_reported_by_name_when_a_batch_exceeds_it(store: EmbeddedMetricsStore) -> None:
    end = _end()
    with pytest.raises(QueryLimitExceeded, match=r"too many samples.*query\.max_samples=3,000"):
        Engine(max_samples=3_000, stream_batch_samples=5_000).instant(
            store.querier("t"), 'sum(rate({job="node"}[1h]))', end)
    # the same query within the limit, batch by batch, answers what the materialised one does
    got = Engine(max_samples=8_000, stream_batch_samples=2_000).instant(store.querier("t"), 'sum(rate({job="node"}[1h]))', end)
    want = Engine(stream_batch_samples=0).instant(store.querier("t"), 'sum(rate({job="node"}[1h]))', end)
    assert got.series[0].values.view(np.int64).tolist() == want.series[0].values.view(np.int64).tolist()
    assert want.stats.peak_points > 8_000


def test_a_write_between_batches_is_a_later_state(store: EmbeddedMetricsStore) -> None:
    # Each batch is one consistent read; a sample written while the batches are read shows in the
    # batches read after it (as in two consecutive selects), and nothing breaks.
    end = _end()
    parts = store.select_batches("t", JOB, end - 60_000, end + 60_000, 2_000)
    first = parts[0]()
    labels = first.labels[0]
    store.append("t", SampleBatch.from_series([(labels, [(end + 15_000, 1.0)])])).result()
    rest = [p() for p in parts[1:]]
    assert sum(len(p) for p in rest) + len(first) == N_SERIES


finite = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e308, -1e308]))
series_sets = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.lists(st.tuples(st.integers(0, 60), finite), min_size=1, max_size=25)),
    min_size=1, max_size=30)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(series_sets, st.integers(0, 60), st.integers(1, 200),
       st.sampled_from(["sum", "avg", "count", "min", "max", "group"]),
       st.sampled_from(["({q})", "(rate({q}[2m]))", "(last_over_time({q}[1m]))"]), st.booleans())
def test_random_series_sets_stream_as_they_materialise(
        tmp_path_factory: pytest.TempPathFactory, series: list[tuple[str, list[tuple[int, float]]]], cut: int,
        bound: int, op: str, shape: str, by_a: bool) -> None:
    # Samples before ``cut`` are compacted into chunks, the rest stay in the head.
    s = EmbeddedMetricsStore(tmp_path_factory.mktemp("hyp"), retention_ms=10**13, out_of_order_window_ms=10**9,
                             compact_min_rows=10**9)
    try:
        rows = [(make_labels({"__name__": "m", "a": a, "b": str(i)}), sorted({T0 + t * 15_000: v for t, v in samples}.items()))
                for i, (a, samples) in enumerate(series)]
        edge = T0 + cut * 15_000
        old = [(lbl, [p for p in pts if p[0] < edge]) for lbl, pts in rows]
        new = [(lbl, [p for p in pts if p[0] >= edge]) for lbl, pts in rows]
        for part, compact in ((old, True), (new, False)):
            part = [(lbl, pts) for lbl, pts in part if pts]
            if part:
                s.append("t", SampleBatch.from_series(part)).result()
            if compact:
                s.compact()
        m = [Matcher(MatchType.EQ, "__name__", "m")]
        want = s.select("t", m, T0, T0 + 60 * 15_000)
        got = _concat([read() for read in s.select_batches("t", m, T0, T0 + 60 * 15_000, bound)])
        assert (got.labels, got.offsets.tolist(), got.timestamps.tolist(), got.values.view(np.int64).tolist()) == (
            want.labels, want.offsets.tolist(), want.timestamps.tolist(), want.values.view(np.int64).tolist())
        query = (op + (" by (a) " if by_a else "") + shape).format(q="m")
        end = T0 + 60 * 15_000
        answers = [Engine(stream_batch_samples=b).range(s.querier("t"), query, end - 40 * 15_000, end, 30_000)
                   for b in (0, bound)]
        assert [(x.labels, x.values.view(np.int64).tolist()) for x in answers[0].series] == [
            (x.labels, x.values.view(np.int64).tolist()) for x in answers[1].series]
    finally:
        s.close()


def test_rollups_still_answer_a_streamable_aggregation(tmp_path: Path) -> None:
    # Where rollups cover the steps (rollup_plan.py), the aggregation is evaluated materialised from
    # them, not streamed over raw samples.
    s = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, out_of_order_window_ms=HOUR, compact_min_rows=10**9)
    try:
        s.append("t", batch(random_series(3, 12, 3))).result()
        s.compact()
        s.run_rollups(RT0 + 3 * DAY + 2 * HOUR)
        q = "sum by (instance) (rate(x_total[1h]))"
        span = (RT0 + HOUR, RT0 + 3 * DAY, ONE_HOUR_MS)
        streamed = Engine(stream_batch_samples=500).range(s.querier("t"), q, *span)
        materialised = Engine(stream_batch_samples=0).range(s.querier("t"), q, *span)
        raw = Engine(stream_batch_samples=500).range(RawOnly(s.querier("t")), q, *span)
        assert [(x.labels, x.values.view(np.int64).tolist()) for x in streamed.series] == [
            (x.labels, x.values.view(np.int64).tolist()) for x in materialised.series]
        assert len(streamed.series) == 3
        assert streamed.stats.samples_loaded * 10 < raw.stats.samples_loaded
    finally:
        s.close()
