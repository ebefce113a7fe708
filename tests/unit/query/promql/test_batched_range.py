"""Range functions over batches of series and aggregations over blocks of steps, with the query's
checkpoint between them (query/promql/batched_range.py, aggregations.column_blocks): the answers
are bit for bit those of one call over everything, and the checkpoints are reached."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clearsight.model.labels import Labels
from clearsight.model.samples import STALE_NAN
from clearsight.query.budget import QueryBudget, QueryCanceled, running
from clearsight.query.promql import aggregations, batched_range, fn_range
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.result import QueryResult
from clearsight.query.promql.values import (
    Annotations,
    FuncContext,
    MatrixSteps,
    QueryLimitExceeded,
    ScalarSteps,
    Value,
    VectorSteps,
)
from clearsight.store.memory import MemorySeriesSelector
from tests.conformance import promqltest_runner as runner
from tests.support.spy import count_calls

MIN = 60_000
T_END = 4 * 3_600_000


def _answer(engine: Engine, blocks: int, call: Any) -> tuple[Any, ...]:
    """What an evaluation answered, comparable bit for bit: series (labels, timestamps, value bits,
    histograms as text), annotations, or the error's type and message."""
    old = aggregations.COLUMN_BLOCK_CELLS
    aggregations.COLUMN_BLOCK_CELLS = blocks
    try:
        res: QueryResult = call(engine)
    except Exception as e:  # the error is part of the answer
        return ("error", type(e).__name__, str(e))
    finally:
        aggregations.COLUMN_BLOCK_CELLS = old
    series = [(s.labels, np.asarray(s.timestamps).tolist(), np.asarray(s.values, dtype=np.float64).view(np.int64).tolist(),
               None if s.histograms is None else [repr(h) for h in s.histograms]) for s in res.series]
    return (res.result_type, series, res.string_value, res.annotations.warnings, res.annotations.infos)


WHOLE = Engine(timeout_s=100.0, range_batch_work=0)  # one call, one block of steps
SPLIT = Engine(timeout_s=100.0, range_batch_work=1)  # every series its own batch, every step its own block
ONE_CELL, NO_LIMIT = 1, 1 << 62


def both(call: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    return _answer(WHOLE, NO_LIMIT, call), _answer(SPLIT, ONE_CELL, call)


class _TwinEngine(Engine):
    """Evaluates every query unsplit and split to the extreme, recording the queries whose answers
    differ."""

    def __init__(self) -> None:
        super().__init__(timeout_s=100.0)
        self.differ: list[str] = []
        self.evaluated = 0

    def _twice(self, query: Any, call: Any) -> Any:
        self.evaluated += 1
        whole, split = both(call)
        if whole != split:
            self.differ.append(f"{query}: {whole!r} != {split!r}"[:600])
        return call(WHOLE)

    def instant(self, selector: Any, query: Any, time_ms: int, **kw: Any) -> Any:
        return self._twice(query, lambda e: Engine.instant(e, selector, query, time_ms, **kw))

    def range(self, selector: Any, query: Any, start_ms: int, end_ms: int, step_ms: int, **kw: Any) -> Any:
        return self._twice(query, lambda e: Engine.range(e, selector, query, start_ms, end_ms, step_ms, **kw))


def _run_file(path: Path, engine: _TwinEngine) -> None:
    r = runner.Runner(runner._default_parse_fn, engine=engine)
    for cmd in runner.parse_script(path.read_text()):
        if isinstance(cmd, runner.EvalCmd):
            with contextlib.suppress(Exception):  # pass/fail is test_promqltest's business
                r.run_eval(cmd)
        elif isinstance(cmd, runner.LoadCmd):
            r.load(cmd)
        else:
            r.clear()


def test_promqltest_evals_answer_the_same_split_and_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    files = runner.all_files()
    assert files, f"no promqltest files under {runner.promqltest_dir()}"
    batches = count_calls(monkeypatch, batched_range, "_rows")
    engine = _TwinEngine()
    for path in files:
        _run_file(path, engine)
    assert engine.evaluated > 1000
    assert batches.calls > 1000  # the split evaluation did run functions batch by batch
    assert engine.differ == []


def _selector(n: int, seed: int) -> MemorySeriesSelector:
    """``n`` series of metrics ``m_total`` and ``g`` (half each) over 4 h, irregular and with
    gaps, counter resets, NaN, infinities, stale markers and a few empty or one-sample series."""
    rng = np.random.default_rng(seed)
    sel = MemorySeriesSelector()
    for i in range(n):
        name = "m_total" if i % 2 else "g"
        kind = i % 5
        if kind == 4 and i % 3 == 0:
            ts = np.asarray([int(rng.integers(0, T_END))], dtype=np.int64)
        else:
            ts = np.unique(rng.integers(0, T_END, size=int(rng.integers(2, 400)))).astype(np.int64)
        vals = np.cumsum(rng.exponential(3.0, ts.size))
        if kind == 1:
            vals[rng.random(ts.size) < 0.05] = 0.0  # counter resets
        if kind == 2:
            vals[rng.random(ts.size) < 0.05] = np.nan
            vals[rng.random(ts.size) < 0.02] = np.inf
        if kind == 3:
            vals = vals * 1e15 + rng.normal(0, 1e3, ts.size)  # badly conditioned sums
            vals[rng.random(ts.size) < 0.1] = STALE_NAN
        lbls: Labels = (("__name__", name), ("i", f"{i:03d}"), ("job", f"j{i % 4}"))
        sel.add(lbls, ts, vals)
    return sel


FUNCTION_QUERIES = [f"{fn}({{__name__=~\"m_total|g\"}}[7m])" for fn in sorted(batched_range.BATCHABLE)
                    if fn not in ("quantile_over_time", "predict_linear")]
FUNCTION_QUERIES += [
    'quantile_over_time(0.3, {__name__=~"m_total|g"}[11m])',
    'quantile_over_time(scalar(count(g)) - 40, {__name__=~"m_total|g"}[11m])',  # out of range at some steps
    'predict_linear({__name__=~"m_total|g"}[9m], 600)',
    'rate(m_total[5m] offset 3m)',
    'max_over_time(rate(m_total[5m])[20m:1m])',
    'quantile_over_time(0.9, rate(m_total[5m])[15m:30s])',
    'rate(m_total[5m] anchored)',
]
AGGREGATION_QUERIES = [
    "sum(g)", "avg by (job) (g)", "sum without (i) (m_total)", "min by (job) (g)", "max(m_total)",
    "count by (job) (g)", "group(g)", "stddev by (job) (g)", "stdvar(g)", "quantile by (job) (0.7, g)",
    "topk(3, g)", "bottomk by (job) (2, m_total)", "limitk(4, g)", "topk(scalar(count(g)) - 30, g)",
    "sum by (job) (rate(m_total[5m]))", "topk(5, avg_over_time(g[10m]))",
    "max_over_time(sum(rate(m_total[5m]))[30m:1m])",
]


@pytest.mark.parametrize("query", FUNCTION_QUERIES + AGGREGATION_QUERIES)
def test_random_series_answer_the_same_split_and_whole(query: str) -> None:
    sel = _selector(120, seed=len(query))
    whole, split = both(lambda e: e.range(sel, query, T_END - 3 * 3_600_000, T_END, MIN))
    assert whole[0] != "error", whole
    assert whole == split
    whole, split = both(lambda e: e.instant(sel, query, T_END - 7 * MIN))
    assert whole == split


def test_sample_limit_is_reported_by_name_split_as_whole() -> None:
    sel = _selector(60, seed=3)
    need = Engine(range_batch_work=0).range(sel, "rate(m_total[5m])", 0, T_END, MIN).stats.peak_points
    for limit in (need - 1, need // 2):
        answers = [_answer(Engine(max_samples=limit, range_batch_work=w), cells,
                           lambda e: e.range(sel, "rate(m_total[5m])", 0, T_END, MIN))
                   for w, cells in ((0, NO_LIMIT), (1, ONE_CELL))]
        assert answers[0] == answers[1]
        assert answers[0][1] == QueryLimitExceeded.__name__ and "query.max_samples" in answers[0][2]


def _matrix(n: int, k: int) -> MatrixSteps:
    rng = np.random.default_rng(7)
    tss = [np.sort(rng.choice(np.arange(0, 40 * MIN, 15_000), size=30, replace=False)).astype(np.int64)
           for _ in range(n)]
    vals = [np.cumsum(rng.random(30)) for _ in range(n)]
    labels: list[Labels] = [(("__name__", "x"), ("i", f"{i:02d}")) for i in range(n)]
    return MatrixSteps(labels, tss, vals, np.arange(20 * MIN, 20 * MIN + k * MIN, MIN, dtype=np.int64), 5 * MIN)


def test_a_checkpoint_follows_every_batch() -> None:
    m = _matrix(40, 10)
    seen: list[list[Labels]] = []
    events: list[str] = []

    def impl(ctx: FuncContext, args: list[Value]) -> Value:
        arg = args[0]
        assert isinstance(arg, MatrixSteps)
        seen.append(list(arg.labels))
        events.append("batch")
        return fn_range.fn_sum_over_time(ctx, args)

    ctx = FuncContext(np.asarray(m.window_end), [], Annotations())
    work = (30 + 10) * 8  # eight series per batch
    out = batched_range.call("sum_over_time", impl, ctx, [m], lambda: events.append("check"), work)
    assert events == ["batch", "check"] * 5
    assert [lbl for batch in seen for lbl in batch] == m.labels  # the series in order, each once
    whole = fn_range.fn_sum_over_time(FuncContext(np.asarray(m.window_end), [], Annotations()), [m])
    assert isinstance(out, VectorSteps) and isinstance(whole, VectorSteps)
    assert out.labels == whole.labels
    assert out.values.tobytes() == whole.values.tobytes() and np.array_equal(out.present, whole.present)


def test_one_batch_or_an_unbatchable_function_is_called_as_is() -> None:
    m = _matrix(40, 10)
    ctx = FuncContext(np.asarray(m.window_end), [], Annotations())
    checks: list[int] = []
    for name, work in (("sum_over_time", 0), ("sum_over_time", 1 << 20), ("stddev_over_time", 1)):
        impl = fn_range.fn_stddev_over_time if name == "stddev_over_time" else fn_range.fn_sum_over_time
        batched_range.call(name, impl, ctx, [m], lambda: checks.append(1), work)
    assert checks == []


def test_a_canceled_query_stops_between_batches() -> None:
    m = _matrix(40, 10)
    cancel = threading.Event()
    calls = 0

    def impl(ctx: FuncContext, args: list[Value]) -> Value:
        nonlocal calls
        calls += 1
        cancel.set()  # the client goes away during the first batch
        return fn_range.fn_rate(ctx, args)

    budget = QueryBudget(10**9, deadline=float("inf"), cancel=cancel)
    ctx = FuncContext(np.asarray(m.window_end), [], Annotations())
    with running(budget), pytest.raises(QueryCanceled):
        batched_range.call("rate", impl, ctx, [m], budget.check, 40 * 8)
    assert calls == 1


def test_an_aggregation_reaches_a_checkpoint_between_blocks_of_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    n, k = 50, 100
    v = VectorSteps([(("i", f"{i:02d}"),) for i in range(n)], rng.random((n, k)), rng.random((n, k)) < 0.9)
    ann = Annotations()
    for op, param in (("sum", None), ("avg", None), ("max", None), ("quantile", ScalarSteps(np.full(k, 0.3))),
                      ("topk", ScalarSteps(np.full(k, 3.0)))):
        monkeypatch.setattr(aggregations, "COLUMN_BLOCK_CELLS", 1 << 30)
        budget = QueryBudget(10**9, deadline=float("inf"))
        with running(budget):
            whole = aggregations.aggregate(op, v, param, [], False, ann, instant=False)
        assert budget.checks == 0
        monkeypatch.setattr(aggregations, "COLUMN_BLOCK_CELLS", n * 10)  # ten steps per block
        with running(budget):
            split = aggregations.aggregate(op, v, param, [], False, ann, instant=False)
        assert budget.checks == 9, op  # between the ten blocks
        assert split.labels == whole.labels
        assert split.values.tobytes() == whole.values.tobytes() and np.array_equal(split.present, whole.present)


def test_rate_annotations_come_from_the_whole_output() -> None:
    sel = MemorySeriesSelector()
    ts = np.arange(0, 30 * MIN, 15_000, dtype=np.int64)
    for i, name in enumerate(["zz_gauge", "aa_gauge", "mm_total", "bb_gauge"] * 5):
        sel.add((("__name__", name), ("i", str(i))), ts, np.arange(ts.size, dtype=np.float64))
    whole, split = both(lambda e: e.range(sel, 'rate({__name__=~".+"}[5m])', 10 * MIN, 30 * MIN, MIN))
    assert whole == split
    assert [m.split('"')[1] for m in whole[4]] == ["aa_gauge", "bb_gauge", "zz_gauge"]
