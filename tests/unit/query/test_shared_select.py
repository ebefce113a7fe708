"""SharedSelects (a rule group's shared store reads) answers every select exactly as the store does,
with one store read per matcher set once the widest window is known, and falls back to the narrow
read when the wide one is over the query's sample budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.labels import make_labels
from clearsight.model.matchers import Matcher, MatchType
from clearsight.model.samples import STALE_NAN, SampleBatch, SeriesData
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.values import QueryLimitExceeded
from clearsight.query.shared_select import SharedSelects, slice_range
from clearsight.store.embedded import EmbeddedMetricsStore

T0 = 1_700_000_000_000
STEP = 15_000
N = 80  # samples per full series: 20 minutes
AT = T0 + (N - 1) * STEP

MATCHERS = [
    [Matcher.of(MatchType.EQ, "__name__", "cpu")],
    [Matcher.of(MatchType.EQ, "__name__", "cpu"), Matcher.of(MatchType.NEQ, "mode", "idle")],
    [Matcher.of(MatchType.RE, "__name__", "cpu|mem")],
    [Matcher.of(MatchType.EQ, "__name__", "mem")],
]


def _series() -> list[tuple[tuple[tuple[str, str], ...], list[tuple[int, float]]]]:
    rng = np.random.default_rng(7)
    out = []
    for host in range(6):
        for mode in ("idle", "user", "system"):
            # Series that start late, stop early, or have a gap: sub-ranges leave some empty.
            first, last = (0, N) if host < 3 else ((host * 13) % 40, N - (host * 7) % 30)
            samples = [(T0 + k * STEP, float(k + rng.integers(0, 5))) for k in range(first, last)
                       if not (host == 4 and 30 <= k < 50)]
            if host == 5:
                samples[len(samples) // 2] = (samples[len(samples) // 2][0], STALE_NAN)
            out.append((make_labels({"__name__": "cpu", "instance": f"h{host}", "mode": mode}), samples))
        out.append((make_labels({"__name__": "mem", "instance": f"h{host}"}),
                    [(T0 + k * STEP, float(rng.random())) for k in range(N) if k % (host + 2)]))
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMetricsStore]:
    s = EmbeddedMetricsStore(Path(tmp_path_factory.mktemp("shared")), retention_ms=10**15,
                             out_of_order_window_ms=10**9, compact_min_rows=500)
    series = _series()
    half = N // 2 * STEP + T0
    # Part compacted into chunks, part in the head: reads assemble both.
    s.append("t", SampleBatch.from_series([(lb, [x for x in xs if x[0] < half]) for lb, xs in series])).result()
    s.compact()
    s.append("t", SampleBatch.from_series([(lb, [x for x in xs if x[0] >= half]) for lb, xs in series])).result()
    yield s
    s.close()


def _same(a: SeriesData, b: SeriesData) -> None:
    assert a.labels == b.labels
    assert a.offsets.tolist() == b.offsets.tolist()
    assert a.timestamps.tolist() == b.timestamps.tolist()
    assert a.values.view(np.int64).tolist() == b.values.view(np.int64).tolist()  # stale markers bit for bit


windows = st.tuples(st.integers(0, N + 10), st.integers(-3, 3)).map(
    lambda w: (AT - w[0] * STEP + w[1], AT))
requests = st.lists(st.tuples(st.sampled_from(range(len(MATCHERS))), windows,
                              st.sampled_from([0, 0, 0, -STEP, STEP])), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reqs=requests)
def test_every_select_is_what_the_store_returns(store: EmbeddedMetricsStore, reqs: list[tuple[int, tuple[int, int],
                                                                                                 int]]) -> None:
    widths: dict[object, tuple[int, int]] = {}
    direct = store.querier("t")
    for _run in range(2):  # the second run starts with the widths learned in the first
        shared = SharedSelects(store.querier("t"), AT, widths)
        for m, (lo, hi), shift in reqs:
            _same(shared.select(MATCHERS[m], lo + shift, hi + shift), direct.select(MATCHERS[m], lo + shift, hi + shift))
    # Learned: the second run read each matcher set once when all windows end at the evaluation time
    # (disjoint ones, here shifted by a step either way, are read alone).
    if all(shift == 0 and lo <= hi for _m, (lo, hi), shift in reqs):
        assert shared.store_reads == len({m for m, _w, _s in reqs})
    assert shared.store_reads <= len(reqs)


def test_one_read_per_selector_for_a_group_of_queries(store: EmbeddedMetricsStore) -> None:
    exprs = ['sum by (instance) (rate(cpu{mode!="idle"}[1m]))', 'sum by (instance) (rate(cpu{mode!="idle"}[5m]))',
             'avg by (instance, mode) (rate(cpu[2m]))', 'rate(cpu[5m]) > 0.1', "cpu", "max_over_time(cpu[10m])",
             "mem / on (instance) group_left sum by (instance) (cpu)"]
    engine = Engine()
    widths: dict[object, tuple[int, int]] = {}
    for _run in range(2):
        shared = SharedSelects(store.querier("t"), AT, widths)
        for e in exprs:
            got = engine.instant(shared, e, AT)
            want = engine.instant(store.querier("t"), e, AT)
            assert [(s.labels, s.values.tolist()) for s in got.series] == \
                   [(s.labels, s.values.tolist()) for s in want.series], e
    assert shared.store_reads == 3  # cpu{mode!="idle"}, cpu, mem


def test_a_far_window_is_read_alone(store: EmbeddedMetricsStore) -> None:
    engine = Engine()
    widths: dict[object, tuple[int, int]] = {}
    for _run in range(2):
        shared = SharedSelects(store.querier("t"), AT, widths)
        for e in ("rate(cpu[2m])", "rate(cpu[1m] offset 10m)", "cpu"):
            got = engine.instant(shared, e, AT)
            want = engine.instant(store.querier("t"), e, AT)
            assert [(s.labels, s.values.tolist()) for s in got.series] == \
                   [(s.labels, s.values.tolist()) for s in want.series], e
    # cpu over 5m (the widest: the lookback of "cpu"), the offset window alone; never one 11m read
    assert shared.store_reads == 2
    assert widths == {(MATCHERS[0][0],): (5 * 60_000 - 1, 0)}  # windows are left-open


def test_a_wide_read_over_the_budget_falls_back_to_the_requested_range(store: EmbeddedMetricsStore) -> None:
    widths: dict[object, tuple[int, int]] = {(Matcher.of(MatchType.EQ, "__name__", "cpu"),): (20 * 60_000, 0)}
    engine = Engine(max_samples=200)  # the 20 min read of cpu is ~1,200 samples; 1 min is ~70
    shared = SharedSelects(store.querier("t"), AT, widths)
    got = engine.instant(shared, "rate(cpu[1m])", AT)
    want = engine.instant(store.querier("t"), "rate(cpu[1m])", AT)
    assert [(s.labels, s.values.tolist()) for s in got.series] == [(s.labels, s.values.tolist()) for s in want.series]
    assert shared.store_reads == 2  # the wide read refused, then the narrow one
    with pytest.raises(QueryLimitExceeded):  # a query really over the budget still fails
        engine.instant(SharedSelects(store.querier("t"), AT, {}), "rate(cpu[20m])", AT)


def test_the_remembered_windows_are_bounded(store: EmbeddedMetricsStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("clearsight.query.shared_select.MAX_WIDTHS", 3)
    widths: dict[object, tuple[int, int]] = {}
    shared = SharedSelects(store.querier("t"), AT, widths)
    for i in range(5):  # as a template's query with a different instance per alert
        shared.select([Matcher.of(MatchType.EQ, "__name__", "cpu"), Matcher.of(MatchType.EQ, "instance", f"h{i}")],
                      AT - 60_000, AT)
    assert 1 <= len(widths) <= 3


def test_reads_beyond_the_cache_bound_are_not_kept(store: EmbeddedMetricsStore) -> None:
    shared = SharedSelects(store.querier("t"), AT, {}, max_cached_samples=10)
    for _ in range(3):
        shared.select(MATCHERS[0], AT - 60_000, AT)
    assert shared.store_reads == 3


@settings(max_examples=200, deadline=None)
@given(series=st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=8, unique=True), max_size=5),
       lo=st.integers(-10, 60), hi=st.integers(-10, 60))
def test_slice_is_the_samples_in_range(series: list[list[int]], lo: int, hi: int) -> None:
    d = SeriesData.from_lists([(make_labels({"i": str(i)}), [(t, float(t)) for t in ts]) for i, ts in enumerate(series)])
    want = SeriesData.from_lists([(make_labels({"i": str(i)}), [(t, float(t)) for t in ts if lo <= t <= hi])
                                  for i, ts in enumerate(series) if any(lo <= t <= hi for t in ts)])
    _same(slice_range(d, lo, hi), want)


def test_slice_of_nothing_and_of_everything() -> None:
    assert len(slice_range(SeriesData.empty(), 0, 10)) == 0
    d = SeriesData.from_lists([(make_labels({"a": "1"}), [(1, 1.0), (5, 2.0)]), (make_labels({"a": "2"}), [(9, 3.0)])])
    _same(slice_range(d, 0, 100), d)
    assert slice_range(d, 0, 100).values is not d.values  # fresh arrays: callers may change them
    _same(slice_range(d, 2, 8), SeriesData.from_lists([(make_labels({"a": "1"}), [(5, 2.0)])]))
