"""The OTLP/gRPC transport against an in-process grpcio server: gRPC status -> the HTTP answer the
shipper handles (retry, reject, replay), RetryInfo -> retry-after, metadata and gzip payloads."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from clearsight.agent.grpc_transport import LOGS_METHOD, GrpcTransport, retry_delay_seconds

SEEN: list[tuple[bytes, dict[str, str]]] = []


def _retry_info(seconds: int, nanos: int = 0) -> bytes:
    return error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds, nanos=nanos)).SerializeToString()


def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
    meta = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
    SEEN.append((request, meta))
    what = request.decode()
    if what == "ok":
        return b""
    if what == "replay":
        context.set_trailing_metadata((("x-idempotent-replay", "true"),))
        return b""
    code, _, rest = what.partition(":")
    trailers = (("google.rpc.retryinfo-bin", _retry_info(int(rest))),) if rest else ()
    context.set_trailing_metadata(trailers)
    context.abort(grpc.StatusCode[code], f"{code} details")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    server = grpc.server(ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.logs.v1.LogsService", {"Export": grpc.unary_unary_rpc_method_handler(handle)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def post(target: str, what: str) -> tuple[int, dict[str, str], str]:
    t = GrpcTransport(target, LOGS_METHOD, timeout=10)
    try:
        r = t.post(gzip.compress(what.encode()), {"x-idempotency-key": "cs1-abc", "Content-Type": "x",
                                                  "X-Scope-OrgID": "acme"})
        return r.status, dict(r.headers), r.text
    finally:
        t.close()


def test_ok_sends_the_unzipped_payload_and_the_metadata(target: str) -> None:
    SEEN.clear()
    assert post(target, "ok") == (200, {}, "")
    body, meta = SEEN[-1]
    assert body == b"ok" and meta["x-idempotency-key"] == "cs1-abc" and meta["x-scope-orgid"] == "acme"
    assert "content-type" not in meta or meta["content-type"] == "application/grpc"
    assert post(target, "replay")[:2] == (200, {"x-idempotent-replay": "true"})


@pytest.mark.parametrize(("what", "status", "headers"), [
    ("RESOURCE_EXHAUSTED:3", 429, {"retry-after": "3"}),
    ("UNAVAILABLE:7", 503, {"retry-after": "7"}),
    ("RESOURCE_EXHAUSTED", 429, {}),
    ("ABORTED", 409, {}),
    ("INVALID_ARGUMENT", 400, {}),
    ("PERMISSION_DENIED", 403, {}),
    ("INTERNAL", 500, {}),
])
def test_status_mapping(target: str, what: str, status: int, headers: dict[str, str]) -> None:
    got = post(target, what)
    assert got[:2] == (status, headers)
    assert got[2] == f"{what.partition(':')[0]}: {what.partition(':')[0]} details"


@pytest.mark.parametrize(("what", "exc"), [("UNAVAILABLE", ConnectionError), ("UNAUTHENTICATED", PermissionError)])
def test_no_answer_or_refused_raises_an_oserror_the_shipper_retries(target: str, what: str,
                                                                    exc: type[OSError]) -> None:
    with pytest.raises(exc):
        post(target, what)


def test_nobody_listening_is_a_connection_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError):
        post(f"127.0.0.1:{port}", "ok")


def test_retry_delay_parsing() -> None:
    assert retry_delay_seconds(_retry_info(2, 500_000_000)) == 2.5
    assert retry_delay_seconds(_retry_info(0)) == 0.0
    assert retry_delay_seconds(b"\x0a\x05\x08") is None  # truncated
    assert retry_delay_seconds(b"\x10\x01") is None  # not a retry_delay field
