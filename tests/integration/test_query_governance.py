"""Query governance wired by ``server.build`` over the real store (in process): the issue's subquery
refused with the limit named, timeouts as 503 'timeout', queries on the governor's pool, and the
admission metrics in ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import Built, build

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
H = 3_600_000
END = (int(time.time()) // 60) * 60_000 - 60_000  # a whole minute, a minute ago
SERIES = 40


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Built]]:
    tmp: Path = tmp_path_factory.mktemp("governance")
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp / "data"), "query.max_concurrency": 1,
                                         "query.max_samples": 2_000_000})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            for k0 in range(0, 13 * 60, 120):  # 13 h at 15 s, in time order, 2 h per request
                ts = [END - 13 * H + 15_000 * k for k in range(k0 * 4, min(k0 + 120, 13 * 60) * 4)]
                series = [TimeSeries([("__name__", "http_requests_total"), ("i", str(i))],
                                     [(t, float(t // 15_000)) for t in ts]) for i in range(SERIES)]
                r = c.post("/api/v1/write", content=encode_snappy(WriteRequest(series)), headers=RW)
                assert r.status_code == 204, r.text
            yield c, built
    finally:
        built.store.close()


def test_issue_subquery_is_refused_with_the_limit_named(served: tuple[TestClient, Built]) -> None:
    c, built = served
    gov = built.services.query_governor
    assert gov is not None
    before = gov.stats().admitted
    r = c.get("/api/v1/query_range", params={
        "query": "sum(max_over_time(rate(http_requests_total[5m])[1h:1s]))",
        "start": (END - 12 * H) / 1000, "end": END / 1000, "step": "60"})
    assert r.status_code == 422
    body = r.json()
    assert body["errorType"] == "execution"
    assert body["error"].startswith("query processing would load too many samples into memory in query execution")
    assert "query.max_samples=2,000,000" in body["error"] and "subquery of 46,800 steps" in body["error"]
    assert gov.stats().admitted == before + 1  # it ran under admission control
    # The same shape at a size that fits runs.
    r = c.get("/api/v1/query_range", params={
        "query": "sum(max_over_time(rate(http_requests_total[5m])[10m:1m]))",
        "start": (END - 2 * H) / 1000, "end": END / 1000, "step": "60"})
    assert r.status_code == 200 and len(r.json()["data"]["result"]) == 1


def test_an_expired_deadline_is_503_timeout(served: tuple[TestClient, Built]) -> None:
    c, _ = served
    r = c.get("/api/v1/query", params={"query": "sum(rate(http_requests_total[5m]))", "time": END / 1000,
                                       "timeout": "0.0001"})
    assert r.status_code == 503
    assert r.json() == {"status": "error", "errorType": "timeout",
                        "error": "query timed out in expression evaluation"}


def test_queries_run_on_the_query_pool_and_metrics_show_admission(served: tuple[TestClient, Built]) -> None:
    c, built = served
    gov = built.services.query_governor
    assert gov is not None and gov.max_concurrency == 1
    threads = set()
    orig = built.store.querier

    def spy(tenant: str) -> object:
        import threading

        threads.add(threading.current_thread().name)
        return orig(tenant)

    built.store.querier = spy  # type: ignore[method-assign]
    try:
        assert c.get("/api/v1/query", params={"query": "count(http_requests_total)", "time": END / 1000}).json()[
            "data"]["result"][0]["value"][1] == str(SERIES)
    finally:
        built.store.querier = orig  # type: ignore[method-assign]
    assert len(threads) == 1 and next(iter(threads)).startswith("clearsight-query")
    text = c.get("/metrics").text
    assert "clearsight_query_max_concurrency 1.0" in text
    assert 'clearsight_query_refused_total{reason="queue_full"} 0.0' in text
    admitted = [line for line in text.splitlines() if line.startswith("clearsight_query_admitted_total ")]
    assert admitted and float(admitted[0].split()[1]) >= 1
