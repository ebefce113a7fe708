"""Signed ingestion and idempotency keys on the server's real middleware stack: a secret created
through the admin API signs Loki pushes and remote writes of its organisation; bad, stale, replayed,
unknown and revoked signatures are 401 with nothing written; the body limits still apply; a retry
with the same x-idempotency-key is acknowledged without a second write (signed or bearer)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.auth.signing import signature
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import Built, _guarded, build

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0"}


class Stack:
    def __init__(self, built: Built, app: Any, keys: dict[str, str]) -> None:
        self.built = built
        self.app = app
        self.keys = keys
        self.c = TestClient(app, client=("10.0.0.11", 40000), base_url="http://127.0.0.1")

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    def lines(self, app_label: str, org_key: str = "viewer") -> int:
        r = self.c.get("/loki/api/v1/query_range", params={"query": f'{{app="{app_label}"}}', "limit": "100"},
                       headers=self.bearer(org_key))
        assert r.status_code == 200, r.text
        return sum(len(s["values"]) for s in r.json()["data"]["result"])


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data"), "limits.max_body_bytes": "65536"})
    built = build(cfg)
    auth = built.auth
    assert auth is not None
    auth.directory.create_org("team-b")
    keys = {"admin": auth.keys.create("default", "admin", "admin")[1],
            "viewer": auth.keys.create("default", "viewer", "viewer")[1],
            "ingest": auth.keys.create("default", "ingest", "ingest")[1],
            "b-viewer": auth.keys.create("team-b", "bv", "viewer")[1]}
    try:
        yield Stack(built, _guarded(create_app(built.services), cfg, auth, built.signing), keys)
    finally:
        built.store.close()
        if built.log_store is not None:
            built.log_store.close()
        auth.close()


def _secret(stack: Stack) -> tuple[str, bytes, int]:
    r = stack.c.post("/api/v1/admin/signing_secrets", json={"name": "edge"}, headers=stack.bearer("admin"))
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert d["key_id"].startswith("csk_") and d["secret"].startswith("cssig_") and d["org"] == "default"
    return d["key_id"], d["secret"].encode(), d["id"]


def _push(label: str, line: str = "hello") -> bytes:
    return orjson.dumps({"streams": [{"stream": {"app": label}, "values": [[str(time.time_ns()), line]]}]})


def _signed(key_id: str, secret: bytes, body: bytes, ts: float | None = None, **extra: str) -> dict[str, str]:
    t = str(int(time.time() if ts is None else ts))
    return {"Content-Type": "application/json", "x-org-key": key_id, "x-timestamp": t,
            "x-signature": signature(secret, t, body), **extra}


def test_signed_pushes_are_written_in_the_keys_organisation(stack: Stack) -> None:
    key_id, secret, _ = _secret(stack)
    body = _push("signed")
    r = stack.c.post("/loki/api/v1/push", content=body, headers=_signed(key_id, secret, body))
    assert r.status_code == 204, r.text
    assert stack.lines("signed") == 1 and stack.lines("signed", "b-viewer") == 0
    wr = WriteRequest([TimeSeries([("__name__", "signed_metric"), ("job", "x")], [(int(time.time() * 1000), 1.5)])], [])
    raw = encode_snappy(wr)
    r = stack.c.post("/api/v1/write", content=raw, headers={**_signed(key_id, secret, raw), **RW})
    assert r.status_code == 204, r.text
    q = stack.c.get("/api/v1/query", params={"query": "signed_metric"}, headers=stack.bearer("viewer"))
    assert q.json()["data"]["result"][0]["value"][1] == "1.5"
    listed = stack.c.get("/api/v1/admin/signing_secrets", headers=stack.bearer("admin")).json()["data"]
    assert [x["key_id"] for x in listed] == [key_id] and "secret" not in listed[0]


def test_bad_signatures_are_refused_and_nothing_is_written(stack: Stack) -> None:
    key_id, secret, secret_id = _secret(stack)
    body = _push("bad")
    now = time.time()
    cases = [
        _signed(key_id, b"cssig_wrong", body),  # wrong secret
        {**_signed(key_id, secret, body), "x-signature": "sha256=" + "0" * 64},
        {**_signed(key_id, secret, body), "x-signature": "md5=abc"},
        _signed(key_id, secret, body, ts=now - 600),  # stale (window 5 min)
        _signed(key_id, secret, body, ts=now + 600),  # from the future
        {**_signed(key_id, secret, body), "x-timestamp": "yesterday"},
        _signed("csk_" + "0" * 20, secret, body),  # unknown key id
        {k: v for k, v in _signed(key_id, secret, body).items() if k != "x-signature"},
    ]
    for h in cases:
        r = stack.c.post("/loki/api/v1/push", content=body, headers=h)
        assert r.status_code == 401, (h, r.text)
    tampered = _push("bad", "changed")
    r = stack.c.post("/loki/api/v1/push", content=tampered, headers=_signed(key_id, secret, body))
    assert r.status_code == 401 and "does not match" in r.json()["error"]
    assert stack.lines("bad") == 0
    # revoked: refused (the server's verifier forgets its cache on revocation)
    assert stack.c.delete(f"/api/v1/admin/signing_secrets/{secret_id}", headers=stack.bearer("admin")).status_code == 200
    r = stack.c.post("/loki/api/v1/push", content=body, headers=_signed(key_id, secret, body))
    assert r.status_code == 401 and stack.lines("bad") == 0


def test_misuse_is_400_or_403(stack: Stack) -> None:
    key_id, secret, _ = _secret(stack)
    body = _push("misuse")
    r = stack.c.post("/loki/api/v1/push", content=body, headers={**_signed(key_id, secret, body), **stack.bearer("ingest")})
    assert r.status_code == 400
    r = stack.c.get("/api/v1/query", params={"query": "up"}, headers=_signed(key_id, secret, b""))
    assert r.status_code == 400 and "ingest endpoints only" in r.json()["error"]
    r = stack.c.post("/loki/api/v1/push", content=body, headers={**_signed(key_id, secret, body), "X-Scope-OrgID": "team-b"})
    assert r.status_code == 403
    assert stack.lines("misuse") == 0 and stack.lines("misuse", "b-viewer") == 0


def test_body_limits_still_apply_to_signed_requests(stack: Stack) -> None:
    key_id, secret, _ = _secret(stack)
    body = _push("big", "x" * 70_000)
    r = stack.c.post("/loki/api/v1/push", content=body, headers=_signed(key_id, secret, body))
    assert r.status_code == 413
    assert stack.lines("big") == 0


def test_replayed_signature_is_refused_but_an_idempotent_retry_is_acknowledged(stack: Stack) -> None:
    key_id, secret, _ = _secret(stack)
    body = _push("replay")
    h = _signed(key_id, secret, body)
    assert stack.c.post("/loki/api/v1/push", content=body, headers=h).status_code == 204
    r = stack.c.post("/loki/api/v1/push", content=body, headers=h)
    assert r.status_code == 401 and "replayed" in r.json()["error"]
    # a different idempotency key does not turn a replay into a new write
    r = stack.c.post("/loki/api/v1/push", content=body, headers={**h, "x-idempotency-key": "other"})
    assert r.status_code == 401
    assert stack.lines("replay") == 1
    body2 = _push("idem")
    h2 = _signed(key_id, secret, body2, **{"x-idempotency-key": "batch-42"})
    first = stack.c.post("/loki/api/v1/push", content=body2, headers=h2)
    again = stack.c.post("/loki/api/v1/push", content=body2, headers=h2)  # the same bytes retried
    assert first.status_code == 204 and again.status_code == 204
    assert again.headers["x-idempotent-replay"] == "true" and "x-idempotent-replay" not in first.headers
    assert stack.lines("idem") == 1


def test_idempotency_keys_with_bearer_keys_are_per_organisation(stack: Stack) -> None:
    body = _push("bearer-idem")
    h = {**stack.bearer("ingest"), "Content-Type": "application/json", "x-idempotency-key": "k1"}
    assert stack.c.post("/loki/api/v1/push", content=body, headers=h).status_code == 204
    r = stack.c.post("/loki/api/v1/push", content=_push("bearer-idem", "second"), headers=h)
    assert r.status_code == 204 and r.headers["x-idempotent-replay"] == "true"
    assert stack.lines("bearer-idem") == 1
    b_ingest = stack.built.auth.keys.create("team-b", "bi", "ingest")[1]  # type: ignore[union-attr]
    r = stack.c.post("/loki/api/v1/push", content=body, headers={**h, "Authorization": f"Bearer {b_ingest}"})
    assert r.status_code == 204 and "x-idempotent-replay" not in r.headers  # another organisation's key space
    assert stack.lines("bearer-idem", "b-viewer") == 1
    for bad in ("", "x" * 129, "has space"):
        r = stack.c.post("/loki/api/v1/push", content=body, headers={**h, "x-idempotency-key": bad})
        assert r.status_code == 400, bad
    # a failed request is not remembered: the retry is written
    h3 = {**h, "x-idempotency-key": "k-fail"}
    assert stack.c.post("/loki/api/v1/push", content=b"{not json", headers=h3).status_code == 400
    assert stack.c.post("/loki/api/v1/push", content=_push("after-fail"), headers=h3).status_code == 204
    assert stack.lines("after-fail") == 1
