"""Prepared queries (query/promql/prepared.py): the LRU of parsed expressions by query text, the
cost kept per evaluation shape, and the property that makes sharing one tree safe: evaluating an
expression never changes it (checked over every eval of Prometheus' promqltest files)."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest

from clearsight.query.promql.ast import Expr
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.parser import ParseError, parse_with_positions
from clearsight.query.promql.prepared import (
    INSTANT,
    MAX_CACHED_QUERY_CHARS,
    MAX_SHAPES,
    PreparedQueries,
    range_shape,
)
from clearsight.query.promql.printer import format_expr
from tests.conformance import promqltest_runner as runner


def test_same_text_gives_the_same_tree_and_positions() -> None:
    cache = PreparedQueries()
    a = cache.prepare('sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))')
    b = cache.prepare('sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))')
    assert a is b
    assert (cache.hits, cache.misses) == (1, 1)
    expr, positions = parse_with_positions('sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))')
    assert format_expr(a.expr) == format_expr(expr)
    assert sorted(a.positions.values()) == sorted(positions.values())


def test_lru_keeps_the_most_recent_entries() -> None:
    cache = PreparedQueries(max_entries=3)
    first = cache.prepare("a")
    for q in ("b", "c"):
        cache.prepare(q)
    assert cache.prepare("a") is first  # a is now the newest
    cache.prepare("d")  # evicts b, the oldest
    assert len(cache) == 3
    misses = cache.misses
    assert cache.prepare("a") is first and cache.misses == misses
    cache.prepare("b")
    assert cache.misses == misses + 1


def test_bad_and_long_queries_are_not_kept() -> None:
    cache = PreparedQueries()
    with pytest.raises(ParseError):
        cache.prepare("sum(")
    assert len(cache) == 0
    long = 'up{job="' + "x" * MAX_CACHED_QUERY_CHARS + '"}'
    assert len(long) > MAX_CACHED_QUERY_CHARS
    assert cache.prepare(long) is not cache.prepare(long)
    assert len(cache) == 0
    assert PreparedQueries(max_entries=0).prepare("up").expr is not None


def test_cost_is_kept_per_shape_as_a_moving_mean() -> None:
    p = PreparedQueries().prepare("up")
    hour = range_shape(0, 3_600_000, 15_000)
    assert hour == (241, 3_600_000)
    assert p.cost(INSTANT) is None
    p.observe(INSTANT, 0.004)
    assert p.cost(INSTANT) == pytest.approx(0.004)
    p.observe(INSTANT, 0.002)
    assert p.cost(INSTANT) == pytest.approx(0.003)
    assert p.cost(hour) is None  # another shape: no cost known
    for i in range(MAX_SHAPES):
        p.observe(range_shape(0, (i + 1) * 60_000, 15_000), 0.01)
    assert len(p.costs) == MAX_SHAPES
    assert p.cost(INSTANT) is None  # the oldest shape was forgotten


def test_concurrent_observations_stay_bounded() -> None:
    p = PreparedQueries().prepare("up")

    def work(k: int) -> None:
        for i in range(2000):
            p.observe((k, i % (MAX_SHAPES * 2)), 0.001)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(p.costs) == MAX_SHAPES
    assert all(c == pytest.approx(0.001) for c in p.costs.values())


class _ImmutabilityCheckingEngine(Engine):
    """Records every evaluated expression whose tree differs after the evaluation."""

    def __init__(self) -> None:
        super().__init__(timeout_s=100.0, max_samples=50_000_000)
        self.changed: list[str] = []
        self.evaluated = 0

    def _checked(self, expr: Any, call: Any) -> Any:
        assert isinstance(expr, Expr)
        before = repr(expr)
        try:
            return call()
        finally:
            self.evaluated += 1
            if repr(expr) != before:
                self.changed.append(before)

    def instant(self, selector: Any, query: Any, time_ms: int, **kw: Any) -> Any:
        return self._checked(query, lambda: super(_ImmutabilityCheckingEngine, self).instant(
            selector, query, time_ms, **kw))

    def range(self, selector: Any, query: Any, start_ms: int, end_ms: int, step_ms: int, **kw: Any) -> Any:
        return self._checked(query, lambda: super(_ImmutabilityCheckingEngine, self).range(
            selector, query, start_ms, end_ms, step_ms, **kw))


def _run_checking(path: Path, engine: _ImmutabilityCheckingEngine) -> None:
    r = runner.Runner(runner._default_parse_fn, engine=engine)
    for cmd in runner.parse_script(path.read_text()):
        if isinstance(cmd, runner.EvalCmd):
            # pass/fail is test_promqltest's business; only a changed tree counts here
            with contextlib.suppress(Exception):
                r.run_eval(cmd)
        elif isinstance(cmd, runner.LoadCmd):
            r.load(cmd)
        else:
            r.clear()


def test_evaluation_never_changes_the_expression_tree() -> None:
    files = runner.all_files()
    assert files, f"no promqltest files under {runner.promqltest_dir()}"
    engine = _ImmutabilityCheckingEngine()
    for path in files:
        _run_checking(path, engine)
    assert engine.evaluated > 1000
    assert engine.changed == []
