"""Remote-write samples older than the out-of-order window: 400 naming the count (Prometheus' receiver
answers 400 for out-of-bounds samples so the sender counts the loss and does not retry); the request's
other samples are committed."""

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

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data"),
                                         "storage.out_of_order_window": "10m"})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            yield c
    finally:
        built.store.close()


def _post(client: TestClient, series: list[TimeSeries]) -> tuple[int, str]:
    r = client.post("/api/v1/write", content=encode_snappy(WriteRequest(series, [])), headers=RW_HEADERS)
    return r.status_code, r.text


def test_too_old_samples_answer_400_with_count_and_the_rest_is_written(client: TestClient) -> None:
    now = int(time.time() * 1000)
    labels = [("__name__", "temp"), ("room", "a")]
    assert _post(client, [TimeSeries(labels, [(now, 1.0)])])[0] == 204
    # Two samples far older than the window (newest - 10m) and one inside it, plus a new series.
    old = [(now - 3_600_000, 2.0), (now - 3_000_000, 3.0), (now - 60_000, 4.0)]
    status, text = _post(client, [TimeSeries(labels, old), TimeSeries([("__name__", "other")], [(now, 5.0)])])
    assert status == 400
    assert "out of bounds: 2 sample(s)" in text and "other 2 sample(s) were written" in text
    body = client.get("/api/v1/query", params={"query": "count_over_time(temp[2h])", "time": now / 1000}).json()
    assert body["data"]["result"][0]["value"][1] == "2"  # now and now-1m; the two old ones dropped
    body = client.get("/api/v1/query", params={"query": "other", "time": now / 1000}).json()
    assert body["data"]["result"][0]["value"][1] == "5"
    metrics = client.get("/metrics").text
    assert 'clearsight_write_requests_total{code="400",protocol="remote_write"} 1.0' in metrics


def test_a_request_without_old_samples_still_answers_204(client: TestClient) -> None:
    now = int(time.time() * 1000)
    assert _post(client, [TimeSeries([("__name__", "x")], [(now - 1000, 1.0), (now, 2.0)])])[0] == 204
