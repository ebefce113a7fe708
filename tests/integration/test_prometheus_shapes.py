"""Walks Prometheus' HTTP API endpoint list against a real Prometheus 2.42 and Clearsight (fed the same
data by Prometheus' remote-write) and compares the JSON *shape* of each answer: the envelope, the keys
and the JSON types of every value (list elements compared when both lists are non-empty), the HTTP
status and, for the lifecycle endpoints, the exact text."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import Proc, start_clearsight, start_prometheus

PROM_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: clearsight
    static_configs:
      - targets: ["{target}"]
remote_write:
  - url: "{clearsight}/api/v1/write"
    queue_config: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 1s}}
    metadata_config: {{send_interval: 1s}}
"""

# (method, path, params): every endpoint whose shape Clearsight serves. Error cases compare the envelope.
ENDPOINTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/api/v1/status/buildinfo", {}),
    ("GET", "/api/v1/status/config", {}),
    ("GET", "/api/v1/status/flags", {}),
    ("GET", "/api/v1/status/runtimeinfo", {}),
    ("GET", "/api/v1/status/tsdb", {}),
    ("GET", "/api/v1/status/tsdb", {"limit": "5"}),  # 2.42 ignores limit; 2.53 (our API level) honours it
    ("GET", "/api/v1/targets/metadata", {}),
    ("GET", "/api/v1/alertmanagers", {}),
    ("GET", "/api/v1/query_exemplars", {"query": "up", "start": "0", "end": "100"}),
    ("POST", "/api/v1/query_exemplars", {"query": "up"}),
    ("GET", "/api/v1/query_exemplars", {}),
    ("GET", "/api/v1/query_exemplars", {"query": "up("}),
    ("GET", "/api/v1/query_exemplars", {"query": "up", "start": "abc"}),
    ("GET", "/api/v1/query_exemplars", {"query": "up", "start": "10", "end": "5"}),
    ("GET", "/api/v1/query", {"query": "up"}),
    ("GET", "/api/v1/query", {"query": "up("}),
    ("GET", "/api/v1/query", {"query": "up", "stats": "all"}),
    ("POST", "/api/v1/query_range", {"query": "up", "start": "{t0}", "end": "{t}", "step": "1", "stats": "all"}),
    ("GET", "/api/v1/series", {"match[]": "up"}),
    ("GET", "/api/v1/labels", {}),
    ("GET", "/api/v1/label/job/values", {}),
    ("GET", "/api/v1/metadata", {"limit": "3"}),
    ("POST", "/api/v1/admin/tsdb/delete_series", {}),
    ("POST", "/api/v1/admin/tsdb/delete_series", {"match[]": "up", "start": "abc"}),
    ("PUT", "/api/v1/admin/tsdb/delete_series", {"match[]": "up[5m"}),
]
# (delete_series' 204 and its effect on answers: tests/integration/test_delete_series_prometheus.py)
TEXT_ENDPOINTS = [("GET", "/-/healthy"), ("GET", "/-/ready"), ("HEAD", "/-/healthy"), ("HEAD", "/-/ready"),
                  ("POST", "/-/reload"), ("POST", "/api/v1/admin/tsdb/clean_tombstones"),
                  ("PUT", "/api/v1/admin/tsdb/clean_tombstones")]
# Maps whose keys are each server's own (flag names, metric names): their values' shapes are compared.
FREE_KEYS = {"/api/v1/status/flags", "/api/v1/metadata"}
# buildinfo: Clearsight adds clearsightVersion; its other keys are Prometheus'.
EXTRA_KEYS_OK = {"/api/v1/status/buildinfo": {"clearsightVersion", "application"}}


def shape(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(x) for x in v[:1]]
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if v is None:
        return "null"
    return type(v).__name__


def diff(a: Any, b: Any, where: str, extra_ok: set[str]) -> list[str]:
    """Differences between two shapes (a = Prometheus, b = Clearsight)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: missing" for k in a.keys() - b.keys()]
        out += [f"{where}.{k}: not in Prometheus" for k in b.keys() - a.keys() - extra_ok]
        for k in a.keys() & b.keys():
            out += diff(a[k], b[k], f"{where}.{k}", extra_ok)
        return out
    if isinstance(a, list) and isinstance(b, list):
        return diff(a[0], b[0], f"{where}[0]", extra_ok) if a and b else []
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def _call(proc: Proc, method: str, path: str, params: dict[str, str]) -> httpx.Response:
    if method == "PUT":
        return httpx.put(proc.url + path, params=params, timeout=30)
    if method == "POST":
        return httpx.post(proc.url + path, data=params, timeout=30)
    return httpx.request(method, proc.url + path, params=params, timeout=30)


@pytest.mark.peer
def test_endpoint_shapes_match_prometheus(tmp_path: Path) -> None:
    # The admin API on, as on the Prometheus side, for the loopback anonymous principal (an admin).
    cs = start_clearsight(tmp_path / "cs", config_yaml="server:\n  enable_admin_api: true\nauth:\n  anonymous_role: admin\n")
    prom = None
    try:
        # Prometheus scrapes Clearsight's own /metrics and remote-writes what it scraped to Clearsight.
        prom = start_prometheus(tmp_path / "prom", PROM_CONFIG.format(target=cs.url.removeprefix("http://"),
                                                                      clearsight=cs.url))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = httpx.get(cs.url + "/api/v1/series", params={"match[]": 'up{job="clearsight"}'}).json()
            if got["data"] and httpx.get(cs.url + "/api/v1/metadata").json()["data"]:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no remote-written data in Clearsight:\n{prom.log()}")

        problems: list[str] = []
        now = time.time()
        for method, path, raw_params in ENDPOINTS:
            params = {k: v.format(t=now - 2, t0=now - 4) for k, v in raw_params.items()}
            rp, rc = _call(prom, method, path, params), _call(cs, method, path, params)
            label = f"{method} {path} {params}"
            if rp.status_code != rc.status_code:
                problems.append(f"{label}: HTTP {rp.status_code} (Prometheus) vs {rc.status_code}: {rc.text[:200]}")
                continue
            jp, jc = rp.json(), rc.json()
            if path in FREE_KEYS:
                assert jp["data"] and jc["data"], label
                jp = {**jp, "data": {"*": next(iter(jp["data"].values()))}}
                jc = {**jc, "data": {"*": next(iter(jc["data"].values()))}}
            problems += [f"{label}: {d}" for d in diff(shape(jp), shape(jc), "", EXTRA_KEYS_OK.get(path, set()))]
            if jp.get("status") == "error":
                assert jc["errorType"] == jp["errorType"], (label, jp, jc)
        for method, path in TEXT_ENDPOINTS:
            rp, rc = httpx.request(method, prom.url + path), httpx.request(method, cs.url + path)
            if (rp.status_code, rp.text) != (rc.status_code, rc.text):
                problems.append(f"{method} {path}: {rp.status_code} {rp.text!r} vs {rc.status_code} {rc.text!r}")
        assert not problems, "\n".join(problems)
        # The same data, the same sample counts: one sample of one series at a time both stored.
        latest = httpx.get(cs.url + "/api/v1/query", params={"query": 'timestamp(up{job="clearsight"})'}).json()
        at = {"query": 'up{job="clearsight"}', "time": latest["data"]["result"][0]["value"][1], "stats": "all"}
        counts = [httpx.get(p.url + "/api/v1/query", params=at).json()["data"]["stats"]["samples"]
                  ["totalQueryableSamples"] for p in (prom, cs)]
        assert counts == [1, 1], [httpx.get(p.url + "/api/v1/query", params=at).json() for p in (prom, cs)]
        # Clearsight's tsdb lists are filled from the remote-written series.
        tsdb = httpx.get(cs.url + "/api/v1/status/tsdb").json()["data"]
        assert tsdb["headStats"]["numSeries"] > 0 and tsdb["seriesCountByMetricName"]
    finally:
        if prom is not None:
            prom.stop()
        cs.stop()

