"""The log ingest endpoints against a real embedded log store: success shapes, precise 4xx for bad
input with nothing written, and decoding in the ingest pool (never on the event loop)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from clearsight.api.logs_ingest import LogIngestSurfaces
from clearsight.model.logs import LogBatch
from clearsight.model.matchers import Matcher
from clearsight.pipeline.log_ingestor import LogIngestor
from clearsight.selfmetrics import SelfMetrics
from clearsight.store.embedded.logs_schema import DAY_NS
from clearsight.store.embedded.logs_store import EmbeddedLogStore

FALCO = Path("/work/shared/conformance/falco")
NOW = time.time_ns()


class Env:
    def __init__(self, tmp: Path) -> None:
        self.store = EmbeddedLogStore(tmp)
        self.threads: list[int] = []
        self.gate: threading.Event | None = None
        self.started = threading.Event()

        def step(_tenant: str, batch: LogBatch) -> LogBatch:
            self.threads.append(threading.get_ident())
            self.started.set()
            if self.gate is not None:
                assert self.gate.wait(30)
            return batch

        self.ingestor = LogIngestor(self.store, reject_older_than_ns=7 * DAY_NS, creation_grace_ns=600 * 10**9,
                                    steps=[step])
        self.metrics = SelfMetrics()
        self.pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="ingest-test")
        surfaces = LogIngestSurfaces(self.ingestor, lambda _r: "t", self.metrics, executor=self.pool)

        async def health(_: Request) -> Response:
            return PlainTextResponse("ok")

        self.app = Starlette(routes=[*surfaces.routes(), Route("/health", health)])

    def count(self) -> int:
        return len(self.store.select("t", [], 0, 2**62, limit=10_000))

    def post(self, url: str, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://x") as c:
                return await c.post(url, content=content, headers=headers or {})
        return asyncio.run(go())

    def get(self, url: str) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://x") as c:
                return await c.get(url)
        return asyncio.run(go())


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    try:
        yield e
    finally:
        e.pool.shutdown()
        e.store.close()


def _loki(values: list[list[Any]], stream: dict[str, str] | None = None) -> bytes:
    return json.dumps({"streams": [{"stream": stream or {"app": "api"}, "values": values}]}).encode()


JSON = {"Content-Type": "application/json"}


def test_loki_push_json_and_gzip(env: Env) -> None:
    r = env.post("/loki/api/v1/push", _loki([[str(NOW), "hello"], [str(NOW + 1), "meta", {"user": "a"}]]), JSON)
    assert r.status_code == 204, r.text
    r = env.post("/loki/api/v1/push", gzip.compress(_loki([[str(NOW + 2), "zipped"]])),
                 {**JSON, "Content-Encoding": "gzip"})
    assert r.status_code == 204
    got = env.store.select("t", [], 0, 2**62, limit=10, direction="forward")
    assert got.body == ["hello", "meta", "zipped"]
    assert got.attributes(1) == [("user", "a")]
    assert env.metrics.log_lines_ingested.labels("loki_push")._value.get() == 3


@pytest.mark.parametrize(("body", "headers", "status", "needle"), [
    (b"{not json", JSON, 400, ""),
    (_loki([[str(NOW), "ok"], ["yesterday", "bad"]]), JSON, 400, "values[1]"),
    (_loki([[str(NOW - 30 * DAY_NS), "old"]]), JSON, 400, "too old"),
    (_loki([[str(NOW + DAY_NS), "future"]]), JSON, 400, "too new"),
    (_loki([[str(NOW), "x"]], {"bad-label": "x"}), JSON, 400, ""),
    (b"{}", {"Content-Type": "text/csv"}, 415, "Content-Type"),
], ids=["not_json", "bad_timestamp", "too_old", "too_new", "bad_label", "content_type"])
def test_loki_push_rejects_and_writes_nothing(env: Env, body: bytes, headers: dict[str, str], status: int,
                                              needle: str) -> None:
    r = env.post("/loki/api/v1/push", body, headers)
    assert r.status_code == status, r.text
    assert needle in r.text and r.text.strip()
    assert env.count() == 0
    assert sum(s.value for m in env.metrics.rejected.collect() for s in m.samples if s.name.endswith("_total")) == 1


def _otlp_json(body: str, ts: int = NOW) -> bytes:
    return json.dumps({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]}, "scopeLogs": [{"logRecords": [
            {"timeUnixNano": str(ts), "severityNumber": 9, "severityText": "INFO", "body": {"stringValue": body},
             "traceId": "0102030405060708090a0b0c0d0e0f10"}]}]}]}).encode()


def test_otlp_logs_json_and_errors(env: Env) -> None:
    r = env.post("/v1/logs", _otlp_json("otlp line"), JSON)
    assert r.status_code == 200 and r.json() == {}
    got = env.store.select("t", [], 0, 2**62)
    assert got.body == ["otlp line"] and got.streams == [(("service_name", "svc"),)]
    assert got.trace_id(0) == bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
    r = env.post("/v1/logs", _otlp_json("x").replace(b'"severityNumber": 9', b'"severityNumber": 99'), JSON)
    assert r.status_code == 400 and "severity" in r.json()["message"].lower()
    r = env.post("/v1/logs", b"x", {"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert env.count() == 1


def test_es_bulk_and_probes(env: Env) -> None:
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW // 10**9))
    body = (json.dumps({"index": {}}) + "\n" + json.dumps({"@timestamp": ts, "message": "from beats",
                                                           "log": {"level": "warn"}}) + "\n").encode()
    r = env.post("/filebeat-1/_bulk", body, {"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["errors"] is False and out["items"][0]["index"]["status"] == 201
    assert r.headers["X-Elastic-Product"] == "Elasticsearch"
    assert env.store.select("t", [], 0, 2**62).streams == [(("index", "filebeat-1"),)]
    bad = env.post("/_bulk", b'{"bogus": {}}\n{}\n', {"Content-Type": "application/x-ndjson"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] and bad.json()["status"] == 400
    assert env.count() == 1
    assert env.get("/").json()["version"]["number"].startswith("8.")
    assert env.get("/_license").json()["license"]["status"] == "active"
    assert "tpl" in env.get("/_template/tpl").json()


def test_events_and_falco(env: Env) -> None:
    r = env.post("/api/v1/events", json.dumps([{"message": "deploy", "level": "INFO", "type": "change",
                                                 "data": {"n": 12345678901234567890}}]).encode(), JSON)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and len(r.json()["ids"]) == 1
    r = env.post("/api/v1/events", json.dumps({"message": "x", "level": "LOUD"}).encode(), JSON)
    assert r.status_code == 400 and "level" in r.json()["error"]
    assert env.count() == 1
    sample = json.loads((FALCO / "01_write_below_binary_dir.json").read_text())
    r = env.post("/api/v1/falco", json.dumps(sample).encode(), JSON)
    assert r.status_code == 400 and "too old" in r.json()["error"]  # 2019: outside logs.reject_older_than
    sample["time"] = time.strftime("%Y-%m-%dT%H:%M:%S.123456789Z", time.gmtime(NOW // 10**9))
    r = env.post("/api/v1/falco", json.dumps(sample).encode(), JSON)
    assert r.status_code == 200 and r.json() == {"accepted": 1}
    got = env.store.select("t", [Matcher.of("=", "origin", "falco")], 0, 2**62, limit=1)
    assert got.streams[0] == (("event_type", "falco_alert"), ("level", "ERROR"), ("origin", "falco"))
    r = env.post("/api/v1/falco", b"[{]", JSON)
    assert r.status_code == 400
    assert env.count() == 2


def test_decode_and_submit_run_off_the_event_loop(env: Env) -> None:
    env.gate = threading.Event()

    async def go() -> tuple[int, int, bool, int]:
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=env.app), base_url="http://x") as c:
            post = asyncio.create_task(c.post("/loki/api/v1/push", content=_loki([[str(NOW), "held"]]),
                                              headers=JSON))
            assert await loop.run_in_executor(None, env.started.wait, 30)
            health = await c.get("/health")
            pending = not post.done()
            assert env.gate is not None
            env.gate.set()
            resp = await post
        return health.status_code, resp.status_code, pending, threading.get_ident()

    health, status, pending, loop_ident = asyncio.run(go())
    assert (health, status, pending) == (200, 204, True)
    assert env.threads and all(t != loop_ident for t in env.threads)
    assert env.count() == 1
