"""api/http_middleware.py: Prometheus' envelope for unknown paths and wrong methods, gzip, CORS, the
access log and the slow-query log (JSON lines through the logging setup)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import ConfigError, load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.logs import JsonFormatter
from clearsight.server import build

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}


def _client(tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data"), **overrides})
    built = build(cfg)
    try:
        app = create_app(built.services)

        async def precompressed(request: Request) -> Response:
            return Response(b"x" * 5000, headers={"Content-Encoding": "snappy"})

        app.router.routes.append(Route("/test/precompressed", precompressed))
        with TestClient(app) as c:
            yield c
    finally:
        built.store.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path)


def test_unknown_api_path_answers_prometheus_not_found_envelope(client: TestClient) -> None:
    for method in ("GET", "POST"):
        r = client.request(method, "/api/v1/does_not_exist")
        assert r.status_code == 404
        assert r.json() == {"status": "error", "errorType": "not_found",
                            "error": "path /api/v1/does_not_exist not found"}
    assert client.get("/api/v2/nothing").json()["errorType"] == "not_found"
    # Outside /api/ the default answer stays.
    assert client.get("/nothing-here").json() == {"detail": "Not Found"}


def test_wrong_method_answers_405_in_the_envelope_with_allow(client: TestClient) -> None:
    r = client.get("/api/v1/write")
    assert r.status_code == 405
    body = r.json()
    assert body["status"] == "error" and body["errorType"] == "bad_data"
    assert "method GET not allowed for /api/v1/write" in body["error"]
    assert "POST" in r.headers["allow"]
    r = client.delete("/api/v1/query")
    assert r.status_code == 405 and set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_gzip_only_when_accepted_and_worth_it(client: TestClient) -> None:
    now = int(time.time() * 1000)
    series = [TimeSeries([("__name__", "node_cpu_seconds_total"), ("cpu", str(i)), ("mode", "idle")], [(now, 1.0)])
              for i in range(100)]
    r = client.post("/api/v1/write", content=encode_snappy(WriteRequest(series, [])), headers=RW_HEADERS)
    assert r.status_code == 204
    big = client.get("/api/v1/series", params={"match[]": "node_cpu_seconds_total"},
                     headers={"Accept-Encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip"
    assert int(big.headers["content-length"]) < len(big.content)  # the wire bytes are fewer than decoded
    assert len(big.json()["data"]) == 100
    plain = client.get("/api/v1/series", params={"match[]": "node_cpu_seconds_total"},
                       headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == big.json()
    small = client.get("/api/v1/alertmanagers", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # below the 1 KiB minimum
    pre = client.get("/test/precompressed", headers={"Accept-Encoding": "gzip"})
    assert pre.headers["content-encoding"] == "snappy"  # never compressed twice


def test_no_cors_headers_by_default(client: TestClient) -> None:
    r = client.get("/api/v1/alertmanagers", headers={"Origin": "https://grafana.example"})
    assert "access-control-allow-origin" not in r.headers
    r = client.options("/api/v1/query", headers={"Origin": "https://grafana.example",
                                                 "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_configured_origins_and_preflight(tmp_path: Path) -> None:
    for c in _client(tmp_path, **{"server.cors_origins": "https://grafana.example, http://localhost:3000"}):
        r = c.get("/api/v1/alertmanagers", headers={"Origin": "https://grafana.example"})
        assert r.headers["access-control-allow-origin"] == "https://grafana.example"
        r = c.get("/api/v1/alertmanagers", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        r = c.options("/api/v1/query", headers={"Origin": "http://localhost:3000",
                                                "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "content-type"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert "POST" in r.headers["access-control-allow-methods"]


def test_cors_origins_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.cors_origins"):
        load_config(env={}, overrides={"server.cors_origins": "grafana.example/path"})
    with pytest.raises(ConfigError, match="slow_query_log_threshold"):
        load_config(env={}, overrides={"query.slow_query_log_threshold": "soon"})


def _json_lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, Any]]:
    fmt = JsonFormatter()
    return [orjson.loads(fmt.format(r)) for r in caplog.records if r.name == logger]


def test_access_log_off_by_default(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client.get("/api/v1/alertmanagers")
    client.get("/api/v1/query", params={"query": "1"})
    assert _json_lines(caplog, "clearsight.access") == []
    assert _json_lines(caplog, "clearsight.slow_query") == []


def test_access_log_writes_one_json_line_per_request(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for c in _client(tmp_path, **{"log.access_log": "true"}):
        c.get("/api/v1/alertmanagers", params={"x": "1"}, headers={"User-Agent": "probe/1"})
        c.get("/api/v1/missing")
    lines = _json_lines(caplog, "clearsight.access")
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("GET", "/api/v1/alertmanagers", 200), ("GET", "/api/v1/missing", 404)]
    first = lines[0]
    assert first["level"] == "info" and first["msg"] == "request"
    assert first["query_string"] == "x=1" and first["user_agent"] == "probe/1"
    assert first["bytes_sent"] > 0 and first["duration_seconds"] >= 0


def test_slow_query_log_records_queries_over_the_threshold(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    # A zero threshold logs every query (deterministic); GET and POST form bodies both name the query.
    for c in _client(tmp_path, **{"query.slow_query_log_threshold": "0s"}):
        assert c.get("/api/v1/query", params={"query": "1+1", "time": "100"}).status_code == 200
        assert c.post("/api/v1/query_range", data={"query": "vector(2)", "start": "0", "end": "60",
                                                    "step": "15"}).status_code == 200
        c.get("/api/v1/alertmanagers")  # not a query: never in the slow-query log
    lines = _json_lines(caplog, "clearsight.slow_query")
    assert [(x["path"], x["query"]) for x in lines] == [("/api/v1/query", "1+1"), ("/api/v1/query_range", "vector(2)")]
    assert lines[0]["time"] == "100" and lines[1]["step"] == "15" and lines[1]["status"] == 200
    assert all(x["level"] == "warning" for x in lines)
    assert _json_lines(caplog, "clearsight.access") == []


def test_slow_query_log_ignores_queries_under_the_threshold(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for c in _client(tmp_path, **{"query.slow_query_log_threshold": "1h"}):
        assert c.get("/api/v1/query", params={"query": "1+1"}).status_code == 200
    assert _json_lines(caplog, "clearsight.slow_query") == []
