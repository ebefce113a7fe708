"""Loki's detected_level (query/logql/levels.py): computed for the entries a query reads, only when
the query names it; from level labels/metadata, the OTLP severity, a JSON/logfmt level field, a
level word in the line, else "unknown". Results worked out by hand over a small fixed data set."""

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
from clearsight.query.logql.levels import detect_level, mentions_detected_level
from clearsight.query.logql.parser import parse_expr
from clearsight.query.promql.values import VectorSteps
from clearsight.store.embedded.logs_store import EmbeddedLogStore

S = 1_000_000_000
T0 = 1_764_000_000 * S
TENANT = "lv"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedLogStore]:
    b = LogBatchBuilder()
    labelled = b.stream(make_labels({"app": "a", "level": "WARNING"}))
    otlp = b.stream(make_labels({"app": "o"}))
    text = b.stream(make_labels({"app": "t"}))
    for i in range(1, 5):  # 4 lines labelled WARNING -> warn
        b.add(labelled, T0 + i * S, f"disk {i}")
    b.add(otlp, T0 + 5 * S, "payment failed", 17, "ERROR")  # severity number 17 -> error
    b.add(otlp, T0 + 6 * S, "started", 0, "notice")  # severity text only -> info
    b.add(otlp, T0 + 7 * S, "metadata says", 0, "", [("severity", "crit")])  # metadata -> critical
    b.add(text, T0 + 8 * S, json.dumps({"level": "debug", "msg": "cache warm"}))  # JSON field -> debug
    b.add(text, T0 + 9 * S, "ts=1 lvl=err msg=boom")  # logfmt -> error
    b.add(text, T0 + 10 * S, "kernel PANIC at the disco")  # a level word -> fatal
    b.add(text, T0 + 11 * S, "all quiet")  # nothing -> unknown
    st = EmbeddedLogStore(Path(tmp_path_factory.mktemp("levels")))
    st.append(TENANT, b.build()).result()
    try:
        yield st
    finally:
        st.close()


def _ev(store: EmbeddedLogStore) -> LogQLEvaluator:
    return LogQLEvaluator(store, TENANT, LogQLLimits(), QueryBudget(10**8, time.monotonic() + 30))


def _lines(store: EmbeddedLogStore, q: str) -> list[tuple[dict[str, str], str]]:
    e = parse_expr(q)
    assert isinstance(e, LogSelector)
    res = _ev(store).logs(e, T0, T0 + 60 * S, 100, "forward")
    return sorted(((dict(r.labels), line) for r in res for _t, line in r.entries), key=lambda x: x[1])


def test_count_by_detected_level(store: EmbeddedLogStore) -> None:
    e = parse_expr('sum by (detected_level) (count_over_time({app=~".+"}[1m]))')
    assert isinstance(e, MetricExpr)
    v = _ev(store).metric(e, np.array([T0 + 60 * S], dtype=np.int64))
    assert isinstance(v, VectorSteps)
    got = {dict(lbl)["detected_level"]: float(v.values[i, 0]) for i, lbl in enumerate(v.labels)}
    assert got == {"warn": 4, "error": 2, "info": 1, "critical": 1, "debug": 1, "fatal": 1, "unknown": 1}


def test_filter_on_detected_level_and_the_label_in_results(store: EmbeddedLogStore) -> None:
    got = _lines(store, '{app=~"o|t"} | detected_level="error"')
    assert [line for _, line in got] == ["payment failed", "ts=1 lvl=err msg=boom"]
    assert all(labels["detected_level"] == "error" for labels, _ in got)
    assert [line for _, line in _lines(store, '{app="t"} | detected_level=~"debug|unknown"')] == [
        "all quiet",
        json.dumps({"level": "debug", "msg": "cache warm"}),
    ]


def test_queries_not_naming_it_are_unchanged(store: EmbeddedLogStore) -> None:
    assert all("detected_level" not in labels for labels, _ in _lines(store, '{app=~".+"}'))
    assert all("detected_level" not in labels for labels, _ in _lines(store, '{app=~".+"} | logfmt'))
    assert not mentions_detected_level(parse_expr('sum by (level) (count_over_time({app="a"}[1m]))'))
    assert mentions_detected_level(parse_expr('count_over_time({app="a"} | detected_level="warn" [1m])'))


def test_detect_level_order() -> None:
    assert detect_level({"level": "Error"}, 9, "info", "warn") == "error"  # a label first
    assert (
        detect_level({"LVL": "nonsense", "severity": "dbg"}, 0, "", "") == "debug"
    )  # an unknown word is skipped
    assert detect_level({}, 21, "", "") == "fatal" and detect_level({}, 3, "", "") == "trace"
    assert detect_level({}, 0, "WARNING", "error") == "warn"  # severity text before the line
    assert detect_level({}, 0, "", '{"severity":"INFO","msg":"error budget"}') == "info"  # field before words
    assert detect_level({}, 0, "", "terror is not a level, but ERR is") == "error"  # whole words only
    assert detect_level({}, 0, "", "") == "unknown"
