"""api/http_limits.py's uvicorn protocol over real sockets: a response's head and body leave in one
send, a streamed response's headers are not held back until its body, requests whose headers are
overdue are closed by the periodic sweep, and an idle keep-alive connection is not (it is uvicorn's
keep-alive timeout that closes those)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from clearsight.api.http_limits import _HeadThenBody, header_deadline_protocol
from tests.support.peers import free_port

DEADLINE = 0.5  # header deadline of the server under test (seconds)
WAIT = 30.0  # socket timeout: far above the deadline
BODY = b'{"status":"success"}'


class App:
    """``/small`` answers at once (with a length); ``/stream`` sends its headers, then its body once ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        headers = [(b"content-type", b"application/json")]
        if scope["path"] == "/small":
            headers.append((b"content-length", str(len(BODY)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["path"] == "/stream":  # chunked
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": BODY})


def _serve(keep_alive: int) -> Iterator[tuple[int, App]]:
    app = App()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off",
                            http=header_deadline_protocol(DEADLINE), timeout_keep_alive=keep_alive)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.01)
    yield port, app
    srv.should_exit = True
    thread.join(timeout=WAIT)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, App]]:
    yield from _serve(60)


@pytest.fixture(scope="module")
def impatient() -> Iterator[tuple[int, App]]:
    """Keep-alive timeout of 1 s (uvicorn's are whole seconds)."""
    yield from _serve(1)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT)


def _read_response(s: socket.socket) -> bytes:
    data = b""
    while not data.endswith((BODY, BODY + b"\r\n0\r\n\r\n")):
        chunk = s.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


class Recording:
    """The kernel side of a transport: what each write call would send."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sends.append(data)

    def writelines(self, parts: tuple[bytes, ...]) -> None:
        self.sends.append(b"".join(parts))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_head_is_sent_with_the_first_body_write_then_writes_pass_through() -> None:
    async def run() -> Recording:
        rec = Recording()
        t = _HeadThenBody(rec, asyncio.get_running_loop())
        t.write(b"HEAD")
        t.write(b"body1")
        t.write(b"body2")
        await asyncio.sleep(0)  # the end-of-step flush finds nothing held
        assert t.get_extra_info("peername") == "info:peername"  # everything else is the transport's
        return rec

    assert asyncio.run(run()).sends == [b"HEADbody1", b"body2"]


def test_head_without_a_body_in_the_same_step_is_sent_at_the_end_of_the_step() -> None:
    async def run() -> list[list[bytes]]:
        rec = Recording()
        t = _HeadThenBody(rec, asyncio.get_running_loop())
        t.write(b"HEAD")
        seen = [list(rec.sends)]
        await asyncio.sleep(0)
        seen.append(list(rec.sends))
        t.write(b"late body")
        seen.append(list(rec.sends))
        return seen

    assert asyncio.run(run()) == [[], [b"HEAD"], [b"HEAD", b"late body"]]


def test_close_sends_a_held_head_first() -> None:
    async def run() -> Recording:
        rec = Recording()
        t = _HeadThenBody(rec, asyncio.get_running_loop())
        t.write(b"HEAD")
        t.close()
        await asyncio.sleep(0)
        return rec

    rec = asyncio.run(run())
    assert rec.sends == [b"HEAD"] and rec.closed


def test_head_and_body_arrive_in_one_read(server: tuple[int, App]) -> None:
    port, _ = server
    with _connect(port) as s:
        for _ in range(3):  # keep-alive: every response of the connection
            s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
            first = s.recv(65536)
            assert first.startswith(b"HTTP/1.1 200 OK\r\n")
            assert first.endswith(b"\r\n\r\n" + BODY)


def test_streamed_headers_are_sent_before_the_body(server: tuple[int, App]) -> None:
    port, app = server
    app.release.clear()
    with _connect(port) as s:
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:  # the body is held by the app until release is set
            chunk = s.recv(65536)
            assert chunk, "connection closed before the headers"
            head += chunk
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and BODY not in head
        app.release.set()
        assert (head + _read_response(s)).endswith(BODY + b"\r\n0\r\n\r\n")


@pytest.mark.parametrize("partial", [b"", b"GET /small HT", b"GET /small HTTP/1.1\r\nHost: x\r\n"])
def test_overdue_headers_close_the_connection(server: tuple[int, App], partial: bytes) -> None:
    port, _ = server
    with _connect(port) as s:
        s.sendall(partial)
        assert s.recv(65536) == b""  # closed by the server, well before WAIT


def test_deadline_counts_from_the_next_request_not_the_previous_one(server: tuple[int, App]) -> None:
    port, _ = server
    with _connect(port) as s:
        s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(s).startswith(b"HTTP/1.1 200 OK")
        time.sleep(DEADLINE * 3)  # idle between requests: not a header deadline
        s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(s).startswith(b"HTTP/1.1 200 OK")
        s.sendall(b"GET /small HT")  # the next one stalls: closed
        assert s.recv(65536) == b""


def test_idle_keep_alive_connection_is_closed_after_its_last_answer(impatient: tuple[int, App]) -> None:
    port, _ = impatient
    with _connect(port) as s:
        s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(s).startswith(b"HTTP/1.1 200 OK")
        assert s.recv(65536) == b""  # idle: closed by the sweep, well before WAIT


def test_a_request_in_progress_is_not_idle(impatient: tuple[int, App]) -> None:
    """A request that came after an answer and takes longer than the keep-alive timeout to answer
    is not closed as idle: a connection is idle from its last answer until its next byte."""
    port, app = impatient
    app.release.clear()
    with _connect(port) as s:
        s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(s).startswith(b"HTTP/1.1 200 OK")
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(65536)
            assert chunk, "connection closed before the headers"
            head += chunk
        time.sleep(2.5)  # the body is held more than twice the keep-alive timeout
        app.release.set()
        assert (head + _read_response(s)).endswith(BODY + b"\r\n0\r\n\r\n")


def test_pipelined_requests_are_answered_then_the_idle_connection_closed(impatient: tuple[int, App]) -> None:
    port, _ = impatient
    with _connect(port) as s:
        s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        data = b""
        while data.count(BODY) < 3:
            chunk = s.recv(65536)
            assert chunk, f"connection closed after {data!r}"
            data += chunk
        assert data.count(b"HTTP/1.1 200 OK") == 3
        assert s.recv(65536) == b""
