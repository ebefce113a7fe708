"""``stats`` on /api/v1/query and query_range: Prometheus' six timings and its sample counts
(totalQueryableSamples: one per series found per step for a vector selector, the samples of each
window for a range selector; none for pure numbers)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.api.prometheus_query import TIMING_KEYS
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import build

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}
T0 = (int(time.time() * 1000) // 15_000) * 15_000 - 1_200_000  # ms; samples every 15 s for 10 minutes


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            series = [TimeSeries([("__name__", "node_load1"), ("cpu", str(i))],
                                 [(T0 + 15_000 * j, float(j)) for j in range(41)]) for i in range(2)]
            r = c.post("/api/v1/write", content=encode_snappy(WriteRequest(series, [])), headers=RW_HEADERS)
            assert r.status_code == 204, r.text
            yield c
    finally:
        built.store.close()


def _stats(client: TestClient, path: str, **params: str) -> dict[str, object]:
    body = client.get(path, params={**params, "stats": "all"}).json()
    assert body["status"] == "success", body
    stats: dict[str, object] = body["data"]["stats"]
    return stats


def test_stats_shape_is_prometheus(client: TestClient) -> None:
    st = _stats(client, "/api/v1/query", query="node_load1", time=str(T0 / 1000 + 300))
    assert set(st) == {"timings", "samples"}
    timings = st["timings"]
    assert isinstance(timings, dict) and tuple(timings) == TIMING_KEYS
    assert all(isinstance(v, int | float) and v >= 0 for v in timings.values())
    assert timings["execTotalTime"] >= timings["evalTotalTime"]
    samples = st["samples"]
    assert isinstance(samples, dict) and set(samples) == {"totalQueryableSamples", "peakSamples"}
    assert "stats" not in client.get("/api/v1/query", params={"query": "1"}).json()["data"]


def test_total_queryable_samples_counts_like_prometheus(client: TestClient) -> None:
    at = str(T0 / 1000 + 300)

    def total(path: str, **p: str) -> object:
        samples = _stats(client, path, **p)["samples"]
        assert isinstance(samples, dict)
        return samples["totalQueryableSamples"]

    assert total("/api/v1/query", query="node_load1", time=at) == 2  # one sample per series
    assert total("/api/v1/query", query='node_load1{cpu="0"}', time=at) == 1
    assert total("/api/v1/query", query="rate(node_load1[1m])", time=at) == 2 * 4  # 4 samples per window
    assert total("/api/v1/query", query="1+1", time=at) == 0
    rng = {"start": str(T0 / 1000 + 60), "end": str(T0 / 1000 + 120), "step": "30"}
    assert total("/api/v1/query_range", query="node_load1", **rng) == 2 * 3  # 2 series x 3 steps
    assert total("/api/v1/query_range", query="sum_over_time(node_load1[30s])", **rng) == 2 * 3 * 2
