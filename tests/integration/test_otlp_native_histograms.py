"""OTLP exponential histograms through a real server: stored as native histograms by default
(``server.otlp_exponential_histograms: native``) and answered by PromQL's histogram functions;
``classic`` keeps the old conversion to ``_bucket{le}`` series; a bad value stops the start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from clearsight.config import ConfigError, load_config
from tests.support.peers import start_clearsight


def _request(t_ns: int) -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    a = rm.resource.attributes.add(key="service.name")
    a.value.string_value = "svc"
    m = rm.scope_metrics.add().metrics.add(name="rpc.duration", unit="s")
    m.exponential_histogram.aggregation_temporality = 2  # cumulative
    for k, t in enumerate((t_ns - 60 * 10**9, t_ns)):
        p = m.exponential_histogram.data_points.add(
            time_unix_nano=t, scale=1, count=6 + 6 * k, sum=9.5 + 9.5 * k
        )
        p.positive.offset = 0  # (1, 1.41], (1.41, 2], (2, 2.83]
        p.positive.bucket_counts.extend([1 + k, 2 + 2 * k, 2 + 2 * k])
        p.zero_count = 1 + k
        p.zero_threshold = 0.001
    return req.SerializeToString()


def _query(url: str, q: str, at: float) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": q, "time": at}, timeout=30)
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["data"]["result"]
    return out


def _post(url: str, body: bytes) -> None:
    r = httpx.post(
        f"{url}/v1/metrics", content=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30
    )
    assert r.status_code == 200, r.text


def test_exponential_histograms_are_native_by_default_and_classic_on_request(tmp_path: Path) -> None:
    now_ns = time.time_ns()
    at = now_ns / 1e9
    cs = start_clearsight(tmp_path / "native")
    try:
        _post(cs.url, _request(now_ns))
        [got] = _query(cs.url, "rpc_duration_seconds", at)
        assert got["metric"] == {"__name__": "rpc_duration_seconds", "job": "svc"}
        assert got["histogram"][1] == {
            "count": "12",
            "sum": "19",
            "buckets": [
                [3, "-0.001", "0.001", "2"],
                [0, "1", "1.4142135623730951", "2"],
                [0, "1.4142135623730951", "2", "4"],
                [0, "2", "2.8284271247461903", "4"],
            ],
        }
        assert [
            float(r["value"][1]) for r in _query(cs.url, "histogram_count(rpc_duration_seconds)", at)
        ] == [12]
        assert [float(r["value"][1]) for r in _query(cs.url, "histogram_sum(rpc_duration_seconds)", at)] == [
            19
        ]
        [rate] = _query(cs.url, "histogram_count(rate(rpc_duration_seconds[5m]))", at)
        assert float(rate["value"][1]) > 0
        [q] = _query(cs.url, "histogram_quantile(0.5, rpc_duration_seconds)", at)
        assert 1.414 < float(q["value"][1]) <= 2  # the 6th of 12 observations is in (1.41, 2]
        assert _query(cs.url, "rpc_duration_seconds_bucket", at) == []
    finally:
        cs.stop()
    cs = start_clearsight(
        tmp_path / "classic", config_yaml="server:\n  otlp_exponential_histograms: classic\n"
    )
    try:
        _post(cs.url, _request(now_ns))
        les = {
            r["metric"]["le"]: float(r["value"][1]) for r in _query(cs.url, "rpc_duration_seconds_bucket", at)
        }
        assert les["+Inf"] == 12 and les["2"] == 8  # classic buckets merged to scale 0: le at powers of two
        assert _query(cs.url, "histogram_count(rpc_duration_seconds)", at) == []
    finally:
        cs.stop()


def test_a_bad_mode_is_a_config_error(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("server:\n  otlp_exponential_histograms: sparse\n")
    with pytest.raises(
        ConfigError, match=r"server\.otlp_exponential_histograms: must be native, classic or drop"
    ):
        load_config(f, env={})
