"""The shipper: what it sends (decoded with the server's own remote-write decoder) and how it retries."""

from __future__ import annotations

import email.utils

import cramjam
import httpx
import pytest

from clearsight.agent.buffer import MemoryBuffer
from clearsight.agent.sample import sample
from clearsight.agent.shipper import Encoder, Shipper, retry_after_seconds
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


def shipper(handler: httpx.MockTransport, buf: MemoryBuffer, **kw: object) -> Shipper:
    return Shipper(URL, buf, client=httpx.Client(transport=handler), rng=lambda: 0.5,
                   wall_clock=lambda: 1_700_000_000.0, **kw)  # type: ignore[arg-type]


def test_sends_remote_write_headers_and_acks() -> None:
    seen: list[httpx.Request] = []

    def handle(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(204)

    buf = MemoryBuffer(1 << 20)
    payload, n = Encoder({"instance": "h", "job": "node"}).encode([sample("a", 1.0)], 5)[0]
    buf.put(payload, n)
    s = shipper(httpx.MockTransport(handle), buf)
    assert s.send_oldest(FakeStop())
    (req,) = seen
    assert req.headers["Content-Encoding"] == "snappy"
    assert req.headers["Content-Type"] == "application/x-protobuf"
    assert req.headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert decode(req.content) == [((("__name__", "a"), ("instance", "h"), ("job", "node")), 5, 1.0)]
    assert len(buf) == 0 and s.stats.samples_sent == 1 and s.stats.requests_sent == 1
    assert not s.send_oldest(FakeStop())  # nothing left


def test_retries_5xx_429_and_connection_errors_with_backoff_then_delivers() -> None:
    answers = [httpx.ConnectError("refused"), httpx.Response(503), httpx.Response(429), httpx.Response(500),
               httpx.Response(200)]

    def handle(req: httpx.Request) -> httpx.Response:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    buf = MemoryBuffer(1 << 20)
    buf.put(b"x", 3)
    s = shipper(httpx.MockTransport(handle), buf, backoff_min=1.0, backoff_max=5.0)
    stop = FakeStop()
    assert s.send_oldest(stop)
    # full jitter with rng=0.5: min + 0.5 * (min(max, min * 2**attempt) - min)
    assert stop.waits == [1.0, 1.5, 2.5, 3.0]
    assert s.stats.retries == 4 and s.stats.samples_sent == 3 and len(buf) == 0


def test_retry_after_is_honoured_and_capped() -> None:
    date = email.utils.formatdate(1_700_000_000.0 + 42, usegmt=True)
    answers = [httpx.Response(503, headers={"Retry-After": "7"}),
               httpx.Response(429, headers={"Retry-After": date}),
               httpx.Response(429, headers={"Retry-After": "99999"}),
               httpx.Response(204)]
    buf = MemoryBuffer(1 << 20)
    buf.put(b"x", 1)
    s = shipper(httpx.MockTransport(lambda req: answers.pop(0)), buf, retry_after_max=300.0)
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
    answers = [httpx.Response(400, text="label name is empty"), httpx.Response(204)]
    s = shipper(httpx.MockTransport(lambda req: answers.pop(0)), buf)
    stop = FakeStop()
    assert s.send_oldest(stop) and s.send_oldest(stop)
    assert stop.waits == []  # no retry of a request the server will never accept
    assert (s.stats.rejected_requests, s.stats.rejected_samples, s.stats.samples_sent) == (1, 4, 2)
    assert len(buf) == 0


def test_stop_during_backoff_keeps_the_request_buffered() -> None:
    buf = MemoryBuffer(1 << 20)
    buf.put(b"x", 1)
    s = shipper(httpx.MockTransport(lambda req: httpx.Response(503)), buf)
    assert not s.send_oldest(FakeStop(stop_after=2))
    assert len(buf) == 1 and s.stats.samples_sent == 0 and s.stats.retries == 2
