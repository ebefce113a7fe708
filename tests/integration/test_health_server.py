"""Registry, health and correlation end to end over HTTP in a real ``clearsight server``:
agent heartbeats (strictly validated, a rejected one records nothing), hosts and services discovered
from remote-written metrics, health from the built-in host rules (node_exporter names), a firing
alert and a Falco event, history and the status page, the registry kept across a restart, and a
change event correlated with the CPU rise that followed it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from clearsight.cli.main import app
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from tests.support.peers import start_clearsight

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}
CONFIG = """
resources: {heartbeat_interval: 1m, discovery_interval: 1s}
health: {evaluation_interval: 1s}
correlation: {interval: 1s}
rules: {files: rules.yml, evaluation_interval: 1s}
"""
RULES = """
groups:
  - name: hosts
    rules:
      - alert: HighLoad
        expr: node_load1 > 5
        labels: {severity: warning}
"""
STEP = 15_000


def _heartbeat(host: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"host:{host}", "kind": "host", "name": host, "hostname": host, "os": "linux",
            "kernel": "6.1.0", "machine_id": f"m-{host}", "agent_version": "0.1.0", "tags": {"env": "test"}, **extra}


def _post_hb(url: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(url + "/api/v1/resources/heartbeat", json=body, timeout=10, **kw)


def _get(url: str, path: str, status: int = 200, **params: Any) -> Any:
    r = httpx.get(url + path, params=params, timeout=10)
    assert r.status_code == status, r.text
    return r.json().get("data") if status == 200 else r.json()


def _wait(fn: Any, timeout: float = 90) -> Any:  # a guard against hanging, not a timing assertion
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.25)


def _idle_counter(instance: str, start: int, end: int, usage: Any) -> TimeSeries:
    """node_cpu_seconds_total{mode="idle"} of one CPU whose busy share at time t is usage(t)."""
    pts, idle = [], 0.0
    for t in range(start, end + 1, STEP):
        idle += (STEP / 1000) * (1 - usage(t))
        pts.append((t, idle))
    return TimeSeries([("__name__", "node_cpu_seconds_total"), ("cpu", "0"), ("instance", instance), ("job", "node"),
                       ("mode", "idle")], pts)


def _gauge(name: str, value: float, start: int, end: int, **labels: str) -> TimeSeries:
    return TimeSeries([("__name__", name), *sorted(labels.items())], [(t, value) for t in range(start, end + 1, STEP)])


def _write(url: str, series: list[TimeSeries]) -> None:
    r = httpx.post(url + "/api/v1/write", content=encode_snappy(WriteRequest(series, [])), headers=RW_HEADERS,
                   timeout=30)
    assert r.status_code == 204, r.text


def _health(url: str, rid: str) -> Any:
    return _get(url, f"/api/v1/resources/{rid}/health")


def test_registry_health_and_correlation(tmp_path: Path) -> None:
    workdir = tmp_path / "cs"
    workdir.mkdir()
    (workdir / "rules.yml").write_text(RULES)
    data_dir = tmp_path / "data"
    cs = start_clearsight(workdir, config_yaml=CONFIG, data_dir=data_dir)
    try:
        url = cs.url
        # --- heartbeats: strict contract, nothing recorded from a rejected one ---------------------
        containers = [{"id": "0123456789abcdef", "name": "nginx", "image": "nginx:1.25", "state": "running"}]
        assert _post_hb(url, _heartbeat("web-1", containers=containers)).json() == {
            "status": "success", "data": {"id": "host:web-1", "resources": 2}}
        for host in ("web-3", "i-123"):
            assert _post_hb(url, _heartbeat(host)).status_code == 200
        bad = _post_hb(url, _heartbeat("web-9", containers=[{"id": "x", "ports": [80]}]))
        assert bad.status_code == 400 and "containers[0].ports: unknown field" in bad.json()["error"]
        assert _post_hb(url, {**_heartbeat("web-9"), "id": "host:other"}).status_code == 400
        r = httpx.post(url + "/api/v1/resources/heartbeat", content=b'{"id": "host:web-9"}',
                       headers={"Content-Type": "text/plain"}, timeout=10)
        assert r.status_code == 415
        assert _get(url, "/api/v1/resources/host:web-9", 404)["errorType"] == "not_found"
        assert _get(url, "/api/v1/resources/bad id", 400)["errorType"] == "bad_data"
        assert _get(url, "/api/v1/resources", 400, kind="pod")["errorType"] == "bad_data"

        listed = _get(url, "/api/v1/resources")
        assert [x["id"] for x in listed] == ["container:0123456789abcdef", "host:i-123", "host:web-1", "host:web-3"]
        web1 = _get(url, "/api/v1/resources/host:web-1")
        assert (web1["status"], web1["os"], web1["kernel"], web1["machine_id"], web1["agent_version"],
                web1["tags"], web1["sources"]) == ("up", "linux", "6.1.0", "m-web-1", "0.1.0", {"env": "test"},
                                                   ["agent"])
        assert [x["id"] for x in _get(url, "/api/v1/resources", kind="container")] == ["container:0123456789abcdef"]
        assert _get(url, "/api/v1/resources", tag="env=prod") == []

        # --- metrics: web-1 busy, web-2 (node_uname_info only) discovered, a service from `up` ----
        now = int(time.time() * 1000) // STEP * STEP
        te = now - 8 * 60_000  # the change on i-123
        series = [
            _idle_counter("web-1", now - 10 * 60_000, now, lambda t: 0.97),
            _gauge("node_memory_MemAvailable_bytes", 4e9, now - 10 * 60_000, now, instance="web-1", job="node"),
            _gauge("node_memory_MemTotal_bytes", 8e9, now - 10 * 60_000, now, instance="web-1", job="node"),
            _gauge("node_uname_info", 1, now - 60_000, now, instance="web-2:9100", job="node", nodename="web-2",
                   sysname="Linux", release="6.9.0"),
            _gauge("up", 1, now - 60_000, now, instance="api-1:8080", job="api"),
            _gauge("node_load1", 9, now - 60_000, now, instance="web-3", job="node"),
            _idle_counter("i-123", te - 66 * 60_000, now, lambda t: 0.95 if t >= te + 2 * 60_000 else 0.12),
        ]
        _write(url, series)
        assert _wait(lambda: any(x["id"] == "host:web-2" for x in _get(url, "/api/v1/resources")))
        web2 = _get(url, "/api/v1/resources/host:web-2")
        assert (web2["os"], web2["kernel"], web2["sources"], web2["instances"]) == ("Linux", "6.9.0", ["metrics"],
                                                                                    ["web-2:9100"])
        assert _wait(lambda: any(x["id"] == "service:api" for x in _get(url, "/api/v1/resources", kind="service")))

        # --- health ----------------------------------------------------------------------------
        h = _wait(lambda: (x := _health(url, "host:web-1"))["status"] == "critical" and x)
        # 97 % busy; rate() extrapolates less as the data's end falls inside its window: 97-100
        assert re.fullmatch(r"cpu_usage is (9[7-9](\.\d)?|100)% \(critical at 95%\)", h["reason"]), h
        by_name = {s["name"]: s for s in h["signals"]}
        assert 96.99 <= by_name["cpu_usage"]["value"] <= 100
        assert by_name["memory_usage"]["status"] == "healthy" and abs(by_name["memory_usage"]["value"] - 50) < 1e-9
        assert by_name["liveness"]["status"] == "healthy"
        h3 = _wait(lambda: (x := _health(url, "host:web-3"))["status"] == "warning" and x)
        assert h3["reason"] == "alert HighLoad is firing (severity warning)"

        falco = {"output": "A shell was spawned in a container with an attached terminal", "priority": "Critical",
                 "rule": "Terminal shell in container", "time": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z",
                                                                              time.gmtime()),
                 "hostname": "web-2", "output_fields": {"container.id": "host"}}
        assert httpx.post(url + "/api/v1/falco", json=falco, timeout=10).status_code == 200
        h2 = _wait(lambda: (x := _health(url, "host:web-2"))["status"] == "critical" and x)
        assert h2["reason"].startswith("Terminal shell in container (critical) ")
        assert [s["kind"] for s in h2["signals"] if s["status"] == "critical"] == ["security_event"]

        cli = CliRunner()
        out = cli.invoke(app, ["health", "--resource", "host:web-1", "--url", url])
        assert out.exit_code == 0 and re.search(r"host:web-1: critical \(cpu_usage is [0-9.]+% \(critical at 95%\)\)",
                                                out.output), out.output
        out = cli.invoke(app, ["health", "--resource", "host:web-1", "--history", "-o", "json", "--url", url])
        assert out.exit_code == 0 and json.loads(out.output)["transitions"][0]["status"] == "critical"
        out = cli.invoke(app, ["health", "--resource", "host:nope", "--url", url])
        assert out.exit_code == 1 and "404" in out.output
        hist = _get(url, "/api/v1/resources/host:web-1/health/history")
        assert hist["transitions"][0]["status"] == "critical" and hist["uptime_percent"] is not None
        assert _get(url, "/api/v1/resources/host:web-1/health/history", 400, limit="100000")["errorType"] == "bad_data"
        status = _wait(lambda: (x := _get(url, "/status"))["services"] and x)
        assert status["status"] == "critical"
        api = {s["id"]: s for s in status["services"]}["service:api"]
        assert (api["service"], api["liveness"]) == ("api", "up")
        assert status["resources"]["host"]["critical"] >= 2
        assert _get(url, "/status", 400, window="forever")["errorType"] == "bad_data"

        # --- correlation: a change on i-123, CPU rose 2 minutes later -----------------------------
        change = {"id": "chg-1", "type": "change", "message": "sg-123 opened port 22", "origin": "terraform",
                  "timestamp": te * 1_000_000, "resource": {"host.name": "i-123"}}
        assert httpx.post(url + "/api/v1/events", json=change, timeout=10).status_code == 200
        corrs = _wait(lambda: _get(url, "/api/v1/correlations", resource="host:i-123")["correlations"])
        assert len(corrs) == 1, corrs
        c = corrs[0]
        assert c["message"] == "cpu_usage on host:i-123 rose from 12% to 95% 2 min after change 'sg-123 opened port 22'"
        assert (c["type"], c["data"]["cause"]["id"], c["data"]["anomaly"]["resource"]) == ("correlation", "chg-1",
                                                                                          "host:i-123")
        assert 120 <= c["data"]["delay_seconds"] < 180
        # also an event: GET /api/v1/events?type=correlation
        evs = _get(url, "/api/v1/events", type="correlation")["events"]
        assert [e["id"] for e in evs] == [c["id"]]
        assert _get(url, "/api/v1/correlations", 400, resource="nope")["errorType"] == "bad_data"
        metrics = httpx.get(url + "/metrics", timeout=10).text
        assert "clearsight_correlations_written_total 1.0" in metrics
        assert 'clearsight_resources{kind="host",status="up",tenant="default"}' in metrics
    finally:
        cs.stop()

    # --- restart: the registry and the correlation survive, nothing is correlated twice -----------
    cs = start_clearsight(workdir, config_yaml=CONFIG, data_dir=data_dir)
    try:
        again = _get(cs.url, "/api/v1/resources/host:web-1")
        assert (again["first_seen"], again["machine_id"]) == (web1["first_seen"], "m-web-1")
        time.sleep(3)  # a few correlation passes
        assert len(_get(cs.url, "/api/v1/correlations")["correlations"]) == 1
        assert _get(cs.url, "/api/v1/resources/host:web-1/health/history")["transitions"]
    finally:
        cs.stop()
