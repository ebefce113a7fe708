"""Real log clients push into a real server and the lines come back through Loki's query API:
python-logging-loki (Loki push, JSON) and the OpenTelemetry Python SDK log exporter (OTLP/HTTP, on
the main port and on the OTLP/HTTP port). Malformed input gets a precise 4xx and writes nothing."""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import logging_loki
import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from tests.support.peers import Proc, free_port, start_clearsight


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, str]]:
    work = tmp_path_factory.mktemp("logs")
    otlp = f"127.0.0.1:{free_port()}"
    proc = start_clearsight(work, args=["--otlp-http-listen", otlp])
    try:
        yield proc, f"http://{otlp}"
    finally:
        proc.stop()


def _query(url: str, q: str, **params: Any) -> dict[str, Any]:
    r = httpx.get(f"{url}/loki/api/v1/query_range", params={"query": q, **params}, timeout=10)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    assert out["status"] == "success" and out["data"]["resultType"] == "streams"
    return out


def _lines(out: dict[str, Any]) -> list[str]:
    return [v[1] for s in out["data"]["result"] for v in s["values"]]


def test_python_logging_loki(server: tuple[Proc, str]) -> None:
    proc, _ = server
    handler = logging_loki.LokiHandler(url=f"{proc.url}/loki/api/v1/push", tags={"application": "pytest-loki"},
                                       version="1")
    logger = logging.getLogger("clearsight-test-loki")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        logger.warning("disk almost full on /var")
        logger.error("payment failed for order 42")
        logger.info("user logged in")
    finally:
        logger.removeHandler(handler)
        handler.close()
    out = _query(proc.url, '{application="pytest-loki"}', limit=10)
    assert sorted(_lines(out)) == ["disk almost full on /var", "payment failed for order 42", "user logged in"]
    assert {s["stream"]["severity"] for s in out["data"]["result"]} == {"warning", "error", "info"}
    out = _query(proc.url, '{application="pytest-loki"} |= "order" != "refund"')
    assert _lines(out) == ["payment failed for order 42"]
    out = _query(proc.url, '{application="pytest-loki"} |~ "(?i)DISK|user" !~ "logged"')
    assert _lines(out) == ["disk almost full on /var"]
    fwd = _lines(_query(proc.url, '{application="pytest-loki"}', direction="forward", limit=2))
    bwd = _lines(_query(proc.url, '{application="pytest-loki"}', direction="backward", limit=3))
    assert fwd == bwd[::-1][:2]
    labels = httpx.get(f"{proc.url}/loki/api/v1/labels", timeout=10).json()
    assert {"application", "severity"} <= set(labels["data"])
    values = httpx.get(f"{proc.url}/loki/api/v1/label/severity/values",
                       params={"query": '{application="pytest-loki"}'}, timeout=10).json()
    assert values == {"status": "success", "data": ["error", "info", "warning"]}
    series = httpx.get(f"{proc.url}/loki/api/v1/series",
                       params={"match[]": '{application="pytest-loki", severity="error"}'}, timeout=10).json()
    assert [s["severity"] for s in series["data"]] == ["error"]


@pytest.mark.parametrize("port", ["main", "otlp"])
def test_opentelemetry_sdk_log_exporter(server: tuple[Proc, str], port: str) -> None:
    proc, otlp_url = server
    base = proc.url if port == "main" else otlp_url
    provider = LoggerProvider(resource=Resource.create({"service.name": f"otel-{port}"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs")))
    with warnings.catch_warnings():  # the SDK's own handler is deprecated in favour of a contrib package
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    logger = logging.getLogger(f"clearsight-test-otel-{port}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        logger.info("checkout started cart=%s", "c-1")
        logger.error("checkout failed: card declined")
        provider.force_flush()
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    out = _query(proc.url, f'{{service_name="otel-{port}"}}', direction="forward")
    assert _lines(out) == ["checkout started cart=c-1", "checkout failed: card declined"]
    assert _lines(_query(proc.url, f'{{service_name="otel-{port}"}} |= "declined"')) == [
        "checkout failed: card declined"]


def test_bad_input_is_a_precise_4xx_and_writes_nothing(server: tuple[Proc, str]) -> None:
    proc, _ = server
    url = proc.url
    now = time.time_ns()
    bad_pushes = [
        ("/loki/api/v1/push", b'{"streams": [{"stream": {"app": "bad4xx"}, "values": [["1x", "l"]]}]}',
         {"Content-Type": "application/json"}, 400, "timestamp"),
        ("/loki/api/v1/push", json.dumps({"streams": [{"stream": {"app": "bad4xx"}, "values": [
            [str(now), "fine"], [str(now - 30 * 86400 * 10**9), "old"]]}]}).encode(),
         {"Content-Type": "application/json"}, 400, "too old"),
        ("/v1/logs", b'{"resourceLogs": 5}', {"Content-Type": "application/json"}, 400, "resourceLogs"),
        ("/_bulk", b'{"index": {"_index": "bad4xx"}}\n', {"Content-Type": "application/x-ndjson"}, 400, "error"),
        ("/api/v1/events", b'{"level": "INFO"}', {"Content-Type": "application/json"}, 400, "message"),
        ("/api/v1/falco", b'not json', {"Content-Type": "application/json"}, 400, ""),
    ]
    for path, body, headers, status, needle in bad_pushes:
        r = httpx.post(f"{url}{path}", content=body, headers=headers, timeout=10)
        assert r.status_code == status, (path, r.status_code, r.text)
        assert needle in r.text, (path, r.text)
    assert _lines(_query(url, '{app="bad4xx"}')) == []
    assert _lines(_query(url, '{index="bad4xx"}')) == []
    bad_queries = [
        ({"query": '{app="x"'}, "parse error at line 1, col 9"),
        ({"query": 'sum(count_over_time({a="b"}))'}, "parse error at line 1, col 28"),
        ({"query": '{app="x"}', "limit": "100000"}, "max entries limit"),
        ({"query": '{app="x"}', "start": "0", "end": str(now)}, "time range exceeds the limit"),
        ({"query": '{app="x"}', "direction": "sideways"}, "direction"),
        ({"query": '{app="x"}', "start": "yesterday"}, "invalid start"),
    ]
    for params, needle in bad_queries:
        r = httpx.get(f"{url}/loki/api/v1/query_range", params=params, timeout=10)
        assert r.status_code == 400 and needle in r.text, (params, r.text)


def test_events_round_trip_through_the_native_api(server: tuple[Proc, str]) -> None:
    proc, _ = server
    big = 2**70
    evs = [{"message": "sg changed", "level": "WARN", "type": "change", "origin": "aws", "tags": ["sg"],
            "data": {"rule": "0.0.0.0/0", "n": big}},
           {"message": "spawned sh", "level": "ERROR", "type": "process_spawn", "resource": {"host.name": "h1"}}]
    r = httpx.post(f"{proc.url}/api/v1/events", json=evs, timeout=10)
    assert r.status_code == 200, r.text
    ids = r.json()["ids"]
    got = httpx.get(f"{proc.url}/api/v1/events", params={"type": "change"}, timeout=10)
    assert got.status_code == 200
    (ev,) = got.json()["data"]["events"]
    assert (ev["id"], ev["message"], ev["level"], ev["origin"], ev["tags"]) == (ids[0], "sg changed", "WARN", "aws",
                                                                                 ["sg"])
    assert ev["data"]["n"] == big and ev["severity"] == "medium"
    got = httpx.get(f"{proc.url}/api/v1/events", params={"level": "error"}, timeout=10).json()["data"]["events"]
    assert [(e["type"], e["resource"]) for e in got] == [("process_spawn", {"host.name": "h1"})]
