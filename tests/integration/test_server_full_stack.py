"""The ``clearsight server`` process end to end: it scrapes a real node_exporter, takes OTLP from the
real OpenTelemetry SDK over HTTP (main port and the OTLP port) and gRPC, answers PromQL about all of
it, and exits cleanly on SIGTERM. A bad config stops it at start with the file, key and reason."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.support.peers import free_port, start_clearsight, start_node_exporter


def _export(exporter: MetricExporter, service: str) -> None:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": service}), metric_readers=[reader])
    counter = provider.get_meter("t").create_counter("jobs.done", unit="{job}")
    counter.add(3, {"kind": "a"})
    assert provider.force_flush(10_000)
    provider.shutdown()


def _query(url: str, q: str) -> list[dict[str, object]]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": q}, timeout=10).json()
    assert body["status"] == "success", body
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def _wait_for(url: str, q: str, n: int = 1, timeout: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        res = _query(url, q)
        if len(res) >= n or time.monotonic() > deadline:
            return res
        time.sleep(0.3)


def _cli(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "clearsight", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_server_scrapes_takes_otlp_and_answers_promql(tmp_path: Path) -> None:
    node = start_node_exporter(tmp_path / "node")
    otlp_http, otlp_grpc = free_port(), free_port()
    config = f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["{node.url.removeprefix('http://')}"]
"""
    cs = start_clearsight(tmp_path / "cs", config_yaml=config,
                          args=["--otlp-http-listen", f"127.0.0.1:{otlp_http}",
                                "--otlp-grpc-listen", f"127.0.0.1:{otlp_grpc}"])
    try:
        up = _wait_for(cs.url, 'up{job="node"}')
        assert [r["value"][1] for r in up] == ["1"]  # type: ignore[index]
        assert len(_wait_for(cs.url, '{job="node", __name__=~"node_cpu_seconds_total"}')) >= 1

        _export(HttpExporter(endpoint=f"{cs.url}/v1/metrics"), "via-main-port")
        _export(HttpExporter(endpoint=f"http://127.0.0.1:{otlp_http}/v1/metrics"), "via-otlp-port")
        _export(GrpcExporter(endpoint=f"127.0.0.1:{otlp_grpc}", insecure=True), "via-grpc")
        res = _wait_for(cs.url, "jobs_done_total", n=3)
        assert sorted(r["metric"]["job"] for r in res) == ["via-grpc", "via-main-port", "via-otlp-port"]  # type: ignore[index]
        assert {r["value"][1] for r in res} == {"3"}  # type: ignore[index]

        targets = httpx.get(f"{cs.url}/api/v1/targets", params={"state": "active"}, timeout=10).json()
        [target] = targets["data"]["activeTargets"]
        assert (target["health"], target["labels"]["job"], target["scrapePool"]) == ("up", "node", "node")

        metrics = httpx.get(f"{cs.url}/metrics", timeout=10).text
        assert 'clearsight_ingested_samples_total{protocol="otlp_grpc"}' in metrics

        # The CLI answers the same questions.
        table = _cli("query", 'up{job="node"}', "--url", cs.url)
        assert "vector (1 series)" in table and 'up{instance="127.0.0.1:' in table
        csv_out = _cli("query", "sum(jobs_done_total)", "--url", cs.url, "-o", "csv").splitlines()
        assert csv_out[0] == "time,value" and csv_out[1].endswith("Z,9")  # ISO-8601 UTC, no labels
        rng = _cli("query", 'up{job="node"}', "--range", "5s", "--step", "1s", "--url", cs.url, "-o", "json")
        assert '"resultType": "matrix"' in rng
        bad = subprocess.run([sys.executable, "-m", "clearsight", "query", "sum(", "--url", cs.url],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "bad_data" in bad.stderr and "parse error" in bad.stderr
    finally:
        node.stop()
        code = cs.stop()
    assert code == 0, cs.log()


def test_bad_config_fails_at_start_with_file_key_reason(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("scrape_configs:\n  - job_name: x\n    relabel_configs:\n      - action: explode\n")
    r = subprocess.run([sys.executable, "-m", "clearsight", "server", "--config", str(cfg),
                        "--data-dir", str(tmp_path / "d"), "--listen", f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert str(cfg) in r.stderr and "relabel_configs[0].action" in r.stderr and "explode" in r.stderr, r.stderr
