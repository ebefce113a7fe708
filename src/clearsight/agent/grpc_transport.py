"""The shipper's transport over OTLP/gRPC (``shipper.protocol: grpc``): one unary ``Export`` call per
buffered request on a kept channel, the request's idempotency key and the configured headers as call
metadata, gzip message compression.

The gRPC status becomes the HTTP answer the shipper already knows how to handle (``Response``):
OK -> 200 (``x-idempotent-replay`` from the trailing metadata), RESOURCE_EXHAUSTED -> 429 (413 when
the message is too large: never retried), UNAVAILABLE with a ``RetryInfo`` -> 503, ABORTED (the first
call with this key is still being handled) -> 409, INVALID_ARGUMENT -> 400, PERMISSION_DENIED -> 403,
UNIMPLEMENTED -> 404, others -> 500. A ``RetryInfo`` delay becomes ``retry-after``. No answer
(UNAVAILABLE without ``RetryInfo``: no connection, a refused TLS handshake) raises ``ConnectionError``;
DEADLINE_EXCEEDED (``server.timeout``) ``TimeoutError``; UNAUTHENTICATED (a revoked client certificate,
which gRPC's handshake cannot refuse) ``PermissionError``: all are retried as connection errors, so
the records stay buffered, as over HTTPS where a refused certificate ends the connection. This module loads grpcio (about 21 MiB of RSS): only imported with
``shipper.protocol: grpc``.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping

import grpc

from clearsight.agent.shipper import Response

LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
METRICS_METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
_HTTP_ONLY = frozenset({"content-type", "content-encoding", "content-length", "x-prometheus-remote-write-version",
                        "host", "connection", "user-agent"})
_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNIMPLEMENTED: 404,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
}
_TOO_LARGE = ("exceeds the limit", "larger than max")


def _varint(b: bytes, i: int) -> tuple[int, int]:
    v = shift = 0
    while i < len(b):
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, i
        shift += 7
    raise ValueError("truncated varint")


def retry_delay_seconds(retry_info: bytes) -> float | None:
    """``google.rpc.RetryInfo`` (field 1: a ``Duration`` of seconds = 1, nanos = 2) by hand: the agent
    does not load protobuf."""
    try:
        i = 0
        while i < len(retry_info):
            tag, i = _varint(retry_info, i)
            if tag != 0x0A:  # only retry_delay (1, length-delimited) is expected
                return None
            n, i = _varint(retry_info, i)
            d, j, seconds, nanos = retry_info[i:i + n], 0, 0, 0
            while j < len(d):
                t, j = _varint(d, j)
                v, j = _varint(d, j)
                if t == 0x08:
                    seconds = v
                elif t == 0x10:
                    nanos = v
            return seconds + nanos / 1e9
    except ValueError:
        return None
    return None


def channel_credentials(ca_file: str = "", cert_file: str = "", key_file: str = "") -> grpc.ChannelCredentials:
    """TLS for the channel with the same files as HTTPS: the CA (else grpc's default roots) and, for
    mutual TLS, the client certificate and key."""
    def read(path: str) -> bytes | None:
        if not path:
            return None
        with open(path, "rb") as fh:
            return fh.read()

    return grpc.ssl_channel_credentials(root_certificates=read(ca_file), private_key=read(key_file),
                                        certificate_chain=read(cert_file))


class GrpcTransport:
    def __init__(self, target: str, method: str, timeout: float = 10.0,
                 credentials: grpc.ChannelCredentials | None = None, gzipped: bool = True) -> None:
        """``gzipped``: the buffered payloads are gzip files (the OTLP/HTTP form): sent uncompressed
        inside gRPC's own gzip message compression."""
        self.target = target
        self.method = method
        self.timeout = timeout
        self.gzipped = gzipped
        options = [("grpc.max_send_message_length", 64 * 1024 * 1024), ("grpc.enable_retries", 0)]
        self._channel = (grpc.secure_channel(target, credentials, options=options) if credentials is not None
                         else grpc.insecure_channel(target, options=options))
        self._call = self._channel.unary_unary(method)  # bytes in, bytes out

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        payload = gzip.decompress(body) if self.gzipped else body
        metadata = tuple((k.lower(), v) for k, v in headers.items() if k.lower() not in _HTTP_ONLY)
        try:
            _resp, call = self._call.with_call(payload, timeout=self.timeout, metadata=metadata,
                                               compression=grpc.Compression.Gzip)
            trailers = dict(call.trailing_metadata() or ())
            return Response(200, {k: str(v) for k, v in trailers.items() if k == "x-idempotent-replay"}, "")
        except grpc.RpcError as e:
            code = e.code()
            details = str(e.details() or "")
            trailers = dict(e.trailing_metadata() or ())
        delay = None
        info = trailers.get("google.rpc.retryinfo-bin")
        if isinstance(info, bytes):
            delay = retry_delay_seconds(info)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise TimeoutError(f"no answer from {self.target} within {self.timeout:g}s")
        if code == grpc.StatusCode.UNAVAILABLE and delay is None:
            raise ConnectionError(f"{self.target} unavailable: {details}")
        if code == grpc.StatusCode.UNAUTHENTICATED:  # a refused (revoked) client certificate: keep buffering
            raise PermissionError(f"{self.target} refused the call: UNAUTHENTICATED: {details}")
        status = _STATUS.get(code, 500)
        if status == 429 and delay is None and any(t in details for t in _TOO_LARGE):
            status = 413
        out_headers = {} if delay is None else {"retry-after": str(max(0, round(delay)))}
        return Response(status, out_headers, f"{code.name}: {details}")

    def close(self) -> None:
        self._channel.close()
