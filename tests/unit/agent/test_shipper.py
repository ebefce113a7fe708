"""The shipper: what it sends (decoded with the server's own remote-write decoder) and how it retries."""

from __future__ import annotations

import email.utils
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import cramjam
import pytest

from clearsight.agent.buffer import MemoryBuffer
from clearsight.agent.sample import sample
from clearsight.agent.shipper import Encoder, HttpTransport, Response, Shipper, retry_after_seconds
from clearsight.ingest import remote_write as rw

URL = "http://server.test/api/v1/write"


def decode(payload: bytes) -> list[tuple[tuple[tuple[str, str], ...], int, float]]:
    b = rw.batch_from_protobuf(bytes(cramjam.snappy.decompress_raw(payload)))
    return [(tuple(sorted(b.decode_labels(b.keys[int(i)]))), int(t), float(v))
            for i, t, v in zip(b.series_idx, b.timestamps, b.values, strict=True)]


class FakeStop:
    """Records the delays the shipper waits; ``stop_after`` waits later it reports a stop."""

    def __init__(self, stop_after: int = 1_000_000) -> None:
        self.waits: list[float] = []
        self.stop_after = stop_after

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0.0))
        return len(self.waits) >= self.stop_after

    def is_set(self) -> bool:
        return len(self.waits) >= self.stop_after


def test_encoder_adds_host_labels_and_splits_by_max_samples() -> None:
    enc = Encoder({"instance": "web-1", "job": "node", "dc": "par"}, max_samples=2)
    out = enc.encode([sample("node_load1", 0.5), sample("node_cpu_seconds_total", 12.25, cpu="0", mode="idle"),
                      sample("up", 0.0, job="theirs")], 1_700_000_000_123)
    assert [n for _, n in out] == [2, 1]
    host = (("dc", "par"), ("instance", "web-1"), ("job", "node"))
    assert decode(out[0][0]) == [
        ((("__name__", "node_load1"), *host), 1_700_000_000_123, 0.5),
        ((("__name__", "node_cpu_seconds_total"), ("cpu", "0"), *host[:2], ("job", "node"), ("mode", "idle")),
         1_700_000_000_123, 12.25),
    ]
    assert decode(out[1][0]) == [((("__name__", "up"), *host), 1_700_000_000_123, 0.0)]  # host labels win


class FakeTransport:
    def __init__(self, handle: Callable[[bytes, Mapping[str, str]], Response]) -> None:
        self.handle = handle
        self.closed = False

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        return self.handle(body, headers)

    def close(self) -> None:
        self.closed = True


def answers(*items: Response | Exception) -> FakeTransport:
    queue = list(items)

    def handle(body: bytes, headers: Mapping[str, str]) -> Response:
        a = queue.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    return FakeTransport(handle)


def status(code: int, text: str = "", **headers: str) -> Response:
    return Response(code, {k.lower().replace("_", "-"): v for k, v in headers.items()}, text)


def shipper(transport: FakeTransport, buf: MemoryBuffer, **kw: object) -> Shipper:
    return Shipper(URL, buf, transport=transport, rng=lambda: 0.5, wall_clock=lambda: 1_700_000_000.0,
                   **kw)  # type: ignore[arg-type]


def test_sends_remote_write_headers_and_acks() -> None:
    seen: list[tuple[bytes, Mapping[str, str]]] = []

    def handle(body: bytes, headers: Mapping[str, str]) -> Response:
        seen.append((body, headers))
        return status(204)

    buf = MemoryBuffer(1 << 20)
    payload, n = Encoder({"instance": "h", "job": "node"}).encode([sample("a", 1.0)], 5)[0]
    buf.put(payload, n)
    s = shipper(FakeTransport(handle), buf)
    assert s.send_oldest(FakeStop())
    ((body, headers),) = seen
    assert headers["Content-Encoding"] == "snappy"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert decode(body) == [((("__name__", "a"), ("instance", "h"), ("job", "node")), 5, 1.0)]
    assert len(buf) == 0 and s.stats.samples_sent == 1 and s.stats.requests_sent == 1
    assert not s.send_oldest(FakeStop())  # nothing left


def test_retries_5xx_429_and_connection_errors_with_backoff_then_delivers() -> None:
    buf = MemoryBuffer(1 << 20)
    buf.put(b"x", 3)
    s = shipper(answers(ConnectionRefusedError(111, "refused"), status(503), status(429), status(500), status(200)),
                buf, backoff_min=1.0, backoff_max=5.0)
    stop = FakeStop()
    assert s.send_oldest(stop)
    # full jitter with rng=0.5: min + 0.5 * (min(max, min * 2**attempt) - min)
    assert stop.waits == [1.0, 1.5, 2.5, 3.0]
    assert s.stats.retries == 4 and s.stats.samples_sent == 3 and len(buf) == 0


def test_retry_after_is_honoured_and_capped() -> None:
    date = email.utils.formatdate(1_700_000_000.0 + 42, usegmt=True)
    buf = MemoryBuffer(1 << 20)
    buf.put(b"x", 1)
    s = shipper(answers(status(503, Retry_After="7"), status(429, Retry_After=date),
                        status(429, Retry_After="99999"), status(204)), buf, retry_after_max=300.0)
    stop = FakeStop()
    assert s.send_oldest(stop)
    assert stop.waits == [7.0, 42.0, 300.0]


@pytest.mark.parametrize("value,expected", [("0", 0.0), ("120", 120.0), ("soon", None), ("", None), (None, None)])
def test_retry_after_parsing(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value, 0.0) == expected


def test_a_4xx_other_than_429_is_dropped_and_counted() -> None:
    buf = MemoryBuffer(1 << 20)
    buf.put(b"bad", 4)
    buf.put(b"good", 2)
    s = shipper(answers(status(400, "label name is empty"), status(204)), buf)
    stop = FakeStop()
    assert s.send_oldest(stop) and s.send_oldest(stop)
    assert stop.waits == []  # no retry of a request the server will never accept
    assert (s.stats.rejected_requests, s.stats.rejected_samples, s.stats.samples_sent) == (1, 4, 2)
    assert len(buf) == 0


def test_stop_during_backoff_keeps_the_request_buffered() -> None:
    buf = MemoryBuffer(1 << 20)
    buf.put(b"x", 1)
    s = shipper(FakeTransport(lambda body, headers: status(503)), buf)
    assert not s.send_oldest(FakeStop(stop_after=2))
    assert len(buf) == 1 and s.stats.samples_sent == 0 and s.stats.retries == 2


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    bodies: ClassVar[list[bytes]] = []
    close_after_first = False

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if self.close_after_first:
            self.close_connection = True  # like a server closing an idle kept-alive connection

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[Recorder]]]:
    handler = type("H", (Recorder,), {"bodies": []})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/api/v1/write", handler
    finally:
        srv.shutdown()
        srv.server_close()


def test_http_transport_keeps_alive_and_reconnects_when_the_server_closed(
        http_server: tuple[str, type[Recorder]]) -> None:
    url, handler = http_server
    t = HttpTransport(url)
    assert t.post(b"one", {"Content-Type": "application/x-protobuf"}).status == 204
    first = t._conn
    assert t.post(b"two", {}).status == 204 and t._conn is first  # the same connection
    handler.close_after_first = True
    assert t.post(b"three", {}).status == 204  # the server closes this connection after answering
    assert t.post(b"four", {}).status == 204  # a new connection, no error surfaced
    assert handler.bodies == [b"one", b"two", b"three", b"four"]
    t.close()


def test_http_transport_raises_when_nothing_listens() -> None:
    t = HttpTransport(f"http://127.0.0.1:{_closed_port()}/api/v1/write", timeout=5)
    with pytest.raises(ConnectionRefusedError):
        t.post(b"x", {})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
