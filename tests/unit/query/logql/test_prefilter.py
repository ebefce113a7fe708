"""The store-side prefilter of ``| json`` pipelines only narrows: every query answers exactly what
it answers with the prefilter switched off, over bodies chosen to hit its edges (non-objects,
nulls, nested objects, numbers as strings, booleans, metadata and stream labels that shadow a
field), and it does skip lines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import clearsight.query.logql.evaluator as evaluator
from clearsight.model.labels import make_labels
from clearsight.model.logs import LogBatchBuilder
from clearsight.query.budget import QueryBudget
from clearsight.query.logql.ast import LogSelector, MetricExpr
from clearsight.query.logql.evaluator import LogQLEvaluator, LogQLLimits
from clearsight.query.logql.parser import parse_expr
from clearsight.query.logql.prefilter import json_prefilter
from clearsight.query.promql.values import QueryError, VectorSteps
from clearsight.store.embedded.logs_store import EmbeddedLogStore
from clearsight.store.logs_interface import BodyPrefilter, JsonFieldTest

S = 1_000_000_000
T0 = 1_764_000_000 * S
BODIES = ['{"status": 500, "lvl": "error"}', '{"status": 200, "lvl": "info"}', '{"status": "503", "lvl": "e\\nrr"}',
          '{"status": "abc"}', '{"status": null, "lvl": null}', '{"status": {"code": 500}}', '{"status": true}',
          '{"status": 404, "lvl": 7}', '{"other": 1}', "not json at all", "[1, 2, 3]", '{"status": 1e3}',
          '{"status": -5, "lvl": ""}', '{"status": 501, "app": "shadowed", "lvl": "warn"}']


# every case runs on rows in the day's head and on rows sealed into blocks (seal_rows=1)
@pytest.fixture(scope="module", params=[100_000, 1], ids=["head", "sealed"])
def store(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[EmbeddedLogStore]:
    st = EmbeddedLogStore(Path(tmp_path_factory.mktemp("prefilter")), seal_rows=request.param)
    b = LogBatchBuilder()
    plain = b.stream(make_labels({"app": "p"}))
    shadow = b.stream(make_labels({"app": "s", "status": "999"}))  # a stream label named like the field
    for i, body in enumerate(BODIES):
        meta = [("status", "777")] if i % 5 == 1 else []  # structured metadata named like the field
        b.add(plain, T0 + (i + 1) * S, body, attributes=meta)
        b.add(shadow, T0 + (i + 1) * S, body)
    st.append("pf", b.build()).result()
    st.sync()
    assert request.param != 1 or not any(st._head.values())  # sealed: every row is in a block
    try:
        yield st
    finally:
        st.close()


QUERIES = ['{app=~"p|s"} | json | status >= 500', '{app=~"p|s"} | json | __error__="" | status >= 500',
           '{app="p"} | json | status == 500 or lvl="info"', '{app="p"} | json | lvl!="error" | status < 300',
           '{app="p"} | json | lvl=~"e.r*" and status > 100', '{app="p"} | json | lvl!~"w.*" | __error__=""',
           '{app="p"} | json | status != 404', '{app="p"} | json | lvl=""', '{app="s"} | json | status > 100',
           '{app="p"} | json | status > 1 | line_format "{{.lvl}}" |= "e"']


def _run(store: EmbeddedLogStore, q: str) -> tuple[object, object, int]:
    e = parse_expr(q)
    ev = LogQLEvaluator(store, "pf", LogQLLimits(), QueryBudget(10**8, time.monotonic() + 30))
    assert isinstance(e, LogSelector)
    logs = sorted((r.labels, tuple(r.entries)) for r in ev.logs(e, T0, T0 + 60 * S, 1000, "forward"))
    m = parse_expr(f"sum by (app) (count_over_time({q} [1m]))")
    assert isinstance(m, MetricExpr)
    try:
        v = LogQLEvaluator(store, "pf", LogQLLimits(), QueryBudget(10**8, time.monotonic() + 30)).metric(
            m, np.array([T0 + 60 * S], dtype=np.int64))
        assert isinstance(v, VectorSteps)
        metric: object = sorted(zip(v.labels, v.values[:, 0].tolist(), strict=True))
    except QueryError as err:  # pipeline errors must be the same too
        metric = str(err).split(" for series")[0]
    return logs, metric, ev.stats.lines_processed


@pytest.mark.parametrize("query", QUERIES)
def test_prefilter_changes_no_result(store: EmbeddedLogStore, query: str, monkeypatch: pytest.MonkeyPatch) -> None:
    logs, metric, read_with = _run(store, query)
    monkeypatch.setattr(evaluator, "json_prefilter", lambda *_a: None)
    logs_off, metric_off, read_without = _run(store, query)
    assert (logs, metric) == (logs_off, metric_off)
    assert read_with <= read_without


def test_prefilter_skips_lines(store: EmbeddedLogStore) -> None:
    *_, read = _run(store, '{app="p"} | json | __error__="" | status >= 500')
    # read: JSON objects whose status is a number >= 500 (500, "503", 1e3, 501), is not a number
    # ("abc", {"code": 500}, true) or is shadowed by metadata (the 200 line): 8 of 14
    assert read == 8


def test_prefilter_shapes() -> None:
    def pf(q: str, streams: frozenset[str] = frozenset()) -> BodyPrefilter | None:
        e = parse_expr(q)
        assert isinstance(e, LogSelector)
        return json_prefilter(e.stages, streams)

    assert pf('{a="b"} | logfmt | x > 1') is None
    assert pf('{a="b"} | json x="y" | x > 1') is None
    assert pf('{a="b"} | json | latency_ms > 1') is None  # "_": nested objects may produce it
    assert pf('{a="b"} | json | took > 1s') is None  # durations stay in Python
    assert pf('{a="b"} | json | x > 1', frozenset({"x"})) is None  # a stream label shadows the field
    assert pf('{a="b"} | json | __error__=""') == BodyPrefilter(True, ())
    assert pf('{a="b"} | json | x > 1 or y = "z" | __error__=""') == BodyPrefilter(True, (
        (JsonFieldTest("x", ">", "1.0", True),), (JsonFieldTest("y", "=", "z", False),)))
    assert pf('{a="b"} | json | x > 1 | line_format "{{.x}}" | y = "z"') == BodyPrefilter(False, (
        (JsonFieldTest("x", ">", "1.0", True),),))
