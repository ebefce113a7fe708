"""OTLP/gRPC MetricsService/Export (api/otlp_grpc.py) over a real grpcio channel on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from clearsight.api.otlp_grpc import SERVICE, start_otlp_grpc_server_on
from clearsight.api.otlp_http import ExportOutcome
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.errors import IngestError, Overloaded
from clearsight.pipeline.limits import WriteLimits
from clearsight.store.interface import AppendResult

T_NS = 1_700_000_000_000_000_000


@dataclass
class Sink:
    calls: list[tuple[str, SampleBatch]] = field(default_factory=list)
    fail: IngestError | None = None
    outcomes: list[ExportOutcome] = field(default_factory=list)

    def ingest(self, tenant: str, batch: SampleBatch) -> AppendResult:
        if self.fail is not None:
            raise self.fail
        self.calls.append((tenant, batch))
        return AppendResult(samples_written=batch.num_samples)


def tenant_of(metadata: Sequence[tuple[str, str | bytes]]) -> str:
    for k, v in metadata:
        if k == "x-scope-orgid":
            if v == "nobody":
                raise PermissionError("unknown org")
            return str(v)
    return "default"


@pytest.fixture
def served() -> Iterator[tuple[Sink, grpc.Channel]]:
    sink = Sink()
    server, port = start_otlp_grpc_server_on(
        sink.ingest,
        WriteLimits(max_decompressed_bytes=64 * 1024),
        "127.0.0.1:0",
        tenant_of,
        on_export=sink.outcomes.append,
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield sink, channel
    finally:
        channel.close()
        server.stop(None)


def request(
    temporality: int = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
    valueless: bool = False,
    n_points: int = 1,
) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "svc"
    sm = rm.scope_metrics.add()
    m = sm.metrics.add(name="bytes.sent", unit="By")
    m.sum.is_monotonic = True
    m.sum.aggregation_temporality = temporality
    for i in range(n_points):
        p = m.sum.data_points.add(time_unix_nano=T_NS, as_double=1.5)
        p.attributes.add(key="i").value.int_value = i
    if valueless:  # a gauge point with neither asDouble nor asInt: dropped and reported
        sm.metrics.add(name="novalue").gauge.data_points.add(time_unix_nano=T_NS)
    return req


def rich_status(err: grpc.RpcError) -> status_pb2.Status:
    trailers = dict(err.trailing_metadata() or ())
    return status_pb2.Status.FromString(trailers["grpc-status-details-bin"])


def detail(st: status_pb2.Status, cls: type[Message]) -> Message:
    for d in st.details:
        if d.Is(cls.DESCRIPTOR):
            msg = cls()
            d.Unpack(msg)
            return msg
    raise AssertionError(f"no {cls.__name__} detail")


def test_export_success(served: tuple[Sink, grpc.Channel]) -> None:
    sink, channel = served
    stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
    resp = stub.Export(request(), metadata=(("x-scope-orgid", "acme"),), timeout=10)
    assert isinstance(resp, ExportMetricsServiceResponse)
    assert not resp.HasField("partial_success")
    ((tenant, batch),) = sink.calls
    assert tenant == "acme"
    assert [dict(batch.decode_labels(k)) for k in batch.keys] == [
        {"__name__": "bytes_sent_bytes_total", "i": "0", "job": "svc"}
    ]
    assert batch.values.tolist() == [1.5]
    assert sink.outcomes == [ExportOutcome("otlp_grpc", 200, "", 1, 1, 0, 0, 0)]


def test_export_gzip_compressed(served: tuple[Sink, grpc.Channel]) -> None:
    sink, channel = served
    stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
    stub.Export(request(n_points=100), compression=grpc.Compression.Gzip, timeout=10)
    assert sink.calls[0][1].num_series == 100


def test_partial_success(served: tuple[Sink, grpc.Channel]) -> None:
    _, channel = served
    resp = metrics_service_pb2_grpc.MetricsServiceStub(channel).Export(request(valueless=True), timeout=10)
    assert resp.partial_success.rejected_data_points == 1
    assert "without a value" in resp.partial_success.error_message


def test_delta_metric_is_rejected_alone_with_partial_success(served: tuple[Sink, grpc.Channel]) -> None:
    sink, channel = served
    req = request(metrics_pb2.AGGREGATION_TEMPORALITY_DELTA, n_points=2)
    req.resource_metrics[0].scope_metrics[0].metrics.add(name="kept").gauge.data_points.add(
        time_unix_nano=T_NS, as_double=7.0)
    resp = metrics_service_pb2_grpc.MetricsServiceStub(channel).Export(req, timeout=10)
    assert resp.partial_success.rejected_data_points == 2
    assert "'bytes.sent'" in resp.partial_success.error_message
    assert "metrics[0].sum.aggregationTemporality" in resp.partial_success.error_message
    ((_, batch),) = sink.calls
    assert [dict(batch.decode_labels(k))["__name__"] for k in batch.keys] == ["kept"]


def test_garbage_bytes_are_invalid_argument(served: tuple[Sink, grpc.Channel]) -> None:
    _, channel = served
    raw = channel.unary_unary(f"/{SERVICE}/Export")
    with pytest.raises(grpc.RpcError) as ei:
        raw(b"\xff\xff\xff\xff", timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_oversize_message_is_rejected_not_retryable(served: tuple[Sink, grpc.Channel]) -> None:
    sink, channel = served
    stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
    with pytest.raises(grpc.RpcError) as ei:
        stub.Export(request(n_points=5000), timeout=10)
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert sink.calls == []


@pytest.mark.parametrize(
    ("err", "code", "delay"),
    [
        (Overloaded("queue full", retry_after=2.0), grpc.StatusCode.RESOURCE_EXHAUSTED, 2),
        (Overloaded("not ready", retry_after=5.0, status=503), grpc.StatusCode.UNAVAILABLE, 5),
    ],
)
def test_overload_is_retryable_with_retry_info(
    served: tuple[Sink, grpc.Channel], err: IngestError, code: grpc.StatusCode, delay: int
) -> None:
    sink, channel = served
    sink.fail = err
    stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
    with pytest.raises(grpc.RpcError) as ei:
        stub.Export(request(), timeout=10)
    assert ei.value.code() == code
    ri = detail(rich_status(ei.value), error_details_pb2.RetryInfo)
    assert isinstance(ri, error_details_pb2.RetryInfo) and ri.retry_delay.seconds == delay
    # The RetryInfo alone, where the OpenTelemetry Python exporter looks for it.
    trailers = dict(ei.value.trailing_metadata() or ())
    alone = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert alone.retry_delay.seconds == delay
    assert sink.outcomes[-1].status == err.status


def test_tenant_resolution_failure_is_unauthenticated(served: tuple[Sink, grpc.Channel]) -> None:
    sink, channel = served
    stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
    with pytest.raises(grpc.RpcError) as ei:
        stub.Export(request(), metadata=(("x-scope-orgid", "nobody"),), timeout=10)
    assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert sink.calls == []


def test_bad_listen_address_raises_oserror() -> None:
    with pytest.raises(OSError, match="cannot listen"):
        start_otlp_grpc_server_on(Sink().ingest, WriteLimits(), "256.0.0.1:1", tenant_of)


def test_concurrent_calls_beyond_the_bound_are_resource_exhausted() -> None:
    import threading

    release = threading.Event()
    entered = threading.Semaphore(0)

    def ingest(tenant: str, batch: SampleBatch) -> AppendResult:
        entered.release()
        assert release.wait(30)
        return AppendResult(samples_written=batch.num_samples)

    server, port = start_otlp_grpc_server_on(ingest, WriteLimits(), "127.0.0.1:0", tenant_of,
                                             max_workers=2, max_concurrent_rpcs=2)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
        held = [stub.Export.future(request(), timeout=30) for _ in range(2)]
        for _ in range(2):
            assert entered.acquire(timeout=30)  # both admitted calls are inside ingest
        with pytest.raises(grpc.RpcError) as e:
            stub.Export(request(), timeout=30)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        release.set()
        for f in held:
            assert isinstance(f.result(), ExportMetricsServiceResponse)
        stub.Export(request(), timeout=30)  # slots free again
    finally:
        release.set()
        channel.close()
        server.stop(None)
