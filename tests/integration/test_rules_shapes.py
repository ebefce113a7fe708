"""``/api/v1/rules`` and ``/api/v1/alerts`` have Prometheus 2.42's shapes: both servers load the same
rule file and receive the same remote-written data; every key and value type must match (recording
rule with labels, alerting rule with a firing alert, a failing rule with lastError)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from tests.integration.test_prometheus_shapes import diff, shape
from tests.support.peers import start_clearsight, start_prometheus

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}
RULES = """
groups:
  - name: shapes
    interval: 1s
    rules:
      - record: room:temperature:max
        expr: max by (room) (temperature)
        labels: {source: rule}
      - alert: TooHot
        expr: temperature > 50
        labels: {severity: page}
        annotations: {summary: "{{ $labels.room }} is hot"}
      - alert: Broken
        expr: temperature + on(room) group_left temperature
"""


def _data(url: str, path: str, **params: Any) -> Any:
    r = httpx.get(url + path, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _ready(url: str) -> bool:
    groups = _data(url, "/api/v1/rules")["data"]["groups"]
    if not groups:
        return False
    rules = {r["name"]: r for r in groups[0]["rules"]}
    return bool(rules["TooHot"]["alerts"]) and "lastError" in rules["Broken"]


def test_rules_and_alerts_shapes_match_prometheus(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    prom = start_prometheus(tmp_path / "prom", f"global:\n  evaluation_interval: 1s\nrule_files: [{rules}]\n")
    cs = start_clearsight(tmp_path / "cs", config_yaml=f"rules:\n  files: {rules}\n")
    try:
        now = int(time.time() * 1000)
        # Two series with the same room: the group_left rule fails on both servers (many-to-many).
        body = encode_snappy(WriteRequest([
            TimeSeries([("__name__", "temperature"), ("room", "a"), ("sensor", "1")], [(now, 70.0)]),
            TimeSeries([("__name__", "temperature"), ("room", "a"), ("sensor", "2")], [(now, 71.0)])], []))
        for url in (prom.url, cs.url):
            assert httpx.post(url + "/api/v1/write", content=body, headers=RW_HEADERS, timeout=10).status_code == 204
        deadline = time.monotonic() + 60
        while not (_ready(prom.url) and _ready(cs.url)):
            assert time.monotonic() < deadline, "no firing alert / rule error on both servers within 60 s"
            time.sleep(0.3)
        for path, params in (("/api/v1/rules", {}), ("/api/v1/alerts", {}), ("/api/v1/rules", {"type": "alert"})):
            p, c = _data(prom.url, path, **params), _data(cs.url, path, **params)
            # Compare each rule kind with its counterpart (lists compare their first element).
            if path == "/api/v1/rules":
                for body_ in (p, c):
                    for g in body_["data"]["groups"]:
                        g["rules"] = sorted(g["rules"], key=lambda r: (r["type"], "lastError" not in r))
                for i in range(len(p["data"]["groups"][0]["rules"])):
                    pr, cr = p["data"]["groups"][0]["rules"][i], c["data"]["groups"][0]["rules"][i]
                    assert (pr["name"], pr["type"]) == (cr["name"], cr["type"])
                    assert diff(shape(pr), shape(cr), f"{path} rule {pr['name']}", set()) == []
            assert diff(shape(p), shape(c), path, set()) == []
        p_alerts = _data(prom.url, "/api/v1/alerts")["data"]["alerts"]
        c_alerts = _data(cs.url, "/api/v1/alerts")["data"]["alerts"]
        assert sorted(a["labels"]["sensor"] for a in p_alerts) == sorted(a["labels"]["sensor"] for a in c_alerts)
        assert {a["annotations"]["summary"] for a in c_alerts} == {"a is hot"}
    finally:
        cs.stop()
        prom.stop()
