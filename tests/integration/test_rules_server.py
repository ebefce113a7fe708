"""Rules end to end in a real ``clearsight server``: a rule file, data remote-written, the alert
goes pending -> firing in ``/api/v1/alerts``, ``ALERTS`` and the recording rule's series are
queryable, ``/metrics`` counts evaluations, a bad reload keeps the previous rules, removing a rule
writes stale markers, SIGHUP reloads, and a restart restores the firing alert without re-firing it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from tests.support.peers import start_clearsight

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}

RULES = """
groups:
  - name: e2e
    interval: 1s
    rules:
      - record: room:temperature:max
        expr: max by (room) (temperature)
      - alert: TooHot
        expr: temperature > 50
        for: 2s
        labels:
          severity: page
        annotations:
          summary: "room {{ $labels.room }} at {{ $value }} degrees"
"""


def _get(url: str, path: str, **params: Any) -> Any:
    r = httpx.get(url + path, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def _wait(fn: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.2)


def _firing(url: str) -> list[dict[str, Any]]:
    return [a for a in _get(url, "/api/v1/alerts")["alerts"] if a["state"] == "firing"]


def test_rules_in_a_real_server(tmp_path: Path) -> None:
    rules = tmp_path / "cs" / "rules.yml"
    rules.parent.mkdir(parents=True)
    rules.write_text(RULES)
    config = "server:\n  enable_lifecycle: true\nrules:\n  files: rules.yml\n  evaluation_interval: 1s\n"
    data_dir = tmp_path / "data"
    cs = start_clearsight(tmp_path / "cs", config_yaml=config, data_dir=data_dir)
    try:
        now = int(time.time() * 1000)
        body = encode_snappy(WriteRequest([TimeSeries([("__name__", "temperature"), ("room", "a")],
                                                      [(now - 1000, 70.0), (now, 71.0)]),
                                           TimeSeries([("__name__", "temperature"), ("room", "b")],
                                                      [(now, 20.0)])], []))
        assert httpx.post(cs.url + "/api/v1/write", content=body, headers=RW_HEADERS, timeout=10).status_code == 204

        firing = _wait(lambda: _firing(cs.url))
        assert [a["labels"] for a in firing] == [{"alertname": "TooHot", "room": "a", "severity": "page"}]
        assert firing[0]["annotations"] == {"summary": "room a at 71 degrees"}
        assert firing[0]["value"] == "7.1e+01"
        active_at = firing[0]["activeAt"]

        alerts = _get(cs.url, "/api/v1/query", query='ALERTS{alertname="TooHot"}')["result"]
        assert [(r["metric"]["alertstate"], r["value"][1]) for r in alerts] == [("firing", "1")]
        recorded = _get(cs.url, "/api/v1/query", query="room:temperature:max")["result"]
        assert sorted((r["metric"]["room"], r["value"][1]) for r in recorded) == [("a", "71"), ("b", "20")]

        groups = _get(cs.url, "/api/v1/rules")["groups"]
        assert [(g["name"], g["interval"], [r["type"] for r in g["rules"]]) for g in groups] == [
            ("e2e", 1, ["recording", "alerting"])]
        alerting = groups[0]["rules"][1]
        assert (alerting["state"], alerting["duration"], alerting["health"]) == ("firing", 2, "ok")
        only_record = _get(cs.url, "/api/v1/rules", type="record")["groups"]
        assert [r["name"] for r in only_record[0]["rules"]] == ["room:temperature:max"]
        assert httpx.get(cs.url + "/api/v1/rules", params={"type": "x"}, timeout=10).status_code == 400

        metrics = httpx.get(cs.url + "/metrics", timeout=10).text
        iterations = [line for line in metrics.splitlines()
                      if line.startswith("clearsight_rule_group_iterations_total{") and ";e2e" in line]
        assert iterations and float(iterations[0].rsplit(" ", 1)[1]) >= 2

        # A bad file: 500 naming the problem, the previous rules keep running.
        rules.write_text(RULES.replace("for: 2s", "for: 2 seconds"))
        r = httpx.post(cs.url + "/-/reload", timeout=10)
        assert r.status_code == 500 and 'field "for"' in r.text
        assert len(_get(cs.url, "/api/v1/rules")["groups"][0]["rules"]) == 2

        # Removing the recording rule: its series get stale markers and vanish from instant queries.
        rules.write_text(RULES.replace("      - record: room:temperature:max\n        expr: max by (room) "
                                       "(temperature)\n", ""))
        assert httpx.post(cs.url + "/-/reload", timeout=10).status_code == 200
        assert _get(cs.url, "/api/v1/query", query="room:temperature:max")["result"] == []
        assert _firing(cs.url)[0]["activeAt"] == active_at  # state kept across the reload

        # SIGHUP reloads too.
        rules.write_text(RULES + "  - name: extra\n    rules:\n"
                         "      - record: extra:one\n        expr: vector(1)\n")
        os.kill(cs.pid, signal.SIGHUP)
        assert _wait(lambda: len(_get(cs.url, "/api/v1/rules")["groups"]) == 2)
        assert _firing(cs.url)[0]["activeAt"] == active_at

        # A group managed through the API: evaluated and recorded like the files' groups.
        group = "name: api\ninterval: 1s\nrules:\n  - record: api:five\n    expr: vector(5)\n"
        assert httpx.post(cs.url + "/api/v1/rules/team", content=group, timeout=10).status_code == 202
        five = _wait(lambda: _get(cs.url, "/api/v1/query", query="api:five")["result"])
        assert [r["value"][1] for r in five] == ["5"]
    finally:
        cs.stop()

    # A restart restores the firing alert (same activeAt): it is not pending again, not re-fired.
    cs = start_clearsight(tmp_path / "cs", config_yaml=config, data_dir=data_dir)
    try:
        restored = _firing(cs.url)
        assert [(a["labels"]["alertname"], a["activeAt"]) for a in restored] == [("TooHot", active_at)]
        assert [g["name"] for g in _get(cs.url, "/api/v1/rules")["groups"]] == ["e2e", "extra", "api"]
    finally:
        cs.stop()
