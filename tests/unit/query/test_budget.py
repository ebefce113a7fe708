"""Per-query memory accounting (query/budget.py and the engine's use of it): the max_samples limit
is enforced before the points exist, names the limit, and counts what a query holds at once."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from clearsight.model.matchers import Matcher
from clearsight.model.samples import SeriesData
from clearsight.query.budget import TOO_MANY_SAMPLES, QueryBudget, QueryCanceled, checkpoint, running
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.functions import FUNCTIONS
from clearsight.query.promql.values import FuncContext, QueryLimitExceeded, QueryTimeout, Value
from clearsight.store.memory import MemorySeriesSelector

M = 60_000
H = 3_600_000


class RecordingSelector:
    """A SeriesSelector that records the time range of every read."""

    def __init__(self, inner: MemorySeriesSelector) -> None:
        self.inner = inner
        self.reads: list[tuple[int, int]] = []

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
        self.reads.append((start_ms, end_ms))
        return self.inner.select(matchers, start_ms, end_ms)


def counters(n: int, end_ms: int, every_ms: int = 15_000) -> MemorySeriesSelector:
    s = MemorySeriesSelector()
    ts = np.arange(0, end_ms + 1, every_ms, dtype=np.int64)
    for i in range(n):
        s.add((("__name__", "http_requests_total"), ("instance", f"i{i}")), ts, np.cumsum(np.ones(ts.size)))
    return s


def test_budget_reserve_and_settle() -> None:
    b = QueryBudget(max_samples=100, deadline=float("inf"))
    b.reserve(60, "x")
    mark = b.held
    b.reserve(30, "operand")
    with pytest.raises(QueryLimitExceeded, match=TOO_MANY_SAMPLES) as ei:
        b.reserve(20, "the output")
    assert "query.max_samples=100" in str(ei.value) and "the output would need 20 points" in str(ei.value)
    b.settle(mark, 5, "node")  # operands released, output held
    assert b.held == 65 and b.peak == 90


def test_budget_check_reports_timeout_and_cancel() -> None:
    now = [0.0]
    cancel = threading.Event()
    b = QueryBudget(10, deadline=1.0, cancel=cancel, clock=lambda: now[0])
    b.check()
    now[0] = 2.0
    with pytest.raises(QueryTimeout, match="query timed out in expression evaluation"):
        b.check()
    assert b.stopped_by == "timeout"
    cancel.set()
    with pytest.raises(QueryCanceled, match="canceled"):
        b.check()
    assert b.stopped_by == "canceled"


def test_checkpoint_reaches_the_running_query_only() -> None:
    checkpoint()  # no query on this thread: nothing to check
    cancel = threading.Event()
    cancel.set()
    with running(QueryBudget(10, float("inf"), cancel)), pytest.raises(QueryCanceled):
        checkpoint()
    checkpoint()  # the budget is gone once the query ends


def test_issue_query_is_refused_before_the_subquery_is_evaluated() -> None:
    """The finding: sum(max_over_time(rate(x[5m])[1h:1s])) over 12 h at a 60 s step held 4.2 GB
    before failing. Now a one-step probe of the inner expression finds how many series it yields
    and the query fails with the named limit before the 46,800-step inner evaluation reads or
    computes anything."""
    sel = RecordingSelector(counters(50, 13 * H))
    engine = Engine(max_samples=4_000_000)
    with pytest.raises(QueryLimitExceeded, match=TOO_MANY_SAMPLES) as ei:
        engine.range(sel, "sum(max_over_time(rate(http_requests_total[5m])[1h:1s]))", H, 13 * H, M)
    # 50 series x (2 points per step in the range vector + one chunk of 4,096 steps being evaluated)
    assert "query.max_samples=4,000,000: a subquery of 46,800 steps would need 4,884,800 points" in str(ei.value)
    # Only the probe's read happened: 5 minutes before the last subquery step, not 13 hours.
    assert len(sel.reads) == 1
    lo, hi = sel.reads[0]
    assert hi - lo < 5 * M + 1


def test_same_query_runs_when_it_fits() -> None:
    sel = RecordingSelector(counters(3, 13 * H))
    res = Engine(max_samples=5_000_000).range(
        sel, "sum(max_over_time(rate(http_requests_total[5m])[1h:1s]))", H, 13 * H, M)
    assert len(res.series) == 1 and res.series[0].values.shape[0] == 721
    assert np.allclose(res.series[0].values, 3 / 15)  # each counter rises 1 per 15 s
    # The stats report the most points held at once: at least the subquery's range vector.
    assert res.stats.peak_points >= 3 * 46_800 * 2


def test_range_function_output_is_reserved_before_the_function_runs() -> None:
    """rate() over many steps yields series x steps points: refused before rate computes them,
    although the samples it reads fit."""
    calls = []
    rate = FUNCTIONS["rate"]

    def counting_rate(ctx: FuncContext, args: list[Value]) -> Value:
        calls.append(1)
        return rate(ctx, args)

    fns = dict(FUNCTIONS, rate=counting_rate)
    store = counters(20, 3 * H)
    engine = Engine(max_samples=20_000, functions=fns, max_points_per_series=20_000)
    # 20 series x 721 samples loaded (14k) fit; 20 series x 10,801 steps of output do not.
    with pytest.raises(QueryLimitExceeded, match=r"function rate would need 216,020 points"):
        engine.range(store, "rate(http_requests_total[5m])", 0, 3 * H, 1000)
    assert calls == []
    engine.range(store, "rate(http_requests_total[5m])", 0, 3 * H, M)  # 181 steps fit
    assert calls == [1]


def test_operands_held_together_count_together() -> None:
    """A selector loads 10 series x 20 samples (the 5 m lookback at 15 s) and yields 10 cells: 210
    points at its peak. One side of a + b fits a 215-point budget; the right side while the left
    side's 10 cells are still held does not."""
    store = counters(10, H)
    engine = Engine(max_samples=215)
    res = engine.instant(store, "sum(http_requests_total)", H)
    assert res.stats.peak_points == 210
    # The right side: its 200 samples beside the left side's 10 cells, then 10 cells more.
    with pytest.raises(QueryLimitExceeded, match="an instant vector selector would need 10 points while 210 are held"):
        engine.instant(store, "http_requests_total + http_requests_total", H)


def test_cancel_stops_a_range_function_inside_its_window_loop() -> None:
    """The cancel event set while quantile_over_time runs over a subquery's windows: its window loop
    (padded_windows) stops the query; the function never returns."""
    cancel = threading.Event()
    seen: list[str] = []
    real = FUNCTIONS["quantile_over_time"]

    def cancel_then_run(ctx: FuncContext, args: list[Value]) -> Value:
        cancel.set()  # the client goes away just as the function starts
        seen.append("started")
        out = real(ctx, args)
        seen.append("returned")
        return out

    engine = Engine(functions=dict(FUNCTIONS, quantile_over_time=cancel_then_run))
    with pytest.raises(QueryCanceled, match="canceled in expression evaluation"):
        engine.range(counters(2, 3 * H), "quantile_over_time(0.5, rate(http_requests_total[5m])[1h:1m])",
                     2 * H, 3 * H, M, cancel=cancel)
    assert seen == ["started"]


def test_deadline_checked_between_store_reads() -> None:
    """A store read that outlives the deadline stops the query right after it: the second
    selector of a + b is never read."""
    now = [0.0]

    class SlowReads(RecordingSelector):
        def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
            now[0] += 10.0  # each read takes 10 "seconds"
            return super().select(matchers, start_ms, end_ms)

    sel = SlowReads(counters(2, H))
    engine = Engine(timeout_s=5.0)
    original = QueryBudget.__init__

    def fake_clock(self: QueryBudget, max_samples: int, deadline: float, cancel: threading.Event | None = None,
                   clock: object = None) -> None:
        original(self, max_samples, 5.0, cancel, clock=lambda: now[0])

    mp = pytest.MonkeyPatch()
    mp.setattr(QueryBudget, "__init__", fake_clock)
    try:
        with pytest.raises(QueryTimeout, match="query timed out in expression evaluation"):
            engine.instant(sel, "http_requests_total + http_requests_total", H)
    finally:
        mp.undo()
    assert len(sel.reads) == 1


def test_a_subquery_checks_while_it_copies_its_range_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    """The range vector a subquery builds is copied into one column SUBQUERY_COPY_SERIES series at a
    time, with a checkpoint in between (a large one took hundreds of ms unchecked: a closed
    client's query ran on that long); a cancel seen there stops the query."""
    from clearsight.query.promql import engine as engine_mod

    wheres: list[str] = []
    real_check = QueryBudget.check

    def recording_check(self: QueryBudget, where: str = "expression evaluation") -> None:
        wheres.append(where)
        real_check(self, where)

    monkeypatch.setattr(QueryBudget, "check", recording_check)
    copying = "subquery evaluation (copying its range vector)"
    q = "max_over_time(rate(http_requests_total[5m])[1h:15s])"
    Engine().instant(counters(40, 2 * H), q, 2 * H)
    assert wheres.count(copying) == 40 // engine_mod.SUBQUERY_COPY_SERIES  # after series 16 and 32
    cancel = threading.Event()
    wheres.clear()

    def cancel_at_the_copy(self: QueryBudget, where: str = "expression evaluation") -> None:
        wheres.append(where)
        if where == copying:
            cancel.set()
        real_check(self, where)

    monkeypatch.setattr(QueryBudget, "check", cancel_at_the_copy)
    with pytest.raises(QueryCanceled, match=r"copying its range vector"):
        Engine().instant(counters(40, 2 * H), q, 2 * H, cancel=cancel)
    assert wheres.count(copying) == 1


def test_count_values_reserves_its_output_before_allocating_it() -> None:
    """count_values yields one series per distinct value, each with a point per step: the counters
    take a new value every step, so 181 steps give 181 series x 181 steps, refused by count_values
    itself before it allocates them."""
    store = counters(10, 4 * H)
    with pytest.raises(QueryLimitExceeded, match="count_values would need 32,761 points"):
        Engine(max_samples=20_000).range(store, 'count_values("v", http_requests_total)', H, 4 * H, M)
    res = Engine(max_samples=20_000).range(store, 'count_values("v", http_requests_total)', H, H + 10 * M, M)
    assert len(res.series) == 11 and all(float(v) == 10 for s in res.series for v in s.values)


def test_long_subqueries_are_evaluated_in_chunks_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 36,000-step subquery runs in 9 chunks (9 reads, beside the probe's), checking the deadline
    between them, and gives exactly what one whole evaluation gives."""
    from clearsight.query.promql import engine as engine_mod

    q = "max_over_time((rate(http_requests_total[5m]) * on(instance) group_left http_requests_total)[10h:1s])"
    sel = RecordingSelector(counters(3, 11 * H))
    chunked = Engine().instant(sel, q, 11 * H)
    assert len(sel.reads) == 2 * (1 + 9)  # two selectors: the probe, then 9 chunks
    monkeypatch.setattr(engine_mod, "SUBQUERY_CHUNK_STEPS", 1_000_000)
    whole = Engine().instant(RecordingSelector(counters(3, 11 * H)), q, 11 * H)
    assert [s.labels for s in chunked.series] == [s.labels for s in whole.series]
    assert all(np.array_equal(a.values, b.values) and np.array_equal(a.timestamps, b.timestamps)
               for a, b in zip(chunked.series, whole.series, strict=True))
    cancel = threading.Event()
    checks: list[int] = []

    class CancelAfterThreeReads(RecordingSelector):
        def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
            checks.append(1)
            if len(checks) == 3:
                cancel.set()
            return super().select(matchers, start_ms, end_ms)

    monkeypatch.setattr(engine_mod, "SUBQUERY_CHUNK_STEPS", 4096)
    with pytest.raises(QueryCanceled):
        Engine().instant(CancelAfterThreeReads(counters(3, 11 * H)), "max_over_time(http_requests_total[10h:1s])",
                         11 * H, cancel=cancel)
    assert len(checks) == 3  # the probe, chunk 1, chunk 2: stopped right after that read
