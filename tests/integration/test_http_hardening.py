"""Bounded HTTP against the real ``clearsight server`` process over real sockets: slow headers and
idle keep-alive connections are closed, a trickled body gets 408, bodies in flight are capped
globally (503 + Retry-After before the body is read; chunked bodies counted as they arrive) and per
request (413), connections are limited (503); the Host header (421), the write Content-Type (415)
and the tenant header (400) are checked before anything is read."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_write_request, snappy
from tests.support.peers import Proc, start_clearsight

WAIT = 30.0  # socket timeout: far above every deadline configured below


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """Deadlines of one second."""
    cs = start_clearsight(tmp_path_factory.mktemp("impatient"), config_yaml="""
server:
  header_read_timeout: 1s
  body_read_timeout: 1s
  keep_alive_timeout: 1s
tenancy:
  trust_tenant_header: true
""")
    yield cs
    cs.stop()


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """Long deadlines, small byte and connection caps."""
    cs = start_clearsight(tmp_path_factory.mktemp("patient"), config_yaml="""
server:
  header_read_timeout: 60s
  body_read_timeout: 60s
  keep_alive_timeout: 60s
  max_connections: 6
  max_inflight_body_bytes: 100000
  allowed_hosts: metrics.internal
limits:
  max_body_bytes: 90000
""")
    yield cs
    cs.stop()


def _connect(cs: Proc) -> socket.socket:
    host, port = cs.url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=WAIT)
    return s


def _read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a timeout fails the test)."""
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def _read_head(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def _post_head(cs: Proc, length: int | None, path: str = "/api/v1/write") -> bytes:
    host = cs.url.removeprefix("http://")
    size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-protobuf\r\n"
            f"Content-Encoding: snappy\r\n{size}\r\n\r\n").encode()


def test_slow_headers_connection_is_closed(impatient: Proc) -> None:
    with _connect(impatient) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the headers never end
        assert _read_until_closed(s) == b""
    with _connect(impatient) as s:  # connects and sends nothing
        assert _read_until_closed(s) == b""


def test_idle_keep_alive_connection_is_closed(impatient: Proc) -> None:
    with _connect(impatient) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = _read_until_closed(s)  # the answer, then the close once idle
        assert data.startswith(b"HTTP/1.1 200")


def test_trickled_body_gets_408(impatient: Proc) -> None:
    with _connect(impatient) as s:
        s.sendall(_post_head(impatient, 1000) + b"x" * 10)  # 990 bytes never come
        data = _read_until_closed(s)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b"server.body_read_timeout" in data


def test_invalid_tenant_header_is_400(impatient: Proc) -> None:
    r = httpx.get(f"{impatient.url}/api/v1/labels", headers={"X-Scope-OrgID": "../../etc"}, timeout=WAIT)
    assert r.status_code == 400 and "invalid tenant header" in r.json()["error"]
    r = httpx.get(f"{impatient.url}/api/v1/labels", headers={"X-Scope-OrgID": "x" * 8000}, timeout=WAIT)
    assert r.status_code == 400 and "longer than 128" in r.json()["error"]
    assert httpx.get(f"{impatient.url}/api/v1/labels", headers={"X-Scope-OrgID": "team-a"},
                     timeout=WAIT).status_code == 200


def test_global_body_cap_answers_503_before_reading_the_body(patient: Proc) -> None:
    with _connect(patient) as a, _connect(patient) as b, _connect(patient) as c:
        a.sendall(_post_head(patient, 80_000) + b"x" * 100)  # holds 80 000 of the 100 000 bytes
        # b: Content-Length says 30 000: refused at once, nothing of its body sent
        b.sendall(_post_head(patient, 30_000))
        head = _read_until_closed(b)
        assert head.startswith(b"HTTP/1.1 503"), head
        assert b"retry-after: 1" in head.lower() and b"server.max_inflight_body_bytes" in head
        # c: chunked, counted as it arrives: the second 15 000-byte chunk crosses the cap
        c.sendall(_post_head(patient, None) + b"%x\r\n" % 15_000 + b"y" * 15_000 + b"\r\n")
        c.sendall(b"%x\r\n" % 15_000 + b"y" * 15_000 + b"\r\n")
        head = _read_until_closed(c)
        assert head.startswith(b"HTTP/1.1 503"), head
        # a finishes its body: it is handled (garbage, so 400), not refused
        a.sendall(b"x" * (80_000 - 100))
        head = _read_head(a)
        assert head.startswith(b"HTTP/1.1 400"), head
    # the bytes were released: the same request as b's fits now
    r = httpx.post(f"{patient.url}/api/v1/write", content=b"z" * 30_000, timeout=WAIT,
                   headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})
    assert r.status_code == 400  # decoded and refused as garbage: admitted


def test_body_over_the_per_request_cap_is_413_unread(patient: Proc) -> None:
    with _connect(patient) as s:
        s.sendall(_post_head(patient, 95_000))
        head = _read_until_closed(s)
    assert head.startswith(b"HTTP/1.1 413"), head


def test_connection_limit_answers_503(patient: Proc) -> None:
    """max_connections is 6: ten connections each ask once and keep the connection. A request answered
    200 keeps its connection open, so at most 5 can be answered 200 (the 6th would find 6 open);
    the others get 503 (whatever the order the server accepts and serves them in)."""
    held = [_connect(patient) for _ in range(10)]
    try:
        for s in held:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        statuses = [_read_head(s).split(b" ", 2)[1] for s in held]
    finally:
        for s in held:
            s.close()
    assert set(statuses) <= {b"200", b"503"} and statuses.count(b"503") >= 5, statuses
    # once they are closed the server takes connections again
    deadline = time.monotonic() + WAIT
    while httpx.get(f"{patient.url}/health", timeout=WAIT).status_code != 200:
        assert time.monotonic() < deadline, "the connection slots were not released"
        time.sleep(0.1)


def test_host_header_is_checked(patient: Proc) -> None:
    for host in ("evil.example", "rebind.attacker.example:9800"):
        r = httpx.get(f"{patient.url}/api/v1/labels", headers={"Host": host}, timeout=WAIT)
        assert r.status_code == 421 and "server.allowed_hosts" in r.json()["error"]
    port = patient.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"metrics.internal:{port}", f"127.0.0.1:{port}"):
        assert httpx.get(f"{patient.url}/api/v1/labels", headers={"Host": host}, timeout=WAIT).status_code == 200


def test_remote_write_needs_its_content_type(patient: Proc) -> None:
    body = snappy(encode_write_request(WriteRequest(timeseries=[
        TimeSeries(labels=[("__name__", "hardening_probe")], samples=[(1_700_000_000_000, 1.0)])])))
    for headers in ({}, {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}):
        r = httpx.post(f"{patient.url}/api/v1/write", content=body, headers=headers, timeout=WAIT)
        assert r.status_code == 415, r.text
    r = httpx.get(f"{patient.url}/api/v1/series", params={"match[]": "hardening_probe"}, timeout=WAIT)
    assert r.json()["data"] == []


def test_tiny_gzip_of_millions_of_otlp_points_is_refused(impatient: Proc) -> None:
    """8.6 KB of gzip, 3 million empty data points: a 400 naming the limit, and the server answers."""
    import gzip

    from google.rpc import status_pb2

    def field(number: int, payload: bytes) -> bytes:
        def varint(n: int) -> bytes:
            out = bytearray()
            while n > 0x7F:
                out.append(n & 0x7F | 0x80)
                n >>= 7
            return bytes([*out, n])

        return varint(number << 3 | 2) + varint(len(payload)) + payload

    raw = field(1, field(2, field(2, field(1, b"g") + field(5, b"\x0a\x00" * 3_000_000))))
    body = gzip.compress(raw, 9)
    assert len(body) < 10_000
    r = httpx.post(f"{impatient.url}/v1/metrics", content=body, timeout=WAIT,
                   headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert "more than 2000000 data points" in status_pb2.Status.FromString(r.content).message
    assert httpx.get(f"{impatient.url}/health", timeout=WAIT).status_code == 200
