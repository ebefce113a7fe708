"""Access control on the real server: the first start prints the admin password once (stderr, not
the JSON log) and never again; login, /me and the admin API; a key created for a second
organisation through X-Scope-OrgID; a real Prometheus remote-writing with `authorization:` lands in
that organisation only; OTLP/gRPC through the interceptor (anonymous loopback, key, bad key,
missing permission)."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from tests.support.peers import free_port, start_clearsight, start_prometheus

PASSWORD_RE = re.compile(r"with password:\s+(\S+)")


def _otlp_request(name: str) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name=name)
    m.gauge.data_points.add(time_unix_nano=time.time_ns(), as_double=1.0)
    return req


def _query(url: str, expr: str, headers: dict[str, str]) -> list[dict[str, object]]:
    r = httpx.get(url + "/api/v1/query", params={"query": expr}, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    result: list[dict[str, object]] = r.json()["data"]["result"]
    return result


def test_first_start_login_keys_prometheus_and_grpc(tmp_path: Path) -> None:
    gport = free_port()
    cs = start_clearsight(tmp_path / "cs", args=["--otlp-grpc-listen", f"127.0.0.1:{gport}"])
    prom = None
    try:
        out = cs.log()
        found = PASSWORD_RE.findall(out)
        assert len(found) == 1, out
        password = found[0]
        assert out.count(password) == 1  # printed once, and in no log line
        assert not [line for line in out.splitlines() if line.startswith("{") and "password" in line.lower()]

        # loopback without credentials: the anonymous editor; behind a proxy header: 401
        me = httpx.get(cs.url + "/api/v1/auth/me", timeout=10).json()["data"]
        assert me["anonymous"] and me["roles"] == ["editor"]
        r = httpx.get(cs.url + "/api/v1/query", params={"query": "up"}, headers={"X-Forwarded-For": "10.0.0.1"})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert httpx.get(cs.url + "/api/v1/admin/users", timeout=10).status_code == 403  # editor: no users:manage

        # login as admin; wrong password first
        bad = httpx.post(cs.url + "/api/v1/auth/login", json={"username": "admin", "password": "wrong password!"})
        assert bad.status_code == 401
        r = httpx.post(cs.url + "/api/v1/auth/login", json={"username": "admin", "password": password}, timeout=30)
        assert r.status_code == 200, r.text
        assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=strict" in r.headers["set-cookie"]
        admin = {"Authorization": f"Bearer {r.json()['data']['token']}"}
        me = httpx.get(cs.url + "/api/v1/auth/me", headers=admin).json()["data"]
        assert me["name"] == "admin" and me["roles"] == ["superadmin"] and "orgs:cross" in me["permissions"]
        assert httpx.post(cs.url + "/api/v1/admin/orgs", json={"name": "team-b"}, headers=admin).status_code == 200
        in_b = {**admin, "X-Scope-OrgID": "team-b"}
        ingest = httpx.post(cs.url + "/api/v1/admin/apikeys", json={"name": "prom", "role": "ingest"},
                            headers=in_b).json()["data"]
        viewer = httpx.post(cs.url + "/api/v1/admin/apikeys", json={"name": "grafana", "role": "viewer"},
                            headers=in_b).json()["data"]
        assert ingest["org"] == viewer["org"] == "team-b"
        ingest_key, viewer_key = ingest["key"], viewer["key"]

        # a real Prometheus remote-writes with the key (authorization: credentials, and basic_auth password)
        prom = start_prometheus(tmp_path / "prom", f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: self
    static_configs: [{{targets: ["127.0.0.1:0"]}}]
remote_write:
  - url: "{cs.url}/api/v1/write"
    authorization: {{credentials: "{ingest_key}"}}
    queue_config: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 1s}}
  - url: "{cs.url}/api/v1/write"
    basic_auth: {{username: prometheus, password: "{ingest_key}"}}
    write_relabel_configs: [{{target_label: via, replacement: basic_auth}}]
    queue_config: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 1s}}
""")
        as_b = {"Authorization": f"Bearer {viewer_key}"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _query(cs.url, 'up{job="self"}', as_b):
            time.sleep(0.5)
        assert _query(cs.url, 'up{job="self"}', as_b), prom.log()
        while time.monotonic() < deadline and not _query(cs.url, 'up{job="self", via="basic_auth"}', as_b):
            time.sleep(0.5)
        assert _query(cs.url, 'up{job="self", via="basic_auth"}', as_b), prom.log()  # the key as basic_auth password
        assert _query(cs.url, 'up{job="self"}', {}) == []  # not in the default organisation
        # basic auth with the key as password, any user
        basic = base64.b64encode(f"grafana:{viewer_key}".encode()).decode()
        assert _query(cs.url, 'up{job="self"}', {"Authorization": f"Basic {basic}"})

        # OTLP/gRPC through the interceptor
        with grpc.insecure_channel(f"127.0.0.1:{gport}") as ch:
            stub = metrics_service_pb2_grpc.MetricsServiceStub(ch)
            stub.Export(_otlp_request("grpc_anon"), timeout=10)  # loopback, no credentials: default org
            stub.Export(_otlp_request("grpc_b"), metadata=[("authorization", f"Bearer {ingest_key}")], timeout=10)
            for md, code in (([("authorization", "Bearer cs_" + "x" * 40)], grpc.StatusCode.UNAUTHENTICATED),
                             ([("authorization", f"Bearer {viewer_key}")], grpc.StatusCode.PERMISSION_DENIED),
                             ([("authorization", f"Bearer {ingest_key}"), ("x-scope-orgid", "default")],
                              grpc.StatusCode.PERMISSION_DENIED),
                             ([("x-forwarded-for", "10.0.0.1")], grpc.StatusCode.UNAUTHENTICATED)):
                with pytest.raises(grpc.RpcError) as e:
                    stub.Export(_otlp_request("grpc_denied"), metadata=md, timeout=10)
                assert e.value.code() == code, md
        assert _query(cs.url, "grpc_b", as_b) and not _query(cs.url, "grpc_b", {})
        assert _query(cs.url, "grpc_anon", {}) and not _query(cs.url, "grpc_anon", as_b)
        assert not _query(cs.url, "grpc_denied", {}) and not _query(cs.url, "grpc_denied", as_b)

        # revocation through the API takes effect at once on this server
        r = httpx.delete(cs.url + f"/api/v1/admin/apikeys/{viewer['id']}", headers=in_b)
        assert r.status_code == 200
        assert httpx.get(cs.url + "/api/v1/query", params={"query": "up"}, headers=as_b).status_code == 401
    finally:
        if prom is not None:
            prom.stop()
        assert cs.stop() == 0
    # second start: no new admin, nothing printed
    cs2 = start_clearsight(tmp_path / "cs2", data_dir=tmp_path / "cs" / "data")
    try:
        assert "first start" not in cs2.log()
    finally:
        cs2.stop()
