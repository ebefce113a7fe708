"""api/prometheus_query.py: a query that proved cheap (its last evaluations of the same shape took
at most INLINE_MAX_CPU_S of thread CPU) and asks about recent data is evaluated on the event loop;
everything else (a first run, another range shape, old data, an expensive query) on the query pool.
Both paths give the same answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from clearsight.api import prometheus_query
from clearsight.api.prometheus_query import make_query_handlers
from clearsight.config import QueryConfig
from clearsight.model.matchers import Matcher
from clearsight.model.samples import SeriesData
from clearsight.query.governor import QueryGovernor, make_query_executor
from clearsight.store.memory import MemorySeriesSelector

H = 3_600_000
POOL = "clearsight-query"


class RecordingStore:
    """A MetricsStore's querier over in-memory series ending now; records the thread of each read."""

    def __init__(self, now_ms: int) -> None:
        self.mem = MemorySeriesSelector()
        ts = np.arange(now_ms - 2 * H, now_ms + 1, 15_000, dtype=np.int64)
        for i in range(3):
            self.mem.add((("__name__", "a"), ("i", str(i))), ts, np.arange(ts.size, dtype=np.float64) + i)
        self.threads: list[str] = []

    def querier(self, tenant: str) -> Any:
        store = self

        class Q:
            def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
                store.threads.append(threading.current_thread().name)
                return store.mem.select(matchers, start_ms, end_ms)

        return Q()


def _client(store: RecordingStore) -> tuple[TestClient, QueryGovernor]:
    gov = QueryGovernor(make_query_executor(2), 2, 10, 5.0)
    tenant: Callable[[Request], str] = lambda r: "default"  # noqa: E731
    q = make_query_handlers(store, QueryConfig(), tenant, gov)  # type: ignore[arg-type]
    app = Starlette(routes=[Route("/api/v1/query", q["query"]), Route("/api/v1/query_range", q["query_range"])])
    return TestClient(app), gov


def _last_thread(store: RecordingStore) -> str:
    return store.threads[-1]


def test_a_cheap_instant_query_runs_on_the_pool_first_then_inline() -> None:
    now = int(time.time() * 1000)
    store = RecordingStore(now)
    client, gov = _client(store)
    params = {"query": "sum(a)", "time": f"{now / 1000:.3f}"}
    first = client.get("/api/v1/query", params=params)
    assert first.status_code == 200
    assert _last_thread(store).startswith(POOL)
    second = client.get("/api/v1/query", params=params)
    assert second.status_code == 200
    assert not _last_thread(store).startswith(POOL)  # on the event loop's thread
    assert second.json() == first.json()
    assert gov.admitted == 1  # the inline run took no pool slot


def test_old_data_and_new_range_shapes_go_to_the_pool() -> None:
    now = int(time.time() * 1000)
    store = RecordingStore(now)
    client, _ = _client(store)
    old = {"query": "a", "time": f"{(now - H) / 1000:.3f}"}  # an hour ago: older than INLINE_RECENT_MS
    for _ in range(3):
        assert client.get("/api/v1/query", params=old).status_code == 200
        assert _last_thread(store).startswith(POOL)
    hour = {"query": "a", "start": f"{(now - H) / 1000:.3f}", "end": f"{now / 1000:.3f}", "step": "15"}
    answers = []
    for _ in range(2):
        r = client.get("/api/v1/query_range", params=hour)
        assert r.status_code == 200
        answers.append((r.json(), _last_thread(store)))
    assert answers[0][1].startswith(POOL) and not answers[1][1].startswith(POOL)
    assert answers[0][0] == answers[1][0]
    two_hours = {**hour, "start": f"{(now - 2 * H) / 1000:.3f}"}  # zoomed out: another shape
    assert client.get("/api/v1/query_range", params=two_hours).status_code == 200
    assert _last_thread(store).startswith(POOL)


def test_an_expensive_query_never_runs_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus_query, "INLINE_MAX_CPU_S", 0.0)
    now = int(time.time() * 1000)
    store = RecordingStore(now)
    client, gov = _client(store)
    params = {"query": "sum(a)", "time": f"{now / 1000:.3f}"}
    for _ in range(3):
        assert client.get("/api/v1/query", params=params).status_code == 200
        assert _last_thread(store).startswith(POOL)
    assert gov.admitted == 3


def test_inline_queries_keep_the_error_envelope() -> None:
    now = int(time.time() * 1000)
    store = RecordingStore(now)
    client, _ = _client(store)
    params = {"query": 'label_replace(a, "i", "x", "", "")', "time": f"{now / 1000:.3f}"}
    for _ in range(2):  # the second run is inline; both fail the same way
        r = client.get("/api/v1/query", params=params)
        assert r.status_code == 422
        assert r.json()["errorType"] == "execution"
        assert "same labelset" in r.json()["error"]
