"""A mini LogQL conformance table: a fixed data set in a real embedded log store and, per LogQL
feature, a query with the result worked out by hand from Loki's documented semantics (the
comments show the arithmetic)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from clearsight.model.labels import make_labels
from clearsight.model.logs import LogBatchBuilder
from clearsight.query.budget import QueryBudget
from clearsight.query.logql.ast import LogSelector, MetricExpr
from clearsight.query.logql.evaluator import LogQLEvaluator, LogQLLimits
from clearsight.query.logql.parser import parse_expr
from clearsight.query.promql.values import QueryError, QueryLimitExceeded, ScalarSteps, VectorSteps
from clearsight.store.embedded.logs_store import EmbeddedLogStore

S = 1_000_000_000
T0 = 1_764_000_000 * S  # the data set starts here
T = T0 + 60 * S  # evaluation time of the instant queries: windows [1m] cover (T0, T0+60s]
TENANT = "conf"

# api: JSON, one line per second i=1..60; every 5th is an error (status 500); latency_ms = 10*i
# web: logfmt, one line every 2 s (i=1..30): level=warn when i%3==0, took=100*i ms, size=i KB, n=10*i
# db:  plain text every 10 s (i=1..6): odd i "query slow table=users" (22 B), even "query ok table=orders" (21 B)


def _dataset() -> LogBatchBuilder:
    b = LogBatchBuilder()
    api = b.stream(make_labels({"app": "api", "env": "prod"}))
    web = b.stream(make_labels({"app": "web", "env": "prod"}))
    db = b.stream(make_labels({"app": "db", "env": "dev"}))
    for i in range(1, 61):
        err = i % 5 == 0
        b.add(api, T0 + i * S, json.dumps({"level": "error" if err else "info", "status": 500 if err else 200,
                                           "latency_ms": 10 * i, "msg": f"request {i}"}))
    for i in range(1, 31):
        b.add(web, T0 + 2 * i * S, f"level={'warn' if i % 3 == 0 else 'info'} took={100 * i}ms size={i}KB n={10 * i}")
    for i in range(1, 7):
        b.add(db, T0 + 10 * i * S, "query slow table=users" if i % 2 else "query ok table=orders")
    return b


# every case runs on rows in the day's head and on rows sealed into blocks (seal_rows=1)
@pytest.fixture(scope="module", params=[100_000, 1], ids=["head", "sealed"])
def store(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[EmbeddedLogStore]:
    st = EmbeddedLogStore(Path(tmp_path_factory.mktemp("logql")), seal_rows=request.param)
    st.append(TENANT, _dataset().build()).result()
    st.sync()
    assert request.param != 1 or not any(st._head.values())  # sealed: every row is in a block
    try:
        yield st
    finally:
        st.close()


def _ev(store: EmbeddedLogStore, limits: LogQLLimits | None = None) -> LogQLEvaluator:
    return LogQLEvaluator(store, TENANT, limits or LogQLLimits(), QueryBudget(10**8, time.monotonic() + 30))


def instant(store: EmbeddedLogStore, q: str, at: int = T) -> dict[tuple[tuple[str, str], ...], float] | float:
    e = parse_expr(q)
    assert isinstance(e, MetricExpr)
    v = _ev(store).metric(e, np.array([at], dtype=np.int64))
    if isinstance(v, ScalarSteps):
        return float(v.values[0])
    assert isinstance(v, VectorSteps)
    return {lbl: round(float(v.values[i, 0]), 9) for i, lbl in enumerate(v.labels) if v.present[i, 0]}


def _l(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


API, WEB, DB = _l(app="api", env="prod"), _l(app="web", env="prod"), _l(app="db", env="dev")

METRIC_CASES = [
    # count_over_time: every line in (T0, T0+60s]
    ('count_over_time({env="prod"}[1m])', {API: 60, WEB: 30}),
    # rate = count / 60 s
    ('rate({app="web"}[1m])', {WEB: 0.5}),
    # bytes: 3 * 22 + 3 * 21 = 129; bytes_rate = 129 / 60
    ('bytes_over_time({app="db"}[1m])', {DB: 129}),
    ('bytes_rate({app="db"}[1m])', {DB: 2.15}),
    # the store-side line filter before counting
    ('count_over_time({app="db"} |= "slow" [1m])', {DB: 3}),
    # offset: (T0-30s+... ] -> the window (T0, T0+30s] holds api lines 1..30
    ('count_over_time({app="api"}[30s] offset 30s)', {API: 30}),
    # parser + vector aggregation: 12 errors, 48 infos
    ('sum by (level) (count_over_time({app="api"} | json [1m]))', {_l(level="error"): 12, _l(level="info"): 48}),
    ('sum(count_over_time({app="web"} | logfmt | level="warn" [1m]))', {(): 10}),
    ('sum by (app) (count_over_time({app="api"} | json | line_format "{{.level}}" |= "error" [1m]))',
     {_l(app="api"): 12}),
    # unwrap with duration(): sum of 0.1 * i for i = 1..30 = 46.5 seconds
    ('sum_over_time({app="web"} | logfmt | unwrap duration(took) | __error__="" [1m]) by (app)', {_l(app="web"): 46.5}),
    # unwrap bytes(): sum of i * 1000 = 465000
    ('sum_over_time({app="web"} | logfmt | unwrap bytes(size) [1m]) by (env)', {_l(env="prod"): 465_000}),
    # avg: errors 10 * mean(5, 10, ..., 60) = 325; infos (18300 - 3900) / 48 = 300
    ('avg_over_time({app="api"} | json | unwrap latency_ms [1m]) by (level)', {_l(level="error"): 325,
                                                                                _l(level="info"): 300}),
    ('max_over_time({app="api"} | json | unwrap latency_ms [1m]) by (app)', {_l(app="api"): 600}),
    ('min_over_time({app="api"} | json | unwrap latency_ms [1m]) by (app)', {_l(app="api"): 10}),
    ('first_over_time({app="api"} | json | unwrap latency_ms [1m]) by (app)', {_l(app="api"): 10}),
    ('last_over_time({app="api"} | json | unwrap latency_ms [1m]) by (app)', {_l(app="api"): 600}),
    # median of 10..600: rank 0.5 * 59 = 29.5 -> between 300 and 310
    ('quantile_over_time(0.5, {app="api"} | json | unwrap latency_ms [1m]) by (app)', {_l(app="api"): 305}),
    # table name lengths 5, 6, 5, 6, 5, 6: mean 5.5, variance 0.25
    ('stdvar_over_time({app="db"} | regexp "table=(?P<t>\\\\w+)" | label_format n="{{ len .t }}" | unwrap n [1m]) '
     'by (app)', {_l(app="db"): 0.25}),
    ('stddev_over_time({app="db"} | regexp "table=(?P<t>\\\\w+)" | label_format n="{{ len .t }}" | unwrap n [1m]) '
     'by (app)', {_l(app="db"): 0.5}),
    # rate with unwrap = sum / 60 s: (10 + ... + 300) / 60 = 4650 / 60
    ('rate({app="web"} | logfmt | unwrap n [1m]) by (app)', {_l(app="web"): 77.5}),
    # counter rate of n: 290 over 58 s, extrapolated 2 s to the start (zero point) and 0 to the end: 5/s
    ('rate_counter({app="web"} | logfmt | unwrap n [1m]) by (app)', {_l(app="web"): 5.0}),
    # vector aggregations over {api: 60, web: 30}
    ('sum without (app) (count_over_time({env="prod"}[1m]))', {_l(env="prod"): 90}),
    ('avg(count_over_time({env="prod"}[1m]))', {(): 45}),
    ('min(count_over_time({env="prod"}[1m]))', {(): 30}),
    ('max(count_over_time({env="prod"}[1m]))', {(): 60}),
    ('count(count_over_time({env="prod"}[1m]))', {(): 2}),
    ('stddev(count_over_time({env="prod"}[1m]))', {(): 15}),
    ('stdvar(count_over_time({env="prod"}[1m]))', {(): 225}),
    ('topk(1, count_over_time({env="prod"}[1m]))', {API: 60}),
    ('bottomk(1, count_over_time({env="prod"}[1m]))', {WEB: 30}),
    # binary operators
    ('sum(count_over_time({env="prod"}[1m])) / sum(count_over_time({app="api"}[1m]))', {(): 1.5}),
    ('count_over_time({env="prod"}[1m]) > 50', {API: 60}),
    ('count_over_time({env="prod"}[1m]) > bool 50', {API: 1, WEB: 0}),
    ('count_over_time({env="prod"}[1m]) * 2 - 1', {API: 119, WEB: 59}),
    ('sum by (level) (count_over_time({app="api"} | json [1m])) / ignoring(level) group_left '
     'sum(count_over_time({app="api"}[1m]))', {_l(level="error"): 0.2, _l(level="info"): 0.8}),
    ('count_over_time({env="prod"}[1m]) and on(app) count_over_time({app="web"}[1m])', {WEB: 30}),
    ('count_over_time({env="prod"}[1m]) unless on(app) count_over_time({app="web"}[1m])', {API: 60}),
    ('count_over_time({app="db"}[1m]) or count_over_time({app="web"}[1m])', {DB: 6, WEB: 30}),
    ("vector(1) + vector(2)", {(): 3}),
    ("2 * 3 + 1", 7.0),
    ("1 < bool 2", 1.0),
    ('label_replace(count_over_time({app="db"}[1m]), "svc", "$1-x", "app", "(.*)")', {(*DB, ("svc", "db-x")): 6}),
    # absent_over_time: labels from the equality matchers
    ('absent_over_time({app="nope", env="prod"}[1m])', {_l(app="nope", env="prod"): 1}),
    ('absent_over_time({app="api"}[1m])', {}),
]


@pytest.mark.parametrize(("query", "want"), METRIC_CASES, ids=[c[0][:60] for c in METRIC_CASES])
def test_metric_conformance(store: EmbeddedLogStore, query: str, want: object) -> None:
    assert instant(store, query) == want


def test_sort_orders_instant_results(store: EmbeddedLogStore) -> None:
    for q, order in (('sort(count_over_time({env="prod"}[1m]))', ["web", "api"]),
                     ('sort_desc(count_over_time({env="prod"}[1m]))', ["api", "web"])):
        e = parse_expr(q)
        assert isinstance(e, MetricExpr)
        v = _ev(store).metric(e, np.array([T], dtype=np.int64))
        assert isinstance(v, VectorSteps)
        assert [dict(lbl)["app"] for lbl in v.labels] == order


def test_range_query_steps(store: EmbeddedLogStore) -> None:
    e = parse_expr('count_over_time({app="db"}[10s])')
    assert isinstance(e, MetricExpr)
    steps = np.arange(T0 + 10 * S, T + 1, 10 * S, dtype=np.int64)
    v = _ev(store).metric(e, steps)
    assert isinstance(v, VectorSteps) and v.labels == [DB]
    assert v.values[0].tolist() == [1.0] * 6 and v.present.all()
    # steps with nothing in the window have no value (not 0)
    steps = np.arange(T0 + 5 * S, T + 1, 10 * S, dtype=np.int64)  # windows (T0-5s, T0+5s], ...
    v = _ev(store).metric(parse_expr('count_over_time({app="db"}[5s])'), steps)  # type: ignore[arg-type]
    assert isinstance(v, VectorSteps) and not v.present.any()


def test_pipeline_errors_fail_metric_queries_like_loki(store: EmbeddedLogStore) -> None:
    with pytest.raises(QueryError, match="pipeline error: 'JSONParserErr' for series"):
        instant(store, 'count_over_time({app="db"} | json [1m])')
    assert instant(store, 'count_over_time({app="db"} | json | __error__!="JSONParserErr" [1m])') == {}
    with pytest.raises(QueryError, match="SampleExtractionErr"):
        instant(store, 'sum_over_time({app="web"} | logfmt | unwrap level [1m])')


def logs(store: EmbeddedLogStore, q: str, limit: int = 100, direction: str = "forward",
         limits: LogQLLimits | None = None) -> list[tuple[dict[str, str], list[tuple[int, str]]]]:
    e = parse_expr(q)
    assert isinstance(e, LogSelector)
    res = _ev(store, limits).logs(e, T0, T, limit, "forward" if direction == "forward" else "backward")
    return [(dict(r.labels), r.entries) for r in res]


LOG_CASES = [
    # keep collapses the parsed labels: one stream of the 12 errors
    ('{app="api"} | json | level="error" | keep app, level', [({"app": "api", "level": "error"}, 12)]),
    ('{app="db"} |= "slow" or "orders" != "users"', [(dict(DB), 3)]),
    ('{app="db"} |> "query <_> table=orders"', [(dict(DB), 3)]),
    ('{app="db"} !> "query <_> table=orders"', [(dict(DB), 3)]),
    ('{app="web"} | logfmt | took > 2500ms | keep app', [({"app": "web"}, 5)]),
    ('{app="web"} | logfmt | size >= 25KB | keep app', [({"app": "web"}, 6)]),
    # 10 warnings (i = 3, 6, ..., 30) and n <= 20 for i = 1, 2
    ('{app="web"} | logfmt | level="warn" or n <= 20 | keep app', [({"app": "web"}, 12)]),
    ('{app="db"} | pattern "query <speed> table=<table>" | speed="slow" | drop speed',
     [({**dict(DB), "table": "users"}, 3)]),
]


@pytest.mark.parametrize(("query", "want"), LOG_CASES, ids=[c[0][:60] for c in LOG_CASES])
def test_log_conformance(store: EmbeddedLogStore, query: str, want: list[tuple[dict[str, str], int]]) -> None:
    got = [(labels, len(entries)) for labels, entries in logs(store, query)]
    assert got == want


def test_line_format_rewrites_the_returned_lines(store: EmbeddedLogStore) -> None:
    res = logs(store, '{app="web"} | logfmt | level="warn" | line_format "{{.level | ToUpper}} took {{.took}}" '
                      '| keep app', limit=2)
    assert res == [({"app": "web"}, [(T0 + 6 * S, "WARN took 300ms"), (T0 + 12 * S, "WARN took 600ms")])]


def test_limit_and_direction_apply_after_the_pipeline(store: EmbeddedLogStore) -> None:
    res = logs(store, '{app="api"} | json | level="error" | keep app', limit=3, direction="backward")
    assert [t for t, _ in res[0][1]] == [T0 + 60 * S, T0 + 55 * S, T0 + 50 * S]
    res = logs(store, '{app="db"}', limit=2, direction="backward")
    assert [t for t, _ in res[0][1]] == [T0 + 60 * S, T0 + 50 * S]


def test_chunked_scan_resumes_across_equal_timestamps(store: EmbeddedLogStore, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries sharing a timestamp across chunk boundaries are neither lost nor repeated."""
    import clearsight.query.logql.evaluator as evaluator

    monkeypatch.setattr(evaluator, "CHUNK_ENTRIES", 3)
    st = EmbeddedLogStore(tmp_path)
    try:
        b = LogBatchBuilder()
        s = b.stream(make_labels({"app": "dup"}))
        for i in range(20):
            b.add(s, T0 + (i // 7) * S, f"line {i}")  # 7 entries per timestamp
        st.append(TENANT, b.build()).result()
        for direction in ("forward", "backward"):
            res = logs(st, '{app="dup"} | line_format "{{ __line__ }}"', limit=100, direction=direction)
            lines = [line for _, line in res[0][1]]
            assert sorted(lines) == sorted(f"line {i}" for i in range(20)), direction
        assert instant(st, 'count_over_time({app="dup"} | logfmt [1m])', T0 + 10 * S) == {_l(app="dup"): 20}
    finally:
        st.close()


def test_read_limits(store: EmbeddedLogStore) -> None:
    tight = LogQLLimits(max_lines=50)
    with pytest.raises(QueryLimitExceeded, match=r"logs\.max_query_lines"):
        logs(store, '{app="api"} | json | latency_ms < 0', limits=tight)  # no store-side prefilter for it
    e = parse_expr('count_over_time({app="api"}[1m])')
    assert isinstance(e, MetricExpr)
    ev = LogQLEvaluator(store, TENANT, tight, QueryBudget(10**8, time.monotonic() + 30))
    with pytest.raises(QueryLimitExceeded, match=r"logs\.max_query_lines"):
        ev.metric(e, np.array([T], dtype=np.int64))
    ev = LogQLEvaluator(store, TENANT, LogQLLimits(max_bytes=100), QueryBudget(10**8, time.monotonic() + 30))
    with pytest.raises(QueryLimitExceeded, match=r"logs\.max_query_bytes"):
        ev.logs(parse_expr('{app="api"} | json'), T0, T, 100, "forward")  # type: ignore[arg-type]
    ev = LogQLEvaluator(store, TENANT, LogQLLimits(max_series=5), QueryBudget(10**8, time.monotonic() + 30))
    with pytest.raises(QueryLimitExceeded, match="maximum of series"):
        ev.metric(parse_expr('count_over_time({app="api"} | json [1m])'),  # type: ignore[arg-type]
                  np.array([T], dtype=np.int64))
    # sum by (...) of a count groups while reading: 60 per-line label sets never become 60 series
    v = ev.metric(parse_expr('sum by (level) (count_over_time({app="api"} | json [1m]))'),  # type: ignore[arg-type]
                  np.array([T], dtype=np.int64))
    assert isinstance(v, VectorSteps) and sorted(v.values[:, 0].tolist()) == [12.0, 48.0]


def test_deadline_and_cancel_stop_the_scan(store: EmbeddedLogStore) -> None:
    import threading

    from clearsight.query.budget import QueryCanceled
    from clearsight.query.promql.values import QueryTimeout

    ev = LogQLEvaluator(store, TENANT, LogQLLimits(), QueryBudget(10**8, time.monotonic() - 1))
    with pytest.raises(QueryTimeout):
        ev.logs(parse_expr('{app="api"} | json'), T0, T, 100, "forward")  # type: ignore[arg-type]
    cancel = threading.Event()
    cancel.set()
    ev = LogQLEvaluator(store, TENANT, LogQLLimits(), QueryBudget(10**8, time.monotonic() + 30, cancel))
    with pytest.raises(QueryCanceled):
        ev.metric(parse_expr('count_over_time({app="api"}[1m])'),  # type: ignore[arg-type]
                  np.array([T], dtype=np.int64))


def test_grafana_log_volume_query_reads_no_bodies(store: EmbeddedLogStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """`| drop __error__` with no parser before it is a no-op: the count runs store-side, reading
    stream, timestamp and size only (``select``, which returns bodies, is never called)."""
    e = parse_expr('sum by (app) (count_over_time({env="prod"} | drop __error__, __error_details__ [1m]))')
    assert isinstance(e, MetricExpr)

    def no_bodies(*_a: object, **_k: object) -> None:
        raise AssertionError("bodies were read")

    monkeypatch.setattr(store, "select", no_bodies)
    v = _ev(store).metric(e, np.array([T], dtype=np.int64))
    assert isinstance(v, VectorSteps)
    assert dict(zip([dict(lbl)["app"] for lbl in v.labels], v.values[:, 0].tolist(), strict=True)) == \
        {"api": 60.0, "web": 30.0}
    with pytest.raises(AssertionError, match="bodies were read"):  # a parser needs the bodies
        _ev(store).metric(parse_expr('count_over_time({env="prod"} | logfmt | drop __error__ [1m])'),  # type: ignore[arg-type]
                          np.array([T], dtype=np.int64))
