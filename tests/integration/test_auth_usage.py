"""Usage and quotas on the server's real stack: remote-write samples, Loki lines and bytes, OTLP
trace spans and read requests are counted per organisation; GET /api/v1/usage answers daily and monthly counts with cost;
a daily quota refuses the write that would pass it with 429 and writes nothing of it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import _guarded, build
from tests.integration.test_traces import otlp_spans, status_message

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0"}


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    opened: list[Any] = []

    def _make(**usage: str) -> tuple[Any, TestClient, dict[str, dict[str, str]]]:
        cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / f"d{len(opened)}"),
                                             **{f"usage.{k}": v for k, v in usage.items()}})
        built = build(cfg)
        opened.append(built)
        built.auth.directory.create_org("team-b")
        keys = {name: {"Authorization": f"Bearer {built.auth.keys.create(org, name, role)[1]}"}
                for name, org, role in (("ingest", "default", "ingest"), ("admin", "default", "admin"),
                                        ("b-ingest", "team-b", "ingest"), ("b-admin", "team-b", "admin"))}
        app = _guarded(create_app(built.services), cfg, built.auth, built.signing, None, built.usage)
        return built, TestClient(app, client=("10.0.0.50", 40000), base_url="http://127.0.0.1"), keys

    yield _make
    for built in opened:
        built.usage.close()
        built.store.close()
        built.log_store.close()
        built.auth.close()


def _rw(n: int, name: str = "u_metric") -> bytes:
    now = int(time.time() * 1000)
    return encode_snappy(WriteRequest([TimeSeries([("__name__", name), ("i", str(i))], [(now, 1.0)]) for i in range(n)], []))


def _push(lines: list[str], app: str = "u") -> bytes:
    t = time.time_ns()
    return orjson.dumps({"streams": [{"stream": {"app": app}, "values": [[str(t + i), s] for i, s in enumerate(lines)]}]})


def test_usage_is_counted_per_organisation_with_cost(make: Any) -> None:
    built, c, keys = make(price_per_million_samples="1000000", price_per_thousand_queries="1000",
                          price_per_million_spans="500000")
    pb = {"Content-Type": "application/x-protobuf"}
    assert c.post("/v1/traces", content=otlp_spans(4), headers={**pb, **keys["ingest"]}).status_code == 200
    assert c.post("/v1/traces", content=otlp_spans(7), headers={**pb, **keys["b-ingest"]}).status_code == 200
    body = _rw(5)
    for _ in range(3):  # a sender re-sending after a timeout: the samples are new once
        assert c.post("/api/v1/write", content=body, headers={**RW, **keys["ingest"]}).status_code == 204
    assert c.post("/loki/api/v1/push", content=_push(["abc", "defgh"]),
                  headers={"Content-Type": "application/json", **keys["ingest"]}).status_code == 204
    assert c.post("/api/v1/write", content=_rw(3), headers={**RW, **keys["b-ingest"]}).status_code == 204
    json_ingest = {"Content-Type": "application/json", **keys["ingest"]}
    r = c.post("/api/v1/events", content=orjson.dumps({"events": [{"message": "e1"}, {"message": "e2"}, {"message": "e3"}]}),
               headers=json_ingest)
    assert r.status_code == 200, r.text
    rum = {"rum": [{"session_id": "s", "event_type": "pageview", "page_url": "https://x.example/"}]}
    r = c.post("/api/v1/ingest/rum", content=orjson.dumps(rum), headers=json_ingest)
    assert r.status_code == 200, r.text
    for _ in range(2):
        assert c.get("/api/v1/query", params={"query": "u_metric"}, headers=keys["admin"]).status_code == 200
    built.usage.flush()
    r = c.get("/api/v1/usage", headers=keys["admin"])
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert d["org"] == "default" and len(d["daily"]) == 1 and len(d["monthly"]) == 1
    day = d["daily"][0]
    assert day["date"] == time.strftime("%Y-%m-%d", time.gmtime())
    # the usage request itself is not a *:read route; the two queries are
    # events and RUM events are log entries as well (log_lines and log_bytes count them too)
    counts = day["counts"]
    assert {k: counts[k] for k in ("samples", "events", "rum_events", "spans", "queries", "active_series")} == {
        "samples": 5, "events": 3, "rum_events": 1, "spans": 4, "queries": 2, "active_series": 5}
    assert counts["log_lines"] == 2 + 3 + 1 and counts["log_bytes"] > 8
    assert day["cost"] == {"samples": 5.0, "logs": 0.0, "queries": 2.0, "spans": 2.0, "total": 9.0}
    assert d["prices"]["per_million_spans"] == 500000.0
    assert d["monthly"][0]["counts"] == day["counts"]
    b = c.get("/api/v1/usage", headers=keys["b-admin"]).json()["data"]
    assert b["daily"][0]["counts"]["samples"] == 3 and b["daily"][0]["counts"]["queries"] == 0
    assert b["daily"][0]["counts"]["spans"] == 7
    assert b["daily"][0]["counts"]["active_series"] == 3  # the store's active series of team-b
    assert c.get("/api/v1/usage", headers=keys["ingest"]).status_code == 403
    for bad in ({"from": "yesterday"}, {"from": "2027-02-01", "to": "2027-01-01"}, {"from": "2020-01-01", "to": "2027-01-01"}):
        assert c.get("/api/v1/usage", params=bad, headers=keys["admin"]).status_code == 400, bad


def test_daily_quotas_refuse_with_429_and_write_nothing(make: Any) -> None:
    _, c, keys = make(quota_samples_per_day="10", quota_log_bytes_per_day="10")
    assert c.post("/api/v1/write", content=_rw(8), headers={**RW, **keys["ingest"]}).status_code == 204
    r = c.post("/api/v1/write", content=_rw(3, "over_quota"), headers={**RW, **keys["ingest"]})
    assert r.status_code == 429 and "usage.quota_samples_per_day" in r.text
    q = c.get("/api/v1/query", params={"query": "over_quota"}, headers=keys["admin"])
    assert q.json()["data"]["result"] == []
    assert c.post("/api/v1/write", content=_rw(2), headers={**RW, **keys["ingest"]}).status_code == 204  # exactly 10
    assert c.post("/api/v1/write", content=_rw(3), headers={**RW, **keys["b-ingest"]}).status_code == 204  # other org
    h = {"Content-Type": "application/json", **keys["ingest"]}
    assert c.post("/loki/api/v1/push", content=_push(["123456"]), headers=h).status_code == 204
    r = c.post("/loki/api/v1/push", content=_push(["12345"], "over"), headers=h)
    assert r.status_code == 429 and "usage.quota_log_bytes_per_day" in r.text  # Loki answers plain text
    lines = c.get("/loki/api/v1/query_range", params={"query": '{app="over"}'}, headers=keys["admin"])
    assert lines.json()["data"]["result"] == []


def test_span_quota_refuses_with_429_and_writes_nothing(make: Any) -> None:
    built, c, keys = make(quota_spans_per_day="5")
    pb = {"Content-Type": "application/x-protobuf"}
    assert c.post("/v1/traces", content=otlp_spans(3, trace=1), headers={**pb, **keys["ingest"]}).status_code == 200
    r = c.post("/v1/traces", content=otlp_spans(3, trace=2), headers={**pb, **keys["ingest"]})
    assert r.status_code == 429 and "usage.quota_spans_per_day" in status_message(r.content)
    assert c.get(f"/api/v1/traces/{2:032x}", headers=keys["admin"]).status_code == 404  # nothing of it kept
    assert c.post("/v1/traces", content=otlp_spans(2, trace=3), headers={**pb, **keys["ingest"]}).status_code == 200
    assert c.post("/v1/traces", content=otlp_spans(5, trace=4), headers={**pb, **keys["b-ingest"]}).status_code == 200
    assert len(c.get(f"/api/v1/traces/{3:032x}", headers=keys["admin"]).json()["data"]["spans"]) == 2
    built.usage.flush()
    assert c.get("/api/v1/usage", headers=keys["admin"]).json()["data"]["quotas"]["spans_per_day"] == 5
