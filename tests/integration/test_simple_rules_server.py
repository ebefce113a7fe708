"""Simple rules (GoSight style) evaluated by a real server: a log rule over LogQL, an event rule over
the event streams and a metric rule over PromQL fire, and show in /api/v1/rules and /api/v1/alerts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from tests.support.peers import start_clearsight

RULES = """
groups:
- name: simple
  interval: 1s
  rules:
  - name: PaymentErrors
    type: log
    match: {app: shop}
    contains: payment failed
    window: 10m
    expression: {operator: ">", value: 1}
    level: critical
  - name: RootShell
    type: event
    match: {type: process_spawn, level: error}
    contains: shell
    level: warning
  - name: HotRoom
    type: metric
    match: {__name__: temperature}
    expression: {operator: ">", value: 30}
    repeat_interval: 2h
    notify_on_resolve: false
  - name: QuietLog
    type: log
    match: {app: nobody}
"""


def _firing(url: str) -> dict[str, dict[str, Any]]:
    alerts = httpx.get(f"{url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return {a["labels"]["alertname"]: a for a in alerts if a["state"] == "firing"}


def _wait_for(f: Any) -> Any:
    deadline = time.monotonic() + 30
    while not (out := f()) and time.monotonic() < deadline:
        time.sleep(0.3)
    return out


def test_simple_rules_fire_from_logs_events_and_metrics(tmp_path: Path) -> None:
    work = tmp_path / "cs"
    work.mkdir()
    (work / "rules.yml").write_text(RULES)
    cs = start_clearsight(work, config_yaml="rules:\n  files: rules.yml\n  evaluation_interval: 1s\n")
    try:
        now = time.time_ns()
        push = {"streams": [{"stream": {"app": "shop"}, "values": [
            [str(now - 2_000_000_000), "payment failed order=1"], [str(now - 1_000_000_000), "payment failed order=2"],
            [str(now - 500_000_000), "payment ok order=3"]]}]}
        assert httpx.post(f"{cs.url}/loki/api/v1/push", json=push, timeout=10).status_code == 204
        evs = [{"message": "spawned shell in container", "level": "ERROR", "type": "process_spawn"},
               {"message": "spawned shell", "level": "INFO", "type": "process_spawn"}]
        assert httpx.post(f"{cs.url}/api/v1/events", json=evs, timeout=10).status_code == 200
        body = encode_snappy(WriteRequest([TimeSeries([("__name__", "temperature"), ("room", "a")],
                                                      [(now // 1_000_000, 35.0)])]))
        assert httpx.post(f"{cs.url}/api/v1/write", content=body, timeout=10, headers={
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0"}).status_code == 204

        deadline = time.monotonic() + 60
        firing: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline and len(firing) < 3:
            firing = _firing(cs.url)
            time.sleep(0.5)
        assert set(firing) == {"PaymentErrors", "RootShell", "HotRoom"}, cs.log()
        pay = firing["PaymentErrors"]
        assert pay["labels"] == {"alertname": "PaymentErrors", "app": "shop", "severity": "critical"}
        assert float(pay["value"]) == 2.0 and pay["annotations"] == {"summary": "PaymentErrors"}
        root = firing["RootShell"]
        assert (root["labels"]["event_type"], root["labels"]["level"]) == ("process_spawn", "ERROR")
        assert firing["HotRoom"]["labels"]["room"] == "a"
        # repeat_interval / notify_on_resolve reach the built-in notifier as the alert's annotations
        hints = {"summary": "HotRoom", "clearsight_repeat_interval": "2h", "clearsight_notify_on_resolve": "false"}
        assert firing["HotRoom"]["annotations"] == hints
        held = _wait_for(lambda: [a for a in httpx.get(f"{cs.url}/api/v2/alerts", timeout=10).json()
                                  if a["labels"]["alertname"] == "HotRoom"])
        assert held[0]["annotations"] == hints

        groups = httpx.get(f"{cs.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        assert rules["PaymentErrors"]["query"].startswith('sum by (app) (count_over_time({app="shop"}')
        assert rules["QuietLog"]["health"] == "ok" and rules["QuietLog"]["state"] == "inactive"
    finally:
        cs.stop()
