"""api/http_middleware.HotRoutes: the query and read routes answered in one pass give the answers
the full middleware stack gave (gzip when accepted and worth it, ``Vary``, the error envelope), other
methods still get the stack's 405, an exception becomes a 500, and middleware registered before the
HTTP middleware (it would be skipped) turns the hot routes off."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearsight.api.app import HOT_PATHS, create_app
from clearsight.api.common import success
from clearsight.api.http_middleware import GZIP_MINIMUM_BYTES, HotLaneApp, HotRoutes, install_http_middleware
from clearsight.api.prometheus_query import PARTS_MIN_POINTS
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import build

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    built = build(cfg)
    try:
        app = create_app(built.services)
        with TestClient(app) as c:
            now = int(time.time() * 1000)
            series = [TimeSeries([("__name__", "node_cpu_seconds_total"), ("cpu", str(i)), ("mode", "idle")],
                                 [(now - 15_000, 1.0), (now, 2.0)]) for i in range(60)]
            r = c.post("/api/v1/write", content=encode_snappy(WriteRequest(series, [])), headers=RW_HEADERS)
            assert r.status_code == 204
            yield c
    finally:
        built.store.close()


def test_the_hot_routes_are_installed_in_the_app(client: TestClient) -> None:
    stack = client.app.build_middleware_stack()  # type: ignore[attr-defined]
    found = []
    node: object = stack
    while node is not None:
        if isinstance(node, HotRoutes):
            found.append(node)
        node = getattr(node, "app", None)
    assert len(found) == 1 and set(found[0].routes) == HOT_PATHS


@pytest.mark.parametrize("path, params", [
    ("/api/v1/query", {"query": "node_cpu_seconds_total", "time": str(time.time())}),
    ("/api/v1/query_range", {"query": "node_cpu_seconds_total", "start": str(time.time() - 60),
                             "end": str(time.time()), "step": "15"}),
    ("/api/v1/series", {"match[]": "node_cpu_seconds_total"}),
    ("/api/v1/labels", {}),
])
def test_gzip_and_vary_as_the_gzip_middleware_does(client: TestClient, path: str, params: dict[str, str]) -> None:
    plain = client.get(path, params=params, headers={"Accept-Encoding": "identity"})
    zipped = client.get(path, params=params, headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == zipped.status_code == 200
    assert plain.headers["content-type"] == zipped.headers["content-type"] == "application/json"
    assert "content-encoding" not in plain.headers
    assert int(plain.headers["content-length"]) == len(plain.content)
    body = plain.json()
    assert body["status"] == "success"
    if len(plain.content) >= GZIP_MINIMUM_BYTES:
        assert plain.headers["vary"] == zipped.headers["vary"] == "Accept-Encoding"
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.json() == body  # httpx decoded the gzip member (a bad one raises)
    else:
        assert "vary" not in plain.headers and "content-encoding" not in zipped.headers


def test_small_bodies_and_errors_keep_their_shape(client: TestClient) -> None:
    r = client.get("/api/v1/query", params={"query": "up"}, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and "vary" not in r.headers and "content-encoding" not in r.headers
    bad = client.get("/api/v1/query", params={"query": "sum("})
    assert bad.status_code == 400
    assert bad.json()["errorType"] == "bad_data"
    post = client.post("/api/v1/query", data={"query": "node_cpu_seconds_total"})
    assert post.status_code == 200 and len(post.json()["data"]["result"]) == 60
    head = client.head("/api/v1/query", params={"query": "up"})  # not a hot method: the full stack
    assert head.status_code == 200 and head.content == b""


def test_an_escaping_exception_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    seen: list[tuple[int, bytes]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg: dict[str, object]) -> None:
        if msg["type"] == "http.response.start":
            seen.append((int(msg["status"]), b""))  # type: ignore[call-overload]
        else:
            seen.append((0, bytes(msg["body"])))  # type: ignore[call-overload]

    async def unused(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the hot route must answer")

    scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": []}
    with caplog.at_level(logging.ERROR, logger="clearsight.api.http"):
        asyncio.run(HotRoutes(unused, {"/x": broken})(scope, receive, send))  # type: ignore[arg-type]
    assert seen == [(500, b""), (0, b"Internal Server Error")]
    assert "unhandled error in /x" in caplog.text


class PathMarker:
    """A middleware that records the path of every HTTP request it sees."""

    def __init__(self, app: ASGIApp, calls: list[str]) -> None:
        self.app = app
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.calls.append(scope["path"])
        await self.app(scope, receive, send)


def test_middleware_registered_first_turns_the_hot_routes_off(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    async def handler(request: Request) -> Response:
        return Response("ok")

    app = FastAPI()
    app.add_middleware(PathMarker, calls=calls)  # e.g. an authentication layer added before the HTTP middleware
    app.add_api_route("/x", handler, methods=["GET"])
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    with caplog.at_level(logging.WARNING, logger="clearsight.api.http"):
        install_http_middleware(app, cfg, {"/x": handler})
    assert "hot routes not installed" in caplog.text
    with TestClient(app) as c:
        assert c.get("/x").text == "ok"
    assert calls == ["/x"]


def test_the_hot_lane_skips_fastapis_own_layers_and_keeps_the_registered_ones(tmp_path: Path) -> None:
    calls: list[str] = []

    async def handler(request: Request) -> Response:
        return Response("hot")

    async def other(request: Request) -> Response:
        return Response("cold")

    app = HotLaneApp()
    app.add_api_route("/x", handler, methods=["GET", "POST"])
    app.add_api_route("/w", handler, methods=["POST"])
    app.add_api_route("/y", other, methods=["GET"])
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    install_http_middleware(app, cfg, {"/x": handler, "/w": handler}, {"/x": frozenset({"GET", "POST"}),
                                                                      "/w": frozenset({"POST"})})
    app.add_middleware(PathMarker, calls=calls)  # registered after: outside the hot routes, so it stays in the lane
    c = TestClient(app)  # no lifespan: nothing else builds Starlette's stack
    assert c.get("/x").text == "hot" and c.post("/w").text == "hot"
    assert app.middleware_stack is None  # the hot requests never entered FastAPI's own layers
    assert calls == ["/x", "/w"]
    assert c.get("/y").text == "cold"
    assert app.middleware_stack is not None and calls == ["/x", "/w", "/y"]
    wrong = c.get("/w")  # a method the route does not have: the full stack's 405
    assert wrong.status_code == 405 and calls[-1] == "/w"


def test_remote_write_takes_the_lane_and_a_get_is_still_405(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, HotLaneApp)
    assert app.hot_methods["/api/v1/write"] == frozenset({"POST"})
    now = int(time.time() * 1000)
    body = encode_snappy(WriteRequest([TimeSeries([("__name__", "lane_probe")], [(now, 7.0)])], []))
    assert client.post("/api/v1/write", content=body, headers=RW_HEADERS).status_code == 204
    got = client.get("/api/v1/query", params={"query": "lane_probe", "time": str(now / 1000)}).json()
    assert [r["value"][1] for r in got["data"]["result"]] == ["7"]
    r = client.get("/api/v1/write")
    assert r.status_code == 405 and r.json()["errorType"] == "bad_data"


def test_a_large_answer_is_sent_in_parts_with_the_same_json(client: TestClient) -> None:
    """A range answer of more than PARTS_MIN_POINTS points leaves in several body messages (the
    event loop free between them), plain or gzip, with the JSON the small-answer path gives."""
    messages: list[dict[str, object]] = []

    class Recorder:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            async def recording(message: Message) -> None:
                messages.append(message)
                await send(message)
            await self.app(scope, receive, recording)

    recorded = TestClient(Recorder(client.app))  # the started app, its responses recorded on their way out
    now_ms = int(time.time() * 1000)
    series = [TimeSeries([("__name__", "parts_probe"), ("i", str(i))],
                         [(now_ms - 1000 * k, float(k * i)) for k in range(300, -1, -1)]) for i in range(60)]
    assert client.post("/api/v1/write", content=encode_snappy(WriteRequest(series, [])),
                       headers=RW_HEADERS).status_code == 204
    params = {"query": "parts_probe", "start": str(now_ms / 1000 - 290), "end": str(now_ms / 1000), "step": "1"}
    plain = recorded.get("/api/v1/query_range", params=params, headers={"Accept-Encoding": "identity"})
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert plain.status_code == 200 and len(bodies) > 1
    assert [bool(m.get("more_body")) for m in bodies] == [True] * (len(bodies) - 1) + [False]
    assert int(plain.headers["content-length"]) == len(plain.content)
    assert plain.headers["vary"] == "Accept-Encoding"
    result = plain.json()["data"]["result"]
    assert len(result) == 60 and sum(len(r["values"]) for r in result) > PARTS_MIN_POINTS
    assert plain.content == success(plain.json()["data"]).body  # the bytes one orjson.dumps gives
    zipped = client.get("/api/v1/query_range", params=params, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == plain.content
