"""api/_reqhead.pyx against httptools and uvicorn's callbacks: whatever ``parse_request`` reads,
httptools reads as one whole GET, or one whole POST, with the same target, headers, keep-alive and
body; typical dashboard requests (Grafana's GETs and form POSTs) are read; anything else (a GET's
body, a POST's body not whole or with more after it, odd lengths, upgrades, pipelined or partial
reads, HTTP/1.0, odd bytes) is left to httptools (hypothesis)."""

from __future__ import annotations

import re
from typing import Any

import httptools
import pytest
from clearsight.api._reqhead import LENGTH_DIGITS, MAX_HEADERS, parse_request
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st


class _Uvicorn:
    """What uvicorn's httptools protocol records of a read (its callbacks, as httptools_impl.py)."""

    def __init__(self) -> None:
        self.messages = 0
        self.complete = 0
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.body_parts = 0
        self.parser: Any = None
        self.keep_alive = False

    def on_message_begin(self) -> None:
        self.messages += 1
        self.url = b""
        self.headers = []
        self.body = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()  # (as uvicorn asks: the flags of this message)

    def on_body(self, body: bytes) -> None:
        self.body += body
        self.body_parts += 1

    def on_message_complete(self) -> None:
        self.complete += 1


Read = tuple[bytes, bytes, list[tuple[bytes, bytes]], bool, bytes | None]


def _httptools(data: bytes) -> Read | None:
    """httptools' reading of ``data`` as uvicorn makes it, when it is one whole GET/1.1 without a
    body, or one whole POST/1.1 (its body, None for the GET), and nothing after it; else None."""
    rec = _Uvicorn()
    parser = rec.parser = httptools.HttpRequestParser(rec)
    try:
        parser.feed_data(data)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        return None
    method = parser.get_method()
    if rec.messages != 1 or rec.complete != 1 or method not in (b"GET", b"POST") \
            or parser.get_http_version() != "1.1" or (method == b"GET" and rec.body_parts):
        return None
    url: Any = httptools.parse_url(rec.url)
    return url.path, url.query or b"", rec.headers, rec.keep_alive, rec.body if method == b"POST" else None


GRAFANA = (b"GET /api/v1/query?query=sum%20by%20(instance)%20(rate(x%5B5m%5D))&time=1796654649.189 HTTP/1.1\r\n"
           b"Host: 127.0.0.1:9090\r\nUser-Agent: Grafana/10.4.1\r\nAccept: application/json, text/plain, */*\r\n"
           b"Accept-Encoding: gzip, deflate\r\nX-Grafana-Org-Id: 1\r\nX-Dashboard-Uid: rYdddlPWk\r\n"
           b"X-Panel-Id: 20\r\n\r\n")
_FORM = b"query=sum+by+%28instance%29+%28rate%28x%5B5m%5D%29%29&time=1796654649.189"
GRAFANA_POST = (b"POST /api/v1/query HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nUser-Agent: Grafana/10.4.1\r\n"
                b"Content-Length: %d\r\nAccept: application/json, text/plain, */*\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\nAccept-Encoding: gzip\r\n"
                b"X-Grafana-Org-Id: 1\r\n\r\n%s" % (len(_FORM), _FORM))


@pytest.mark.parametrize("data", [
    GRAFANA,
    GRAFANA_POST,
    b"POST /api/v1/query HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    b"POST /api/v1/query?x=1 HTTP/1.1\r\ncontent-length:   3  \r\nConnection: close\r\n\r\na=b",
    b"POST /x HTTP/1.1\r\nContent-Length: 999999\r\n\r\n" + b"a" * 999999,
    b"POST /x HTTP/1.1\r\nContent-Length: 8\r\n\r\n\r\n\r\nGET ",  # body bytes are not a request
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET /a? HTTP/1.1\r\n\r\n",
    b"GET /a?b?c=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/labels HTTP/1.1\r\nConnection: keep-alive\r\nAuthorization: Bearer abc.def\r\n\r\n",
    b"GET /x HTTP/1.1\r\nConnection: Keep-Alive\r\nX-Empty:\r\nX-Sp: \t a b \t \r\n\r\n",
    b"GET /x HTTP/1.1\r\nConnection: CLOSE\r\n\r\n",
    b"GET /x HTTP/1.1\r\nconnection: close\r\n\r\n",
    b"GET /x HTTP/1.1\r\n" + b"".join(b"h%d: v\r\n" % i for i in range(MAX_HEADERS)) + b"\r\n",
])
def test_read_as_httptools_reads_it(data: bytes) -> None:
    if len(data) > 20000:  # longer than the express path reads: httptools' alone
        assert parse_request(data) is None
        return
    got = parse_request(data)
    assert got is not None
    assert got == _httptools(data)


@pytest.mark.parametrize("data", [
    GRAFANA[:-2],  # headers not complete
    GRAFANA + GRAFANA,  # pipelined
    GRAFANA + b"x",  # a body without a length, or the next request's start
    GRAFANA_POST[:-1],  # the body not whole
    GRAFANA_POST + b"x",  # more after the body
    GRAFANA_POST + GRAFANA,  # pipelined
    b"POST /x HTTP/1.1\r\n\r\n",  # no length
    b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
    b"POST /x HTTP/1.1\r\nContent-Length: 01\r\n\r\na",
    b"POST /x HTTP/1.1\r\nContent-Length: +1\r\n\r\na",
    b"POST /x HTTP/1.1\r\nContent-Length: 1 1\r\n\r\na",
    b"POST /x HTTP/1.1\r\nContent-Length:\r\n\r\n",
    b"POST /x HTTP/1.1\r\nContent-Length: 0000000\r\n\r\n",
    b"POST /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % 10 ** LENGTH_DIGITS,
    b"POST /x HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\na",
    b"POST /x HTTP/1.0\r\nContent-Length: 1\r\n\r\na",
    b"POST  /x HTTP/1.1\r\nContent-Length: 1\r\n\r\na",
    b"PUT /x HTTP/1.1\r\nContent-Length: 1\r\n\r\na",
    b"post /x HTTP/1.1\r\nContent-Length: 1\r\n\r\na",
    b"GET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    b"GET /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
    b"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /x HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
    b"GET /x HTTP/1.1\r\nTrailer: X-Checksum\r\n\r\n",
    b"GET /x HTTP/1.1\r\nConnection: keep-alive, x-private\r\n\r\n",
    b"GET /x HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\n",  # a list: httptools' own reading
    b"GET /x HTTP/1.0\r\n\r\n",
    b"GET /x HTTP/1.1\r\n" + b"".join(b"h%d: v\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n",
    b"GET /x#frag HTTP/1.1\r\n\r\n",
    b"GET http://h/x HTTP/1.1\r\n\r\n",
    b"GET /x y HTTP/1.1\r\n\r\n",
    b"GET  /x HTTP/1.1\r\n\r\n",
    b"\r\nGET /x HTTP/1.1\r\n\r\n",
    b"GET /x HTTP/1.1\r\nX: a\r\n b\r\n\r\n",  # obs-fold
    b"GET /x HTTP/1.1\r\n X: a\r\n\r\n",
    b"GET /x HTTP/1.1\r\nX : a\r\n\r\n",
    b"GET /x HTTP/1.1\r\nX: a\nY: b\r\n\r\n",  # bare LF
    b"GET /x HTTP/1.1\r\nX: a\rY: b\r\n\r\n",  # bare CR
    b"GET /x HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",  # obs-text
    b"GET /x HTTP/1.1\r\nX: a\x00b\r\n\r\n",
    b"GET /x\x7f HTTP/1.1\r\n\r\n",
    b"GET /x HTTP/1.1\n\n",
    b"get /x HTTP/1.1\r\n\r\n",
])
def test_left_to_httptools(data: bytes) -> None:
    assert parse_request(data) is None


_TARGET = st.text(alphabet="abcXYZ019-._~!$&'()*+,;=:@/?%", max_size=40).map(lambda t: ("/" + t).encode())
_TOKEN = st.text(alphabet="abcxyzABCXYZ0189!#$%&'*+-.^_`|~", min_size=1, max_size=20).map(str.encode)
_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.just("\t"),
                 max_size=30).map(str.encode)
_HEADER = st.tuples(_TOKEN | st.sampled_from([b"Connection", b"connection", b"Content-Length", b"Upgrade",
                                                b"Expect", b"Transfer-Encoding", b"Host", b"Accept-Encoding"]),
                    _VALUE | st.sampled_from([b"keep-alive", b"close", b"Close, keep-alive", b"0", b"upgrade"]))


@st.composite
def _requests(draw: st.DrawFn) -> bytes:
    """A GET, or a POST with a body and mostly its right length (sometimes none, two, a wrong one,
    or odd digits), and sometimes bytes after the body."""
    headers = draw(st.lists(_HEADER, max_size=8))
    post = draw(st.booleans())
    body = b""
    if post:
        body = draw(st.binary(max_size=40) | _VALUE)
        lengths = draw(st.sampled_from(["right", "right", "right", "none", "two", "wrong", "odd"]))
        if lengths == "right":
            length = [b"%d" % len(body)]
        elif lengths == "two":
            length = [b"%d" % len(body)] * 2
        elif lengths == "wrong":
            length = [b"%d" % draw(st.integers(0, 60))]
        elif lengths == "odd":
            length = [draw(st.sampled_from([b"0%d", b"+%d", b" %d ", b"%d,%d", b"%d0", b"-%d"])).replace(
                b"%d", b"%d" % len(body))]
        else:
            length = []
        for value in length:
            headers.insert(draw(st.integers(0, len(headers))), (b"Content-Length", value))
        body += draw(st.sampled_from([b"", b"", b"", b"x", b"GET / HTTP/1.1\r\n\r\n"]))
    head = (b"POST " if post else b"GET ") + draw(_TARGET) + b" HTTP/1.1\r\n" \
        + b"".join(n + b": " + v + b"\r\n" for n, v in headers)
    return head + b"\r\n" + body


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(_requests()))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from([0, 9, 10, 13, 32, 58, 0x7F, 0x80, 0xFF, ord("?"), ord("#"), ord("a")]))
        if op == "insert":
            data[i:i] = bytes([byte])
        elif i < len(data):
            if op == "delete":
                del data[i]
            else:
                data[i] = byte
    return bytes(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests() | _mutated() | st.binary(max_size=200))
@example(GRAFANA)
@example(GRAFANA_POST)
def test_whatever_it_reads_httptools_reads_alike(data: bytes) -> None:
    got = parse_request(data)
    if got is not None:
        assert got == _httptools(data)


@settings(max_examples=300, deadline=None)
@given(_requests())
def test_plain_requests_are_read(data: bytes) -> None:
    """A well-formed GET without the refused headers, or such a POST with one canonical
    content-length and exactly that body, is read (the lane's common case), as httptools does."""
    want = _httptools(data)
    if want is None:  # (a refused header's value httptools rejects: an empty Content-Length)
        assert parse_request(data) is None
        return
    refused = {b"transfer-encoding", b"upgrade", b"expect"}
    names = {n for n, _ in want[2]}
    connection_ok = all(v.lower() in (b"keep-alive", b"close") for n, v in want[2] if n == b"connection")
    lengths = [v for n, v in want[2] if n == b"content-length"]
    body = want[4]
    if body is None:
        plain = not lengths
    else:
        plain = (len(lengths) == 1 and re.fullmatch(rb"0|[1-9][0-9]{0,%d}" % (LENGTH_DIGITS - 1), lengths[0]) is not None
                 and data.index(b"\r\n\r\n") + 4 + len(body) == len(data))
    if plain and not names & refused and connection_ok:
        assert parse_request(data) == want
