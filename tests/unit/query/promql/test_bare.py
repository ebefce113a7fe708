"""The short path of bare selectors (``bare.plan_of``, ``engine._bare_result``) gives the general
evaluator's answers: the same series, points (bit for bit), statistics and errors, over random
data and random selectors, at the same checkpoints; and it hands what it does not cover to the
general evaluator (native histograms, rollups, queryable-sample counting)."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.labels import make_labels
from clearsight.model.rollups import ONE_HOUR_MS
from clearsight.query import budget as budget_mod
from clearsight.query.promql import bare, engine
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.parser import parse
from clearsight.query.promql.prepared import PreparedQueries
from clearsight.query.promql.result import QueryResult
from clearsight.store.memory import MemorySeriesSelector
from clearsight.store.storetest.contract_histograms import hist
from tests.unit.store.rollup_data import DAY, HOUR, T0, RawOnly, batch, random_series

STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
FUNCS = sorted(bare.OVER_TIME_OPS)

values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                   st.sampled_from([0.0, -0.0, 1.0, -1.0, 5e-324, 1e308, STALE, float("nan")]))


@st.composite
def stores(draw: st.DrawFn) -> MemorySeriesSelector:
    """Up to 6 series of ``m`` (and one of ``other``), samples at random times in 0..2,000 s."""
    sel = MemorySeriesSelector()
    for i in range(draw(st.integers(0, 6))):
        times = sorted(set(draw(st.lists(st.integers(0, 2_000), max_size=30))))
        vals = [draw(values) for _ in times]
        sel.add(make_labels({"__name__": "m", "i": str(i), "j": str(i % 2)}), [t * 1000 for t in times], vals)
    sel.add(make_labels({"__name__": "other", "i": "0"}), [1_000_000], [1.0])
    return sel


@st.composite
def queries(draw: st.DrawFn) -> str:
    sel = draw(st.sampled_from(["m", 'm{j="1"}', 'm{i=~"[0-3]"}', 'm{i!="2"}', "nothing", '{__name__=~"m|other"}']))
    mod = draw(st.sampled_from(["", " offset 1m", " offset -2m", " @ 1500", " @ start()", " @ end()",
                                " offset 30s @ 900"]))
    func = draw(st.sampled_from([None, *FUNCS]))
    if func is None:
        return sel + mod
    rng = draw(st.sampled_from(["1s", "1m", "5m", "17s", "1h"]))
    return f"{func}({sel}[{rng}]{mod})"


def _bits(res: QueryResult) -> tuple[object, ...]:
    return (res.result_type, res.eval_time_ms, res.annotations.warnings, res.annotations.infos,
            res.stats.samples_loaded, res.stats.series_fetched, res.stats.peak_points,
            [(s.labels, s.timestamps.tolist(), s.values.view(np.int64).tolist(), s.histograms) for s in res.series])


def _run(eng: Engine, sel: MemorySeriesSelector, q: str, kind: tuple[int, int, int] | int) -> tuple[object, ...]:
    try:
        if isinstance(kind, int):
            return _bits(eng.instant(sel, q, kind))
        return _bits(eng.range(sel, q, *kind))
    except Exception as e:  # the same error, message included
        return (type(e).__name__, str(e))


def _engines(**kw: int) -> tuple[Engine, Engine]:
    short, general = Engine(**kw), Engine(**kw)  # type: ignore[arg-type]
    general.bare_path = False
    return short, general


@contextmanager
def counted_checks() -> Iterator[list[str]]:
    """Every ``QueryBudget.check`` call's checkpoint name, in order."""
    seen: list[str] = []
    real = budget_mod.QueryBudget.check

    def check(self: budget_mod.QueryBudget, where: str = "expression evaluation") -> None:
        seen.append(where)
        real(self, where)

    budget_mod.QueryBudget.check = check  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        budget_mod.QueryBudget.check = real  # type: ignore[method-assign]


def _answered_by_short_path(eng: Engine, sel: MemorySeriesSelector, q: str, t: int) -> bool:
    plan = eng._bare_plan(parse(q), None, False)
    ts = np.asarray([t], dtype=np.int64)
    return plan is not None and engine._bare_result(eng, sel, plan, ts, t, t, t, t, None, 1e18, None, True) is not None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores(), queries(), st.integers(0, 2_200), st.integers(1, 120), st.integers(0, 40),
       st.sampled_from([50_000_000, 60, 7, 1]), st.sampled_from([1_000_000, 3]))
def test_short_path_answers_are_the_general_ones(sel: MemorySeriesSelector, q: str, start_s: int, step_s: int,
                                                 steps: int, max_samples: int, max_series: int) -> None:
    short, general = _engines(max_samples=max_samples, max_series=max_series)
    t = start_s * 1000
    with counted_checks() as a:
        got_instant = _run(short, sel, q, t)
    with counted_checks() as b:
        want_instant = _run(general, sel, q, t)
    assert got_instant == want_instant
    assert a == b  # the same checkpoints (deadline, cancellation, the pause for writes), in the same order
    rng = (t, t + steps * step_s * 1000 + step_s * 500 * (steps % 2), step_s * 1000)  # end off the grid at times
    with counted_checks() as a:
        got_range = _run(short, sel, q, rng)
    with counted_checks() as b:
        want_range = _run(general, sel, q, rng)
    assert got_range == want_range
    assert a == b


def test_the_short_path_answers_float_selectors_and_declines_the_rest() -> None:
    sel = MemorySeriesSelector()
    sel.add(make_labels({"__name__": "m", "i": "0"}), [1_000, 2_000], [1.0, 2.0])
    sel.add(make_labels({"__name__": "h", "i": "0"}), [1_000, 2_000], [0.0, 0.0], [hist(1), hist(2)])
    eng = Engine()
    for q in ("m", "m offset 1s", "m @ 2", "max_over_time(m[1m])", "changes(m[1m] @ end())"):
        assert _answered_by_short_path(eng, sel, q, 3_000), q
    for q in ("h", "max_over_time(h[1m])"):  # native histograms: the general evaluator's
        assert not _answered_by_short_path(eng, sel, q, 3_000), q
        short, general = _engines()
        assert _bits(short.instant(sel, q, 3_000)) == _bits(general.instant(sel, q, 3_000))
    for q in ("rate(m[1m])", "quantile_over_time(0.5, m[1m])", "sum(m)", "m smoothed", "(m)", "m[1m]",
              "max_over_time(m[1m] anchored)", "max_over_time(m[step()])", "m offset step()", "-m"):
        assert bare.plan_of(parse(q)) is None, q


def test_plans_are_prepared_once_per_text() -> None:
    cache = PreparedQueries()
    p = cache.prepare("max_over_time(node_load1[1h] offset 5m)")
    assert isinstance(p.bare, bare.BarePlan)
    assert (p.bare.op, p.bare.keep_name, p.bare.range_ms, p.bare.offset_ms) == ("MAX", False, 3_600_000, 300_000)
    assert cache.prepare("max_over_time(node_load1[1h] offset 5m)").bare is p.bare
    assert cache.prepare("sum(up)").bare is False


def test_an_engine_with_other_functions_takes_the_general_path() -> None:
    mine = dict(Engine().functions)
    mine["max_over_time"] = mine["min_over_time"]  # a registry of one's own: its functions are called
    sel = MemorySeriesSelector()
    sel.add(make_labels({"__name__": "m"}), [1_000, 2_000], [1.0, 2.0])
    res = Engine(functions=mine).instant(sel, "max_over_time(m[1m])", 3_000)
    assert res.series[0].values.tolist() == [1.0]


@pytest.mark.parametrize("q", ["m", "last_over_time(m[1m])"])
def test_timeout_and_cancel_stop_the_short_path_as_the_general_one(q: str) -> None:
    sel = MemorySeriesSelector()
    sel.add(make_labels({"__name__": "m"}), [1_000], [1.0])
    short, general = _engines()
    for eng in (short, general):
        with pytest.raises(engine.QueryCanceled, match="query was canceled in expression evaluation"):
            canceled = threading.Event()
            canceled.set()
            eng.instant(sel, q, 2_000, cancel=canceled)
        with pytest.raises(Exception, match="query timed out in expression evaluation") as e:
            eng.range(sel, q, 0, 60_000, 1_000, timeout_s=-1.0)
        assert type(e.value).__name__ == "QueryTimeout"


def test_counting_queryable_samples_takes_the_general_path() -> None:
    sel = MemorySeriesSelector()
    sel.add(make_labels({"__name__": "m"}), [1_000, 2_000, 3_000], [1.0, 2.0, 3.0])
    short, general = _engines()
    for q in ("m", "sum_over_time(m[1m])"):
        a = short.range(sel, q, 0, 4_000, 1_000, count_samples=True)
        b = general.range(sel, q, 0, 4_000, 1_000, count_samples=True)
        assert a.stats.queryable_samples == b.stats.queryable_samples > 0
        assert _bits(a) == _bits(b)


def test_steps_a_rollup_answers_go_to_the_general_path(tmp_path: Path) -> None:
    from clearsight.store.embedded import EmbeddedMetricsStore

    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, out_of_order_window_ms=HOUR,
                                 compact_min_rows=10**9)
    try:
        store.append("t", batch(random_series(3, 4, 2))).result()
        store.compact()
        store.run_rollups(T0 + 2 * DAY + 2 * HOUR)
        short, general = _engines()

        def reads() -> int:
            p = store.stats().rollups
            assert p is not None
            return p.reads_total

        for q in ("max_over_time(x_total[1h])", "count_over_time(x_total[1h] offset 1h)"):
            before = reads()
            on_grid = short.instant(store.querier("t"), q, T0 + DAY)
            assert reads() > before  # a rollup answered it
            assert _bits(on_grid) == _bits(general.instant(store.querier("t"), q, T0 + DAY))
            off_grid = T0 + DAY + 1234  # from raw samples: the short path's
            assert _answered_by_short_path(short, store.querier("t"), q, off_grid)  # type: ignore[arg-type]
            assert _bits(short.instant(store.querier("t"), q, off_grid)) == \
                _bits(short.instant(RawOnly(store.querier("t")), q, off_grid))
            span = (T0 + HOUR, T0 + DAY, ONE_HOUR_MS)
            assert _bits(short.range(store.querier("t"), q, *span)) == \
                _bits(general.range(store.querier("t"), q, *span))
    finally:
        store.close()


class _ColumnsOnly:
    """A querier without ``select_latest``: the engine reads an instant selector's columns."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def select(self, matchers: object, start_ms: int, end_ms: int) -> object:
        return self.inner.select(matchers, start_ms, end_ms)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A store with 8 series of ``m`` over a day (irregular intervals, stale markers, NaN): the first
    half compacted into chunks, the second half in the head, then a late sample in the first half."""
    from clearsight.store.embedded import EmbeddedMetricsStore

    store = EmbeddedMetricsStore(tmp_path_factory.mktemp("latest"), retention_ms=10**13,
                                 out_of_order_window_ms=DAY, compact_min_rows=10**9, chunk_target_samples=60)
    try:
        data = random_series(11, 8, 1, metric="m")
        half = T0 + DAY // 2
        store.append("t", batch([(lbl, [p for p in pts if p[0] < half]) for lbl, pts in data])).result()
        store.compact()
        store.append("t", batch([(lbl, [p for p in pts if p[0] >= half]) for lbl, pts in data])).result()
        late = data[0][1][len(data[0][1]) // 4][0] + 1
        store.append("t", batch([(data[0][0], [(late, 7.0)])])).result()
        yield store
    finally:
        store.close()


_LATEST_QUERIES = ["m", 'm{instance="i1"}', 'm{s=~"[0-4]"}', "m offset 5m", 'm{s!="3"} @ 43200', "nothing"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_LATEST_QUERIES), st.one_of(st.integers(0, DAY // 1000), st.integers(DAY // 2000 - 600,
                                                                                      DAY // 2000 + 600)),
       st.sampled_from([50_000_000, 60, 7, 1]), st.sampled_from([1_000_000, 3]))
def test_an_instant_selectors_latest_read_answers_as_its_columns(embedded: object, q: str, t_s: int,
                                                                 max_samples: int, max_series: int) -> None:
    """An embedded store's ``select_latest`` (the newest sample per series in one compiled call, from
    the head and the cached chunks) gives the engine's short path the answers, statistics, errors
    and checkpoints of the columns ``select`` returns."""
    querier = embedded.querier("t")  # type: ignore[attr-defined]
    eng = Engine(max_samples=max_samples, max_series=max_series)
    t = T0 + t_s * 1000
    q = q.replace("@ 43200", f"@ {(T0 // 1000) + 43200}")
    Engine().instant(_ColumnsOnly(querier), q, t)  # the range's chunks decoded: both reads below find them
    with counted_checks() as a:
        got = _run(eng, querier, q, t)
    with counted_checks() as b:
        want = _run(eng, _ColumnsOnly(querier), q, t)
    assert got == want
    assert a == b


def test_the_latest_read_is_taken_at_the_data_end_and_over_cached_chunks(embedded: object) -> None:
    querier = embedded.querier("t")  # type: ignore[attr-defined]
    end = T0 + DAY - 1
    mid = T0 + DAY // 4
    assert querier.select_latest(parse("m").matchers, end - 300_000 + 1, end, None) is not None  # type: ignore[attr-defined]
    Engine().instant(_ColumnsOnly(querier), "m", mid)  # decodes the chunks of the range into the cache
    got = querier.select_latest(parse("m").matchers, mid - 300_000 + 1, mid, None)  # type: ignore[attr-defined]
    assert got is not None and got.chunks > 0
    assert len(got.labels) == got.values.shape[0] > 0
