"""AegisGuard's simple JSON shapes on the server's real stack (auth, signing, idempotency, pipeline,
stores): what an ingest key sends to /api/v1/ingest/{logs,metrics,rum,traces} is read back through
LogQL, PromQL and the trace read in the key's organisation only; bad input is a precise 4xx with nothing
written; HMAC-signed requests and x-idempotency-key work there as on every ingest endpoint."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from clearsight.auth.signing import SigningSecrets, signature
from tests.support.auth_stack import Stack, auth_stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with auth_stack(tmp_path, **{"auth.anonymous": "off"}) as s:
        yield s


class Keys:
    def __init__(self, stack: Stack) -> None:
        auth = stack.built.auth
        assert auth is not None
        self.ingest = {"Authorization": "Bearer " + auth.keys.create("default", "i", "ingest")[1]}
        self.viewer = {"Authorization": "Bearer " + auth.keys.create("default", "v", "viewer")[1]}
        self.other = {"Authorization": "Bearer " + auth.keys.create("team-b", "b", "viewer")[1]}


def _lines(c: TestClient, query: str, key: dict[str, str]) -> list[tuple[dict[str, str], str]]:
    r = c.get("/loki/api/v1/query_range", params={"query": query, "limit": "100"}, headers=key)
    assert r.status_code == 200, r.text
    return [(s["stream"], v[1]) for s in r.json()["data"]["result"] for v in s["values"]]


def _post(c: TestClient, path: str, doc: Any, key: dict[str, str], **headers: str) -> Any:
    return c.post(
        path, content=orjson.dumps(doc), headers={"Content-Type": "application/json", **key, **headers}
    )


def test_logs_metrics_and_rum_are_stored_in_the_keys_organisation(stack: Stack) -> None:
    k = Keys(stack)
    c = stack.client()
    r = _post(
        c,
        "/api/v1/ingest/logs",
        {
            "logs": [
                {
                    "service": "checkout",
                    "level": "error",
                    "message": "payment failed",
                    "attributes": {"order": "o-1"},
                },
                {"service": "checkout", "message": "retrying"},
            ],
            "resource": {"host": "web-1"},
        },
        k.ingest,
    )
    assert r.status_code == 200 and r.json() == {"success": True, "accepted": 2}, r.text
    got = _lines(c, '{service="checkout"}', k.viewer)
    assert sorted(line for _, line in got) == ["payment failed", "retrying"]
    assert all(s.get("host") == "web-1" for s, _ in got)
    assert _lines(c, '{service="checkout"} | order="o-1"', k.viewer)[0][1] == "payment failed"
    assert _lines(c, '{service="checkout"}', k.other) == []  # another organisation sees nothing

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    r = _post(
        c,
        "/api/v1/ingest/metrics",
        {
            "metrics": [
                {"name": "cart_items", "value": 3, "labels": {"shop": "eu"}, "timestamp": now},
                {"name": "cart_items", "value": 5, "labels": {"shop": "us"}},
            ],
            "resource": {"service_name": "cart"},
        },
        k.ingest,
    )
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    q = c.get("/api/v1/query", params={"query": 'sum(cart_items{service="cart"})'}, headers=k.viewer).json()
    assert q["data"]["result"][0]["value"][1] == "8"
    q = c.get("/api/v1/query", params={"query": "cart_items"}, headers=k.other).json()
    assert q["data"]["result"] == []

    r = _post(
        c,
        "/api/v1/ingest/rum",
        {
            "rum": [
                {"session_id": "s-9", "event_type": "pageview", "page_url": "https://shop.example/"},
                {
                    "session_id": "s-9",
                    "event_type": "performance",
                    "page_url": "https://shop.example/",
                    "performance": {"lcp": 900},
                },
            ]
        },
        k.ingest,
    )
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    rum = _lines(c, '{source="rum", event_type="performance"}', k.viewer)
    assert len(rum) == 1 and orjson.loads(rum[0][1])["performance"] == {"lcp": 900}


def test_traces_are_stored_in_the_keys_organisation(stack: Stack) -> None:
    k = Keys(stack)
    c = stack.client()
    trace_id = "5b8efff798038103d269b633813fc60c"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    span = {"trace_id": trace_id, "span_id": "eee19b7ec3c1b174", "name": "GET /", "start_time": now, "end_time": now}
    child = {**span, "span_id": "eee19b7ec3c1b175", "parent_span_id": "eee19b7ec3c1b174", "name": "SELECT",
             "kind": "client", "status": "error", "attributes": {"db": "orders"}}
    r = _post(c, "/api/v1/ingest/traces", {"traces": [span, child], "resource": {"service_name": "web"}}, k.ingest)
    assert r.status_code == 200 and r.json() == {"success": True, "accepted": 2}, r.text
    got = c.get(f"/api/v1/traces/{trace_id}", headers=k.viewer)
    assert got.status_code == 200, got.text
    spans = {s["spanId"]: s for s in got.json()["data"]["spans"]}
    assert spans["eee19b7ec3c1b175"]["parentSpanId"] == "eee19b7ec3c1b174"
    assert spans["eee19b7ec3c1b175"]["status"]["code"] == "error" and spans["eee19b7ec3c1b175"]["kind"] == "client"
    assert spans["eee19b7ec3c1b175"]["attributes"] == {"db": "orders"}
    assert {s["serviceName"] for s in spans.values()} == {"web"}
    assert c.get(f"/api/v1/traces/{trace_id}", headers=k.other).status_code == 404  # another organisation
    assert c.get(f"/api/v1/traces/{trace_id}", headers=k.ingest).status_code == 403  # no traces:read
    other = "6b8efff798038103d269b633813fc60c"
    bad = [{"traces": [{**span, "trace_id": other, "end_time": "x"}]},
           {"traces": [{**span, "trace_id": other}, {**span, "trace_id": other, "span_id": "abc"}]},
           {"traces": [{**span, "trace_id": other, "end_time": "2000-01-01T00:00:00Z"}]}]
    for doc in bad:
        assert _post(c, "/api/v1/ingest/traces", doc, k.ingest).status_code == 400, doc
    assert _post(c, "/api/v1/ingest/traces", {"traces": [{**span, "trace_id": other}] * 501},
                 k.ingest).status_code == 413
    assert c.get(f"/api/v1/traces/{other}", headers=k.viewer).status_code == 404  # nothing of those was kept
    old = {**span, "trace_id": other, "start_time": "2000-01-01T00:00:00Z", "end_time": "2000-01-01T00:00:01Z"}
    r = _post(c, "/api/v1/ingest/traces", {"traces": [old, {**span, "trace_id": other}]}, k.ingest)
    assert r.status_code == 200 and r.json()["accepted"] == 1 and r.json()["rejected"] == 1, r.text
    assert "too old" in r.json()["message"]


@pytest.mark.parametrize(
    ("path", "body", "ctype", "status", "why"),
    [
        (
            "/api/v1/ingest/logs",
            b'{"logs": [{"service": "a", "message": "ok"}, {"message": "no service"}]}',
            "application/json",
            400,
            "logs[1].service",
        ),
        (
            "/api/v1/ingest/logs",
            b'{"logs": [{"service": "a", "message": "ok"}]}',
            "text/plain",
            415,
            "application/json",
        ),
        (
            "/api/v1/ingest/logs",
            orjson.dumps({"logs": [{"service": "a", "message": "m"}] * 1001}),
            "application/json",
            413,
            "1000",
        ),
        (
            "/api/v1/ingest/metrics",
            b'{"metrics": [{"name": "ok_metric", "value": 1}, {"name": "bad", "value": "x"}]}',
            "application/json",
            400,
            "metrics[1].value",
        ),
        (
            "/api/v1/ingest/metrics",
            orjson.dumps({"metrics": [{"name": "ok_metric", "value": 1}] * 5001}),
            "application/json",
            413,
            "5000",
        ),
        (
            "/api/v1/ingest/rum",
            b'{"rum": [{"session_id": "s", "event_type": "click", "page_url": "ftp://x"}]}',
            "application/json",
            400,
            "rum[0].page_url",
        ),
        ("/api/v1/ingest/logs", b"{not json", "application/json", 400, "invalid JSON"),
    ],
)
def test_bad_input_writes_nothing(
    stack: Stack, path: str, body: bytes, ctype: str, status: int, why: str
) -> None:
    k = Keys(stack)
    c = stack.client()
    r = c.post(path, content=body, headers={"Content-Type": ctype, **k.ingest})
    assert r.status_code == status and why in r.text, r.text
    assert _lines(c, '{service="a"}', k.viewer) == []
    assert (
        c.get("/api/v1/query", params={"query": "ok_metric"}, headers=k.viewer).json()["data"]["result"] == []
    )


def test_permissions_signing_and_idempotency(stack: Stack) -> None:
    k = Keys(stack)
    c = stack.client()
    doc = {"logs": [{"service": "signed", "message": "via hmac"}]}
    assert _post(c, "/api/v1/ingest/logs", doc, k.viewer).status_code == 403  # viewer: no logs:write
    assert _post(c, "/api/v1/ingest/logs", doc, {}).status_code == 401
    auth = stack.built.auth
    assert auth is not None
    view, secret = SigningSecrets(auth.db).create("default", "edge")
    body = orjson.dumps(doc)
    t = str(int(time.time()))
    signed = {
        "Content-Type": "application/json",
        "x-org-key": view.key_id,
        "x-timestamp": t,
        "x-signature": signature(secret.encode(), t, body),
        "x-idempotency-key": "batch-1",
    }
    assert c.post("/api/v1/ingest/logs", content=body, headers=signed).status_code == 200
    bad = {**signed, "x-signature": "sha256=" + "0" * 64, "x-idempotency-key": "batch-2"}
    assert c.post("/api/v1/ingest/logs", content=body, headers=bad).status_code == 401
    again = _post(c, "/api/v1/ingest/logs", doc, k.ingest, **{"x-idempotency-key": "batch-1"})
    assert again.status_code == 200 and again.headers.get("x-idempotent-replay") == "true"
    assert [line for _, line in _lines(c, '{service="signed"}', k.viewer)] == ["via hmac"]


def test_otlp_traces_signed_and_idempotent(stack: Stack) -> None:
    """Signed ingestion and x-idempotency-key on /v1/traces: a retried export is acknowledged again
    without storing its spans twice; a bad signature stores nothing."""
    k = Keys(stack)
    c = stack.client()
    auth = stack.built.auth
    assert auth is not None
    view, secret = SigningSecrets(auth.db).create("default", "edge-traces")
    now = time.time_ns()
    trace_id = "7b8efff798038103d269b633813fc60c"
    body = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": trace_id, "spanId": "eee19b7ec3c1b174", "name": "signed", "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 10)}]}]}]})
    t = str(int(time.time()))
    signed = {"Content-Type": "application/json", "x-org-key": view.key_id, "x-timestamp": t,
              "x-signature": signature(secret.encode(), t, body), "x-idempotency-key": "spans-1"}
    bad = {**signed, "x-signature": "sha256=" + "0" * 64, "x-idempotency-key": "spans-2"}
    assert c.post("/v1/traces", content=body, headers=bad).status_code == 401
    assert c.get(f"/api/v1/traces/{trace_id}", headers=k.viewer).status_code == 404
    assert c.post("/v1/traces", content=body, headers=signed).status_code == 200
    again = c.post("/v1/traces", content=body, headers=signed)
    assert again.status_code == 200 and again.headers.get("x-idempotent-replay") == "true"
    spans = c.get(f"/api/v1/traces/{trace_id}", headers=k.viewer).json()["data"]["spans"]
    assert [s["name"] for s in spans] == ["signed"]  # stored once
