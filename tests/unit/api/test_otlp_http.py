"""``POST /v1/metrics`` (api/otlp_http.py), driven in-process through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable

import httpx
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from starlette.applications import Starlette
from starlette.requests import Request

from clearsight.api.otlp_http import ExportOutcome, make_otlp_metrics_route
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.errors import IngestError, Overloaded
from clearsight.pipeline.limits import WriteLimits
from clearsight.store.interface import AppendResult

PB = "application/x-protobuf"
JS = "application/json"
T_NS = 1_700_000_000_000_000_000


class Client:
    """A synchronous facade over httpx's ASGI transport (one event loop per request)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def post(self, url: str, content: bytes = b"", headers: dict[str, str] | None = None) -> httpx.Response:
        return asyncio.run(self._request("POST", url, content, headers))

    def get(self, url: str) -> httpx.Response:
        return asyncio.run(self._request("GET", url, b"", None))

    async def _request(
        self, method: str, url: str, content: bytes, headers: dict[str, str] | None
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.request(method, url, content=content, headers=headers)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, SampleBatch]] = []
        self.fail: IngestError | None = None
        self.out_of_bounds = 0

    async def ingest(self, tenant: str, batch: SampleBatch) -> AppendResult:
        if self.fail is not None:
            raise self.fail
        self.calls.append((tenant, batch))
        return AppendResult(
            samples_written=batch.num_samples - self.out_of_bounds, out_of_bounds=self.out_of_bounds
        )


def make_client(
    limits: WriteLimits | None = None, on_export: Callable[[ExportOutcome], None] | None = None
) -> tuple[Client, Recorder]:
    rec = Recorder()

    def tenant_of(request: Request) -> str:
        return request.headers.get("x-scope-orgid", "default")

    route = make_otlp_metrics_route(
        rec.ingest, limits or WriteLimits(), tenant_of, on_export=on_export, clock_ms=lambda: 42
    )
    return Client(Starlette(routes=[route])), rec


def body(
    temporality: int = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
    valueless: bool = False,
    n_points: int = 1,
) -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "svc"
    sm = rm.scope_metrics.add()
    m = sm.metrics.add(name="jobs.done", unit="{job}")
    m.sum.is_monotonic = True
    m.sum.aggregation_temporality = temporality
    for i in range(n_points):
        p = m.sum.data_points.add(time_unix_nano=T_NS, as_int=5)
        p.attributes.add(key="i").value.int_value = i
    if valueless:  # a gauge point with neither asDouble nor asInt: dropped and reported
        sm.metrics.add(name="novalue").gauge.data_points.add(time_unix_nano=T_NS)
    return req.SerializeToString()


def to_json(pb: bytes) -> bytes:
    from google.protobuf import json_format

    return json_format.MessageToJson(ExportMetricsServiceRequest.FromString(pb)).encode()


def status_of(resp_body: bytes) -> tuple[status_pb2.Status, list[object]]:
    st = status_pb2.Status.FromString(resp_body)
    details: list[object] = []
    for d in st.details:
        for cls in (error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if d.Is(cls.DESCRIPTOR):
                msg = cls()
                d.Unpack(msg)
                details.append(msg)
    return st, details


def test_protobuf_success() -> None:
    outcomes: list[ExportOutcome] = []
    client, rec = make_client(on_export=outcomes.append)
    r = client.post("/v1/metrics", content=body(), headers={"Content-Type": PB, "X-Scope-OrgID": "acme"})
    assert r.status_code == 200
    assert r.headers["content-type"] == PB
    resp = ExportMetricsServiceResponse.FromString(r.content)
    assert not resp.HasField("partial_success")
    ((tenant, batch),) = rec.calls
    assert tenant == "acme"
    assert [dict(batch.decode_labels(k)) for k in batch.keys] == [
        {"__name__": "jobs_done_total", "i": "0", "job": "svc"}
    ]
    assert batch.values.tolist() == [5.0]
    assert batch.timestamps.tolist() == [T_NS // 1_000_000]
    assert outcomes == [ExportOutcome("otlp_http", 200, "", 1, 1, 0, 0, 0)]


def test_json_success_answers_json() -> None:
    client, rec = make_client()
    r = client.post("/v1/metrics", content=to_json(body()), headers={"Content-Type": JS})
    assert r.status_code == 200
    assert r.headers["content-type"] == JS
    assert r.json() == {}
    assert len(rec.calls) == 1


def test_gzip_request() -> None:
    client, rec = make_client()
    r = client.post(
        "/v1/metrics", content=gzip.compress(body()), headers={"Content-Type": PB, "Content-Encoding": "gzip"}
    )
    assert r.status_code == 200
    assert rec.calls[0][1].num_samples == 1


def test_large_body_is_decoded_off_the_event_loop_too() -> None:
    client, rec = make_client()
    big = body(n_points=5000)
    assert len(big) > 64 * 1024
    r = client.post("/v1/metrics", content=big, headers={"Content-Type": PB})
    assert r.status_code == 200
    assert rec.calls[0][1].num_series == 5000


def test_empty_request_succeeds_without_ingesting() -> None:
    client, rec = make_client()
    r = client.post("/v1/metrics", content=b"", headers={"Content-Type": PB})
    assert r.status_code == 200 and rec.calls == []


def test_partial_success_for_dropped_points_protobuf_and_json() -> None:
    client, rec = make_client()
    rec.out_of_bounds = 1
    r = client.post("/v1/metrics", content=body(valueless=True), headers={"Content-Type": PB})
    assert r.status_code == 200
    ps = ExportMetricsServiceResponse.FromString(r.content).partial_success
    assert ps.rejected_data_points == 2  # one point without a value + one too-old sample
    assert "without a value" in ps.error_message
    assert "out-of-order window" in ps.error_message
    rec.out_of_bounds = 0
    r = client.post("/v1/metrics", content=to_json(body(valueless=True)), headers={"Content-Type": JS})
    assert r.json()["partialSuccess"]["rejectedDataPoints"] == "1"
    assert "'novalue'" in r.json()["partialSuccess"]["errorMessage"]


def _mixed_delta_body() -> bytes:
    """``jobs.done`` (delta, 3 points) beside a cumulative gauge ``kept``."""
    req = ExportMetricsServiceRequest.FromString(body(metrics_pb2.AGGREGATION_TEMPORALITY_DELTA, n_points=3))
    req.resource_metrics[0].scope_metrics[0].metrics.add(name="kept").gauge.data_points.add(
        time_unix_nano=T_NS, as_double=7.0)
    return req.SerializeToString()


@pytest.mark.parametrize("content_type", [PB, JS])
def test_delta_metric_is_rejected_alone_with_partial_success(content_type: str) -> None:
    outcomes: list[ExportOutcome] = []
    client, rec = make_client(on_export=outcomes.append)
    raw = _mixed_delta_body()
    r = client.post("/v1/metrics", content=raw if content_type == PB else to_json(raw),
                    headers={"Content-Type": content_type})
    assert r.status_code == 200 and r.headers["content-type"] == content_type
    if content_type == PB:
        ps = ExportMetricsServiceResponse.FromString(r.content).partial_success
        rejected, message = ps.rejected_data_points, ps.error_message
    else:
        doc = r.json()["partialSuccess"]
        rejected, message = int(doc["rejectedDataPoints"]), doc["errorMessage"]
    assert rejected == 3
    assert "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.aggregationTemporality" in message
    assert "'jobs.done'" in message and "delta temporality" in message
    ((_, batch),) = rec.calls  # the cumulative gauge is written, the delta points are not
    assert [dict(batch.decode_labels(k))["__name__"] for k in batch.keys] == ["kept"]
    assert outcomes[0].status == 200 and outcomes[0].rejected_points == 3


def test_garbage_is_400() -> None:
    client, _ = make_client()
    r = client.post("/v1/metrics", content=b"\xff\xff\xff", headers={"Content-Type": PB})
    assert r.status_code == 400
    assert "cannot parse protobuf" in status_of(r.content)[0].message
    r = client.post("/v1/metrics", content=b"{not json", headers={"Content-Type": JS})
    assert r.status_code == 400 and "OTLP/JSON" in r.json()["message"]


def test_unsupported_media_type_and_encoding_are_415() -> None:
    client, _ = make_client()
    r = client.post("/v1/metrics", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert "Content-Type" in status_of(r.content)[0].message
    r = client.post("/v1/metrics", content=b"x", headers={"Content-Type": PB, "Content-Encoding": "br"})
    assert r.status_code == 415


def test_too_large_is_413() -> None:
    client, _ = make_client(WriteLimits(max_body_bytes=100, max_decompressed_bytes=200))
    r = client.post("/v1/metrics", content=b"\x00" * 101, headers={"Content-Type": PB})
    assert r.status_code == 413
    bomb = gzip.compress(b"\x00" * 5000)
    assert len(bomb) <= 100
    r = client.post("/v1/metrics", content=bomb, headers={"Content-Type": PB, "Content-Encoding": "gzip"})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("err", "status", "retry_after", "code"),
    [
        (Overloaded("queue full", retry_after=2.5), 429, "3", code_pb2.RESOURCE_EXHAUSTED),
        (Overloaded("store closed", retry_after=5.0, status=503), 503, "5", code_pb2.UNAVAILABLE),
    ],
)
def test_overload_is_retryable_with_retry_after(
    err: IngestError, status: int, retry_after: str, code: int
) -> None:
    client, rec = make_client()
    rec.fail = err
    r = client.post("/v1/metrics", content=body(), headers={"Content-Type": PB})
    assert r.status_code == status
    assert r.headers["retry-after"] == retry_after
    st, details = status_of(r.content)
    assert st.code == code and st.message == err.message
    (ri,) = details
    assert isinstance(ri, error_details_pb2.RetryInfo) and ri.retry_delay.seconds == int(retry_after)


def test_only_post() -> None:
    client, _ = make_client()
    assert client.get("/v1/metrics").status_code == 405


def test_json_enum_names_accepted_over_http() -> None:
    client, rec = make_client()
    doc = json.loads(to_json(body()))
    doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["aggregationTemporality"] = (
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    )
    r = client.post("/v1/metrics", content=json.dumps(doc).encode(), headers={"Content-Type": JS})
    assert r.status_code == 200 and len(rec.calls) == 1


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=512),
    st.sampled_from(
        [PB, JS, "application/json; charset=utf-8", "text/plain", "", "application/x-protobuf;x"]
    ),
    st.sampled_from([None, "gzip", "deflate", "identity", "br"]),
)
def test_any_request_gets_a_well_formed_otlp_answer(content: bytes, ctype: str, enc: str | None) -> None:
    client, _ = make_client(WriteLimits(max_body_bytes=256, max_decompressed_bytes=4096))
    headers = {"Content-Type": ctype} if ctype else {}
    if enc is not None:
        headers["Content-Encoding"] = enc
    r = client.post("/v1/metrics", content=content, headers=headers)
    assert r.status_code in (200, 400, 413, 415)
    if r.status_code == 200:
        if r.headers["content-type"] == PB:
            ExportMetricsServiceResponse.FromString(r.content)  # parses
        else:
            assert set(r.json()) <= {"partialSuccess"}
    elif r.headers["content-type"] == JS:
        assert r.json()["message"]
    else:
        assert status_pb2.Status.FromString(r.content).message
