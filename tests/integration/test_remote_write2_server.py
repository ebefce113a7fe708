"""Remote-write 2.0 through the whole server (real store in a temp dir): written, queried, metadata kept,
a v1 and a v2 write of the same series land in the same series; bad labels are rejected whole."""

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
from tests.support.rw2_encode import HEADERS, Series2, encode_snappy_v2


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            yield c
    finally:
        built.store.close()


def test_v2_write_then_query(client: TestClient) -> None:
    t = int(time.time() * 1000) - 5000
    body = encode_snappy_v2([
        # labels deliberately unsorted on the wire
        Series2([("job", "api"), ("__name__", "rw2_requests_total")], [(t, 3.0)], metric_type="counter",
                help="Requests served.", unit="requests"),
    ])
    r = client.post("/api/v1/write", content=body, headers=HEADERS)
    assert r.status_code == 204, r.text
    assert r.headers["X-Prometheus-Remote-Write-Samples-Written"] == "1"
    v1 = encode_snappy(WriteRequest([TimeSeries([("__name__", "rw2_requests_total"), ("job", "api")],
                                                [(t + 1000, 4.0)])]))
    assert client.post("/api/v1/write", content=v1, headers={"Content-Type": "application/x-protobuf",
                                                              "Content-Encoding": "snappy"}).status_code == 204
    res = client.get("/api/v1/query", params={"query": "rw2_requests_total[1m]", "time": (t + 2000) / 1000})
    [series] = res.json()["data"]["result"]
    assert series["metric"] == {"__name__": "rw2_requests_total", "job": "api"}
    assert [v for _, v in series["values"]] == ["3", "4"]
    meta = client.get("/api/v1/metadata", params={"metric": "rw2_requests_total"}).json()["data"]
    assert meta["rw2_requests_total"][0]["type"] == "counter"
    assert meta["rw2_requests_total"][0]["help"] == "Requests served."


def test_v2_duplicate_label_rejected_whole(client: TestClient) -> None:
    t = int(time.time() * 1000)
    body = encode_snappy_v2([
        Series2([("__name__", "good2")], [(t, 1.0)]),
        Series2([("__name__", "bad2"), ("a", "1"), ("a", "2")], [(t, 1.0)]),
    ])
    r = client.post("/api/v1/write", content=body, headers=HEADERS)
    assert r.status_code == 400
    assert "duplicate" in r.text.lower()
    assert client.get("/api/v1/series", params={"match[]": "good2"}).json()["data"] == []
