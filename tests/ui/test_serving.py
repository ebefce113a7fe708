"""Serving the UI next to the APIs (in process): `/` for browsers vs the Elasticsearch probe, caching
headers, the SPA fallback, no shadowed API path, and the /ws/metrics protocol and origin check."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from clearsight.api.app import create_app
from clearsight.api.ui import DIST, make_ui_routes
from clearsight.api.ws_metrics import PANELS, origin_allowed
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import build

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def require_built_ui() -> None:
    if not (DIST / "index.html").is_file():
        raise AssertionError(f"the UI is not built ({DIST}): run `make setup` (npm ci + vite build in web/)")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("ui")
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp / "data")})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services), base_url="http://127.0.0.1:9800") as c:
            now = int(time.time() * 1000)
            series = [
                TimeSeries([("__name__", "node_memory_MemTotal_bytes"), ("instance", "h1"), ("job", "node")],
                           [(now - 20_000 * k, 1000.0) for k in range(5, -1, -1)]),
                TimeSeries([("__name__", "node_memory_MemAvailable_bytes"), ("instance", "h1"), ("job", "node")],
                           [(now - 20_000 * k, 250.0) for k in range(5, -1, -1)]),
            ]
            r = c.post("/api/v1/write", content=encode_snappy(WriteRequest(series)), headers=RW)
            assert r.status_code == 204
            yield c
    finally:
        built.store.close()
        if built.log_store is not None:
            built.log_store.close()


def test_root_serves_the_ui_to_browsers_and_the_es_probe_to_others(client: TestClient) -> None:
    require_built_ui()
    page = client.get("/", headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<div id="app">' in page.text
    for accept in (None, "application/json", "*/*"):
        probe = client.get("/", headers={"Accept": accept} if accept else {})
        assert probe.status_code == 200
        assert probe.headers["content-type"] == "application/json"
        assert probe.headers["x-elastic-product"] == "Elasticsearch"
        assert "version" in probe.json()
    head = client.head("/")
    assert head.status_code == 200 and head.headers["x-elastic-product"] == "Elasticsearch"


def test_assets_are_immutable_and_routes_fall_back_to_the_app(client: TestClient) -> None:
    require_built_ui()
    page = client.get("/ui/", headers=HTML)
    assets = [p for p in (DIST / "assets").iterdir() if p.suffix == ".js"]
    assert assets
    a = client.get(f"/ui/assets/{assets[0].name}")
    assert a.status_code == 200
    assert a.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in a.headers["content-type"]
    assert "/ui/assets/" in page.text
    for route in ("/ui/overview", "/ui/metrics", "/ui/logs/x/y", "/ui/alerts"):
        r = client.get(route, headers=HTML)
        assert r.status_code == 200 and r.text == page.text and r.headers["cache-control"] == "no-cache"
    assert client.get("/ui/assets/missing-abc.js").status_code == 404
    assert client.get("/ui/favicon.ico").status_code == 404
    assert client.get("/ui/..%2F..%2Fserver.py").status_code == 404
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"


def test_api_paths_are_not_shadowed(client: TestClient) -> None:
    r = client.get("/api/v1/nope", headers=HTML)
    assert r.status_code == 404 and r.json()["status"] == "error"
    assert client.get("/api/v1/labels", headers=HTML).json()["status"] == "success"
    assert client.get("/health", headers=HTML).status_code == 200


def test_not_built_answers_503_with_what_to_do(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.responses import Response

    async def probe(_r: object) -> Response:
        return Response("probe")

    app = Starlette(routes=make_ui_routes(probe, dist=tmp_path / "none"))
    with TestClient(app) as c:
        r = c.get("/", headers=HTML)
        assert r.status_code == 503 and "make setup" in r.text
        assert c.get("/").text == "probe"


def test_ws_metrics_sends_hello_backfill_and_ticks(client: TestClient) -> None:
    with client.websocket_connect("/ws/metrics?backfill=2m") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello"
        assert set(hello["panels"]) == {p.key for p in PANELS}
        first = ws.receive_json()  # the current values come before the history
        assert first["type"] == "tick"
        assert first["panels"]["memory"] == [{"metric": {"instance": "h1"}, "v": 75.0}]
        back = ws.receive_json()
        assert back["type"] == "backfill"
        [mem] = back["panels"]["memory"]
        assert mem["metric"] == {"instance": "h1"}
        assert len(mem["v"]) == len(back["t"])
        assert 75.0 in mem["v"]
        tick = ws.receive_json()
        assert tick["type"] == "tick"
        assert tick["panels"]["memory"] == [{"metric": {"instance": "h1"}, "v": 75.0}]
        assert tick["panels"]["cpu"] == []
        # a new sample shows in a later tick
        r = client.post("/api/v1/write", headers=RW, content=encode_snappy(WriteRequest([
            TimeSeries([("__name__", "node_memory_MemAvailable_bytes"), ("instance", "h1"), ("job", "node")],
                       [(int(time.time() * 1000), 100.0)])])))
        assert r.status_code == 204
        for _ in range(5):
            tick = ws.receive_json()
            if tick["panels"]["memory"][0]["v"] == 90.0:
                break
        assert tick["panels"]["memory"][0]["v"] == 90.0


def test_ws_metrics_refuses_other_origins(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as e, client.websocket_connect(
            "/ws/metrics", headers={"Origin": "http://evil.example"}):
        pass
    assert e.value.code == 1008
    with client.websocket_connect("ws://127.0.0.1:9800/ws/metrics?backfill=0s",
                                 headers={"Origin": "http://127.0.0.1:9800"}) as ws:
        assert ws.receive_json()["type"] == "hello"
        assert ws.receive_json()["type"] == "tick"
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws/metrics?backfill=bad"):
        pass


@pytest.mark.parametrize(("origin", "host", "ok"), [
    (None, None, True),
    ("http://127.0.0.1:9800", "127.0.0.1:9800", True),
    ("http://localhost", "localhost", True),
    ("https://localhost", "localhost:443", True),
    ("http://127.0.0.1:9801", "127.0.0.1:9800", False),
    ("http://evil.example", "127.0.0.1:9800", False),
    ("http://evil.example:9800", "evil.example:9800", False),  # DNS rebinding: the host is not served
    ("null", "127.0.0.1:9800", False),
    ("http://127.0.0.1:9800", None, False),
])
def test_origin_allowed(origin: str | None, host: str | None, ok: bool) -> None:
    served = frozenset({"127.0.0.1", "localhost", "::1"})
    assert origin_allowed(origin, host, served) is ok
