"""Prometheus query API over the real store: shapes, errors, limits (in process)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import build

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
T = (int(time.time()) // 60) * 60_000 - 3_600_000  # a whole minute, an hour ago


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("query")
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp / "data")})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            series = [
                TimeSeries([("__name__", "reqs_total"), ("job", "api"), ("i", str(i))],
                           [(T + 60_000 * k, 10.0 * k * (i + 1)) for k in range(11)])
                for i in range(3)
            ]
            r = c.post("/api/v1/write", content=encode_snappy(WriteRequest(series)), headers=RW)
            assert r.status_code == 204
            yield c
    finally:
        built.store.close()


def test_instant_vector(client: TestClient) -> None:
    r = client.get("/api/v1/query", params={"query": "sum by (job) (rate(reqs_total[5m]))", "time": T / 1000 + 600})
    assert r.status_code == 200
    body = r.json()
    assert body["data"]["resultType"] == "vector"
    [item] = body["data"]["result"]
    assert item["metric"] == {"job": "api"}
    assert item["value"][0] == T / 1000 + 600
    # 10, 20, 30 per minute -> 1/6 + 2/6 + 3/6 per second
    assert float(item["value"][1]) == pytest.approx(1.0)


def test_range_matrix_and_stats(client: TestClient) -> None:
    r = client.post("/api/v1/query_range", data={"query": 'reqs_total{i="0"}', "start": T / 1000,
                                                 "end": T / 1000 + 120, "step": "1m", "stats": "all"})
    body = r.json()
    assert body["data"]["resultType"] == "matrix"
    [item] = body["data"]["result"]
    assert item["values"] == [[T / 1000, "0"], [T / 1000 + 60, "10"], [T / 1000 + 120, "20"]]
    assert body["data"]["stats"]["samples"]["totalQueryableSamples"] > 0


def test_scalar_string_and_special_floats(client: TestClient) -> None:
    assert client.get("/api/v1/query", params={"query": "1/0", "time": 10}).json()["data"] == {
        "resultType": "scalar", "result": [10, "+Inf"]}
    assert client.get("/api/v1/query", params={"query": "0/0", "time": 10}).json()["data"]["result"][1] == "NaN"
    assert client.get("/api/v1/query", params={"query": '"hello"', "time": 1.5}).json()["data"] == {
        "resultType": "string", "result": [1.5, "hello"]}


def test_limit_truncates_with_warning(client: TestClient) -> None:
    body = client.get("/api/v1/query", params={"query": "reqs_total", "time": T / 1000 + 600, "limit": 2}).json()
    assert len(body["data"]["result"]) == 2
    assert body["warnings"] == ["results truncated due to limit of 2"]


@pytest.mark.parametrize(
    ("path", "params", "status", "etype", "fragment"),
    [
        ("/api/v1/query", {"query": "sum(("}, 400, "bad_data", "parse error"),
        ("/api/v1/query", {"query": ""}, 400, "bad_data", "query must not be empty"),
        ("/api/v1/query", {"query": "up", "time": "yesterday"}, 400, "bad_data", 'invalid parameter "time"'),
        ("/api/v1/query_range", {"query": "up", "start": 0, "end": 100000, "step": 1}, 400, "bad_data",
         "11,000 points"),
        ("/api/v1/query_range", {"query": "up", "start": 0, "end": 10, "step": 0}, 400, "bad_data", "step"),
        ("/api/v1/query_range", {"query": "up", "start": 10, "end": 0, "step": 1}, 400, "bad_data", "end"),
        ("/api/v1/query_range", {"query": "up", "end": 0, "step": 1}, 400, "bad_data", '"start"'),
        ("/api/v1/query_range", {"query": "up[5m]", "start": 0, "end": 10, "step": 1}, 400, "bad_data",
         "range vector"),
        ("/api/v1/query", {"query": "label_replace(reqs_total, 'x', '', 'i', '(')"}, 422, "execution",
         "invalid regular expression"),
    ],
)
def test_errors(client: TestClient, path: str, params: dict[str, object], status: int, etype: str,
                fragment: str) -> None:
    r = client.get(path, params=params)
    body = r.json()
    assert (r.status_code, body["status"], body["errorType"]) == (status, "error", etype), body
    assert fragment in body["error"]


def test_execution_error_is_422(client: TestClient) -> None:
    # Both sides have three series per job: one-to-one matching on(job) is ambiguous.
    r = client.get("/api/v1/query", params={"query": "reqs_total + on(job) reqs_total",
                                            "time": T / 1000 + 600})
    body = r.json()
    assert r.status_code == 422 and body["errorType"] == "execution", body
    assert "many-to-many matching not allowed" in body["error"]


def test_format_query(client: TestClient) -> None:
    body = client.get("/api/v1/format_query", params={"query": "sum(rate(x[5m])) by (a)"}).json()
    assert body == {"status": "success", "data": "sum by (a) (rate(x[5m]))"}


def test_catalog_lists_metrics_labels_values(client: TestClient) -> None:
    body = client.get("/api/v1/catalog").json()
    entry = body["data"]["reqs_total"]
    assert entry["series"] == 3
    assert entry["labels"]["i"] == {"values": ["0", "1", "2"], "count": 3, "truncated": False}
    assert entry["labels"]["job"]["values"] == ["api"]
    small = client.get("/api/v1/catalog", params={"values_limit": 2}).json()["data"]["reqs_total"]["labels"]["i"]
    assert small == {"values": ["0", "1"], "count": 3, "truncated": True}


def test_latest_value_per_series(client: TestClient) -> None:
    body = client.get("/api/v1/latest", params={"match[]": "reqs_total", "time": T / 1000 + 3600}).json()
    assert body["data"] == []  # nothing within the 5m lookback
    body = client.get("/api/v1/latest", params={"match[]": 'reqs_total{i="2"}', "time": T / 1000 + 630}).json()
    assert body["data"] == [{"metric": {"__name__": "reqs_total", "i": "2", "job": "api"},
                             "value": [T / 1000 + 600, "300"]}]
    r = client.get("/api/v1/latest")
    assert r.status_code == 400 and r.json()["error"] == "no match[] parameter provided"


def test_parse_query_returns_the_tree(client: TestClient) -> None:
    body = client.get("/api/v1/parse_query", params={"query": "sum(rate(x[5m]))"}).json()
    assert body["status"] == "success"
    assert body["data"]["type"] == "aggregation" and body["data"]["op"] == "sum"
    bad = client.get("/api/v1/parse_query", params={"query": "sum("})
    assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"
