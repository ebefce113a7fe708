"""zstd responses (api/zstd_responses.py) on the real app: chosen when ``Accept-Encoding`` accepts zstd,
on hot and ordinary routes alike, the body decompressing to the identity answer; gzip otherwise;
small, already encoded and q=0 cases untouched."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import cramjam
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from clearsight.api.zstd_responses import ZstdMiddleware, accepts_zstd
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from tests.integration.test_remote_read import matcher, read_request
from tests.support.inproc import app_client

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from app_client(tmp_path / "data")


def _raw(
    c: TestClient,
    method: str,
    path: str,
    accept: str,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    with c.stream(method, path, headers={**(headers or {}), "Accept-Encoding": accept}, content=content) as r:
        return r.status_code, dict(r.headers), b"".join(r.iter_raw())


def test_zstd_when_accepted_on_hot_and_plain_routes(client: TestClient) -> None:
    now = int(time.time() * 1000)
    series = [TimeSeries([("__name__", "z_m"), ("i", str(i))], [(now - 1000, float(i))]) for i in range(200)]
    assert (
        client.post("/api/v1/write", content=encode_snappy(WriteRequest(series)), headers=RW).status_code
        == 204
    )
    for path in ("/api/v1/series?match[]=z_m", f"/api/v1/query?query=z_m&time={now / 1000}", "/openapi.json"):
        status, headers, plain = _raw(client, "GET", path, "identity")
        assert status == 200 and "content-encoding" not in headers and len(plain) > 1024, path
        status, headers, body = _raw(client, "GET", path, "gzip, deflate, br, zstd")
        assert status == 200 and headers["content-encoding"] == "zstd", (path, headers)
        assert "accept-encoding" in headers["vary"].lower()
        assert int(headers["content-length"]) == len(body) < len(plain)
        assert bytes(cramjam.zstd.decompress(body)) == plain, path
        _, headers, body = _raw(client, "GET", path, "gzip, zstd;q=0")
        assert headers["content-encoding"] == "gzip", path
        assert bytes(cramjam.gzip.decompress(body)) == plain, path


def test_small_and_already_encoded_bodies_are_left_alone(client: TestClient) -> None:
    _, headers, body = _raw(client, "GET", "/api/v1/query?query=1%2B1", "zstd")
    assert "content-encoding" not in headers and b'"2"' in body
    now = int(time.time() * 1000)
    series = [TimeSeries([("__name__", "rr"), ("i", str(i))], [(now - 1000, float(i))]) for i in range(100)]
    assert (
        client.post("/api/v1/write", content=encode_snappy(WriteRequest(series)), headers=RW).status_code
        == 204
    )
    req = read_request([(now - 60_000, now, [matcher(0, "__name__", "rr")])])
    status, headers, body = _raw(
        client,
        "POST",
        "/api/v1/read",
        "zstd",
        content=req,
        headers={
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
        },
    )
    assert status == 200 and headers["content-encoding"] == "snappy"  # remote-read's own encoding, untouched
    assert len(bytes(cramjam.snappy.decompress_raw(body))) > 0


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (b"zstd", True),
        (b"gzip, zstd", True),
        (b"br;q=1.0, ZSTD;q=0.5", True),
        (b"zstd;q=0", False),
        (b"zstd;q=0.0", False),
        (b"zstd;q=x", False),
        (b"gzip", False),
        (b"", False),
        (b"zstdx", False),
        (b"*", False),
    ],
)
def test_accepts_zstd(value: bytes, ok: bool) -> None:
    assert accepts_zstd(value) is ok


def test_streamed_answers_are_one_frame_flushed_per_piece() -> None:
    pieces = [b"%d " % i * 300 for i in range(5)]

    async def stream(request: Request) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            for p in pieces:
                yield p

        return StreamingResponse(gen(), media_type="application/x-ndjson")

    app = ZstdMiddleware(
        Starlette(routes=[Route("/s", stream)]), minimum_size=1024, thread_minimum_size=1 << 20
    )
    c = TestClient(app)
    _, headers, body = _raw(c, "GET", "/s", "gzip, zstd")
    assert headers["content-encoding"] == "zstd" and "content-length" not in headers
    assert bytes(cramjam.zstd.decompress(body)) == b"".join(pieces)
    _, headers, body = _raw(c, "GET", "/s", "gzip")  # not accepted: untouched
    assert "content-encoding" not in headers and body == b"".join(pieces)
