"""The real OpenTelemetry Python SDK exporting to our OTLP receivers.

OTLP/HTTP goes to ``make_otlp_metrics_route`` served by a real uvicorn server on 127.0.0.1 (free
port, own thread); OTLP/gRPC goes to ``start_otlp_grpc_server``. The ``ingest`` function records
batches in memory; the tests assert the exact Prometheus series, values and metadata produced.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.version import __version__ as sdk_version
from starlette.applications import Starlette
from starlette.requests import Request

from clearsight.api.otlp_grpc import start_otlp_grpc_server
from clearsight.api.otlp_http import ExportOutcome, make_otlp_metrics_route
from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.errors import IngestError, Overloaded
from clearsight.pipeline.ingestor import MetricsIngestor
from clearsight.pipeline.limits import WriteLimits
from clearsight.pipeline.validate import make_validator
from clearsight.store.embedded.duckdb_store import EmbeddedMetricsStore
from clearsight.store.interface import AppendResult
from tests.support.peers import start_clearsight

LIMITS = WriteLimits()


@dataclass
class Recorded:
    batches: list[tuple[str, SampleBatch]] = field(default_factory=list)
    outcomes: list[ExportOutcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fail_next: list[IngestError] = field(default_factory=list)  # raised by the next calls, in order

    def record(self, tenant: str, batch: SampleBatch) -> AppendResult:
        with self.lock:
            if self.fail_next:
                raise self.fail_next.pop(0)
            self.batches.append((tenant, batch))
        return AppendResult(samples_written=batch.num_samples)

    async def record_async(self, tenant: str, batch: SampleBatch) -> AppendResult:
        return self.record(tenant, batch)

    def on_export(self, outcome: ExportOutcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def series(self) -> dict[Labels, list[tuple[int, float]]]:
        out: dict[Labels, list[tuple[int, float]]] = {}
        with self.lock:
            for _, b in self.batches:
                for j in range(b.num_samples):
                    labels = tuple(sorted(b.decode_labels(b.keys[int(b.series_idx[j])])))
                    out.setdefault(labels, []).append((int(b.timestamps[j]), float(b.values[j])))
        return out

    def clear(self) -> None:
        with self.lock:
            self.batches.clear()
            self.outcomes.clear()
            self.fail_next.clear()


def _tenant_http(request: Request) -> str:
    return request.headers.get("x-scope-orgid", "default")


def _tenant_grpc(metadata: Sequence[tuple[str, str | bytes]]) -> str:
    return next((str(v) for k, v in metadata if k == "x-scope-orgid"), "default")


@contextlib.contextmanager
def serve_http(app: Starlette) -> Iterator[int]:
    """Runs ``app`` under a real uvicorn server on 127.0.0.1 (a free port) in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def http_receiver() -> Iterator[tuple[str, Recorded]]:
    rec = Recorded()
    app = Starlette(
        routes=[make_otlp_metrics_route(rec.record_async, LIMITS, _tenant_http, on_export=rec.on_export)]
    )
    with serve_http(app) as port:
        yield f"http://127.0.0.1:{port}/v1/metrics", rec


@pytest.fixture(scope="module")
def grpc_receiver() -> Iterator[tuple[str, Recorded]]:
    rec = Recorded()
    port = free_port()
    server = start_otlp_grpc_server(
        rec.record, LIMITS, f"127.0.0.1:{port}", _tenant_grpc, on_export=rec.on_export
    )
    try:
        yield f"127.0.0.1:{port}", rec
    finally:
        server.stop(None)


RESOURCE = Resource.create(
    {
        "service.name": "checkout",
        "service.namespace": "shop",
        "service.instance.id": "i-1",
        "deployment.environment": "test",
    }
)
JOB = {"job": "shop/checkout", "instance": "i-1"}
SCOPE = {"otel_scope_name": "clearsight.test", "otel_scope_version": "1.2"}


def run_sdk(exporter: MetricExporter, views: Sequence[View] = ()) -> tuple[int, int]:
    """Records a fixed set of measurements, exports once; returns the (ms) time window around it."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader], views=list(views))
    meter = provider.get_meter("clearsight.test", "1.2")
    t0 = time.time_ns() // 1_000_000

    orders = meter.create_counter("orders.placed", unit="{order}", description="Orders placed")
    orders.add(2, {"region": "eu"})
    orders.add(1, {"region": "eu"})
    orders.add(4, {"region": "us", "http.method": "POST"})

    depth = meter.create_up_down_counter("queue.depth", unit="{item}", description="Items queued")
    depth.add(5)
    depth.add(-2)

    temp = meter.create_gauge("room.temperature", unit="Cel", description="Temperature")
    temp.set(21.5, {"room": "a"})

    def cpu(_: CallbackOptions) -> list[Observation]:
        return [Observation(0.25, {"cpu": "0"})]

    meter.create_observable_gauge("cpu.utilization", callbacks=[cpu], unit="1", description="CPU use")

    latency = meter.create_histogram("http.server.duration", unit="ms", description="Latency")
    for v in (7.0, 120.0, 55.0):
        latency.record(v, {"route": "/pay"})

    sent = meter.create_counter("bytes.sent", unit="By")
    sent.add(1024)

    # Shutting down collects and exports exactly once (force_flush and then shutdown would export
    # twice) and waits for the export's answer.
    provider.shutdown(timeout_millis=30_000)
    t1 = time.time_ns() // 1_000_000
    return t0, t1


BUCKETS = View(
    instrument_name="http.server.duration", aggregation=ExplicitBucketHistogramAggregation([10, 100])
)


def expected() -> dict[Labels, float]:
    def s(name: str, **labels: str) -> Labels:
        return tuple(sorted({"__name__": name, **JOB, **SCOPE, **labels}.items()))

    h = "http_server_duration_milliseconds"
    target = tuple(
        sorted(
            {
                "__name__": "target_info",
                **JOB,
                "deployment_environment": "test",
                "telemetry_sdk_language": "python",
                "telemetry_sdk_name": "opentelemetry",
                "telemetry_sdk_version": sdk_version,
            }.items()
        )
    )
    return {
        s("orders_placed_total", region="eu"): 3.0,
        s("orders_placed_total", region="us", http_method="POST"): 4.0,
        s("queue_depth"): 3.0,
        s("room_temperature_celsius", room="a"): 21.5,
        s("cpu_utilization_ratio", cpu="0"): 0.25,
        s(h + "_bucket", route="/pay", le="10"): 1.0,
        s(h + "_bucket", route="/pay", le="100"): 2.0,
        s(h + "_bucket", route="/pay", le="+Inf"): 3.0,
        s(h + "_count", route="/pay"): 3.0,
        s(h + "_sum", route="/pay"): 182.0,
        s("bytes_sent_bytes_total"): 1024.0,
        target: 1.0,
    }


def assert_exported(rec: Recorded, window: tuple[int, int], tenant: str) -> None:
    got = rec.series()
    assert {k: [v for _, v in pts] for k, pts in got.items()} == {k: [v] for k, v in expected().items()}
    for pts in got.values():
        ((ts, _),) = pts
        assert window[0] <= ts <= window[1]
    assert {t for t, _ in rec.batches} == {tenant}
    meta = {(m.metric, m.type, m.help, m.unit) for _, b in rec.batches for m in b.metadata}
    assert meta == {
        ("orders_placed_total", "counter", "Orders placed", ""),
        ("queue_depth", "gauge", "Items queued", ""),
        ("room_temperature_celsius", "gauge", "Temperature", "celsius"),
        ("cpu_utilization_ratio", "gauge", "CPU use", "ratio"),
        ("http_server_duration_milliseconds", "histogram", "Latency", "milliseconds"),
        ("bytes_sent_bytes_total", "counter", "", "bytes"),
        ("target_info", "gauge", "Target metadata", ""),
    }
    assert all(o.status == 200 and o.rejected_points == 0 for o in rec.outcomes)


ExporterFactory = Callable[..., MetricExporter]


def _http(url: str, **kw: Any) -> MetricExporter:
    return HttpExporter(endpoint=url, headers={"X-Scope-OrgID": "team-a"}, timeout=10, **kw)


def _grpc(target: str, **kw: Any) -> MetricExporter:
    return GrpcExporter(endpoint=target, insecure=True, headers={"x-scope-orgid": "team-b"}, timeout=10, **kw)


def test_sdk_over_http_protobuf(http_receiver: tuple[str, Recorded]) -> None:
    url, rec = http_receiver
    rec.clear()
    window = run_sdk(_http(url), [BUCKETS])
    assert_exported(rec, window, "team-a")


def test_sdk_over_http_gzip(http_receiver: tuple[str, Recorded]) -> None:
    url, rec = http_receiver
    rec.clear()
    window = run_sdk(_http(url, compression=HttpCompression.Gzip), [BUCKETS])
    assert_exported(rec, window, "team-a")


def test_sdk_over_grpc(grpc_receiver: tuple[str, Recorded]) -> None:
    target, rec = grpc_receiver
    rec.clear()
    window = run_sdk(_grpc(target), [BUCKETS])
    assert_exported(rec, window, "team-b")


def _delta_exporter(kind: str, endpoint: str) -> MetricExporter:
    delta = {Counter: AggregationTemporality.DELTA}
    return (
        _http(endpoint, preferred_temporality=delta)
        if kind == "http"
        else _grpc(endpoint, preferred_temporality=delta)
    )


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_sdk_delta_temporality_is_rejected_per_metric_once_and_not_retried(
    kind: str, http_receiver: tuple[str, Recorded], grpc_receiver: tuple[str, Recorded]
) -> None:
    endpoint, rec = http_receiver if kind == "http" else grpc_receiver
    rec.clear()
    exporter = _delta_exporter(kind, endpoint)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("m")
    meter.create_counter("ticks").add(1)  # delta: refused alone (OTLP partial success)
    meter.create_up_down_counter("queue").add(4)  # cumulative: kept
    provider.shutdown(timeout_millis=30_000)
    stored = {dict(b.decode_labels(k))["__name__"] for _, b in rec.batches for k in b.keys}
    assert stored == {"queue", "target_info"}
    assert [(o.status, o.rejected_points) for o in rec.outcomes] == [(200, 1)]


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_sdk_exponential_histograms_become_native_histograms(
    kind: str, http_receiver: tuple[str, Recorded], grpc_receiver: tuple[str, Recorded]
) -> None:
    """The SDK's exponential aggregation (scale chosen by the SDK) arrives as one native histogram
    sample (the default otlp.exponential_histograms: native) holding each observation in the
    bucket of its value."""
    endpoint, rec = http_receiver if kind == "http" else grpc_receiver
    rec.clear()
    expo = {Histogram: ExponentialBucketHistogramAggregation()}
    exporter = (
        _http(endpoint, preferred_aggregation=expo)
        if kind == "http"
        else _grpc(endpoint, preferred_aggregation=expo)
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": "x"}), metric_readers=[reader])
    lat = provider.get_meter("m").create_histogram("lat", unit="s")
    for v in (0.6, 3.0, 3.0, 100.0):
        lat.record(v)
    provider.shutdown(timeout_millis=30_000)
    hists = [
        (dict(b.decode_labels(b.keys[i]))["__name__"], h)
        for _, b in rec.batches
        if b.histograms is not None
        for i, h in zip(b.histograms.series_idx.tolist(), b.histograms.histograms, strict=True)
    ]
    assert [name for name, _ in hists] == ["lat_seconds"]
    h = hists[0][1]
    h.validate()
    assert h.schema <= 8 and h.count == 4.0 and h.sum == pytest.approx(106.6)
    for v, n in ((0.6, 1), (3.0, 2), (100.0, 1)):
        assert sum(b.count for b in h.iter_buckets() if b.lower < v <= b.upper) == n, v
    assert "lat_seconds_bucket" not in {dict(k)["__name__"] for k in rec.series()}
    ((outcome),) = rec.outcomes
    assert outcome.status == 200 and outcome.rejected_points == 0


@pytest.mark.parametrize(("kind", "status"), [("http", 429), ("http", 503), ("grpc", 429), ("grpc", 503)])
def test_sdk_retries_after_overload_and_then_delivers(
    kind: str, status: int, http_receiver: tuple[str, Recorded], grpc_receiver: tuple[str, Recorded]
) -> None:
    """A 429/503 (RESOURCE_EXHAUSTED/UNAVAILABLE with RetryInfo) makes the real exporter wait the
    advertised second and send the same data again; the retry is accepted."""
    endpoint, rec = http_receiver if kind == "http" else grpc_receiver
    rec.clear()
    rec.fail_next.append(Overloaded("queue full", retry_after=1.0, status=status))
    exporter = _http(endpoint) if kind == "http" else _grpc(endpoint)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": "r"}), metric_readers=[reader])
    provider.get_meter("m").create_counter("retried").add(1)
    provider.shutdown(timeout_millis=30_000)
    assert [o.status for o in rec.outcomes] == [status, 200]
    assert {dict(k)["__name__"] for k in rec.series()} == {"retried_total", "target_info"}


# --- the whole write path: SDK -> receiver -> validation -> embedded DuckDB store -> select ------


def test_sdk_to_embedded_store_over_http_and_grpc(tmp_path: Path) -> None:
    store = EmbeddedMetricsStore(tmp_path / "data")
    ingestor = MetricsIngestor(store, [make_validator(LIMITS, time.time)])
    app = Starlette(routes=[make_otlp_metrics_route(ingestor.ingest, LIMITS, _tenant_http)])
    grpc_port = free_port()
    grpc_server = start_otlp_grpc_server(
        ingestor.ingest_blocking, LIMITS, f"127.0.0.1:{grpc_port}", _tenant_grpc
    )
    try:
        with serve_http(app) as http_port:
            w_http = run_sdk(_http(f"http://127.0.0.1:{http_port}/v1/metrics"), [BUCKETS])
        w_grpc = run_sdk(_grpc(f"127.0.0.1:{grpc_port}"), [BUCKETS])
        every = [Matcher.of("=~", "__name__", ".+")]
        for tenant, window in (("team-a", w_http), ("team-b", w_grpc)):
            data = store.select(tenant, every, window[0], window[1])
            got: dict[Labels, list[float]] = {}
            for i in range(len(data)):
                labels, ts, vals = data.series(i)
                assert all(window[0] <= t <= window[1] for t in ts.tolist())
                got[tuple(sorted(labels))] = vals.tolist()
            assert got == {k: [v] for k, v in expected().items()}
            meta = store.metadata(tenant)
            assert meta["orders_placed_total"][0].type == "counter"
            assert meta["http_server_duration_milliseconds"][0].unit == "milliseconds"
        assert len(store.select("default", every, 0, 2**62)) == 0
    finally:
        grpc_server.stop(None)
        store.close()


# --- the `clearsight server` process: OTLP/JSON on the main port and the OTLP port ---------------


def test_server_process_otlp_json_example(tmp_path: Path) -> None:
    """The shared OTLP/JSON example against a real ``clearsight server``: as published (delta
    temporality except its gauge, which dates from 2018) it is refused with 400 and a JSON
    google.rpc.Status naming the too-old sample; made
    cumulative (and recent) it is stored, the exponential histogram as a native histogram, and
    PromQL, series and metadata answer with the mapped names."""
    example = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "otlp" / "metrics.json"
    shared = os.environ.get("CLEARSIGHT_SHARED")
    if shared:
        example = Path(shared) / "conformance" / "otlp" / "metrics.json"
    otlp_port = free_port()
    cs = start_clearsight(tmp_path / "cs", args=["--otlp-http-listen", f"127.0.0.1:{otlp_port}"])
    try:
        raw = example.read_bytes()
        r = httpx.post(
            f"{cs.url}/v1/metrics", content=raw, headers={"Content-Type": "application/json"}, timeout=10
        )
        # As published its delta metrics are refused alone, and what is left (the gauge) dates from
        # 2018, beyond limits.max_past_ms: the request is refused with 400 naming the sample.
        assert r.status_code == 400 and r.headers["content-type"] == "application/json"
        assert "too old" in r.json()["message"] and "my_gauge_ratio" in r.json()["message"]

        doc = json.loads(raw)
        now_ns = time.time_ns()
        for m in doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]:
            for kind in ("sum", "histogram", "exponentialHistogram", "gauge"):
                if kind in m:
                    if kind != "gauge":
                        m[kind]["aggregationTemporality"] = 2
                    for p in m[kind]["dataPoints"]:
                        p["timeUnixNano"] = str(now_ns)
                        p["startTimeUnixNano"] = str(now_ns - 60 * 10**9)
        r = httpx.post(
            f"http://127.0.0.1:{otlp_port}/v1/metrics",
            content=json.dumps(doc).encode(),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert r.json() == {}

        at = now_ns / 1e9
        res = httpx.get(
            f"{cs.url}/api/v1/query", params={"query": '{job="my.service"}', "time": at}, timeout=10
        ).json()
        assert res["status"] == "success", res
        got = {
            (m["metric"]["__name__"], m["metric"].get("le", "")): float(m["value"][1])
            for m in res["data"]["result"]
            if "value" in m
        }
        nh = [m["histogram"][1] for m in res["data"]["result"] if "histogram" in m]
        # scale 0, zeroCount 1, positive offset 1 counts [0, 2]: (4, 8] holds 2 (empty buckets left out)
        assert nh == [{"count": "3", "sum": "10", "buckets": [[3, "-0", "0", "1"], [0, "4", "8", "2"]]}]  # as Prometheus
        assert got == {
            ("my_counter_total", ""): 5.0,
            ("my_gauge_ratio", ""): 10.0,
            ("my_histogram_bucket", "1"): 1.0,
            ("my_histogram_bucket", "+Inf"): 2.0,
            ("my_histogram_count", ""): 2.0,
            ("my_histogram_sum", ""): 2.0,
        }
        q = httpx.get(
            f"{cs.url}/api/v1/query",
            params={"query": "histogram_quantile(0.5, my_exponential_histogram)", "time": at},
            timeout=10,
        ).json()
        [median] = [float(r["value"][1]) for r in q["data"]["result"]]
        assert 4 < median <= 8  # in (4, 8], interpolated exponentially
        labels = next(
            m["metric"] for m in res["data"]["result"] if m["metric"]["__name__"] == "my_counter_total"
        )
        assert labels == {
            "__name__": "my_counter_total",
            "job": "my.service",
            "my_counter_attr": "some value",
            "otel_scope_name": "my.library",
            "otel_scope_version": "1.0.0",
        }
        meta = httpx.get(f"{cs.url}/api/v1/metadata", timeout=10).json()["data"]
        assert meta["my_counter_total"] == [{"type": "counter", "help": "I am a Counter", "unit": ""}]
        assert meta["my_histogram"][0]["type"] == "histogram"
    finally:
        cs.stop()
