"""A real Prometheus 2.42 scrapes Clearsight's ``/federate`` (``honor_labels: true``) and then answers the
same values, labels and timestamps as Clearsight for the federated series."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from tests.support.peers import start_clearsight, start_prometheus

PROM_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      "match[]": ['{{job="app"}}']
    static_configs:
      - targets: ["{target}"]
"""
RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


def _vector(url: str, query: str) -> dict[tuple[tuple[str, str], ...], list[Any]]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=30)
    assert r.status_code == 200, r.text
    return {tuple(sorted(s["metric"].items())): s["value"][1] for s in r.json()["data"]["result"]}


def test_prometheus_scrapes_federate(tmp_path: Path) -> None:
    cs = start_clearsight(tmp_path / "cs")
    prom = None
    try:
        now = int(time.time() * 1000)
        series = [TimeSeries([("__name__", "app_requests_total"), ("job", "app"), ("instance", f"h{i}:80"),
                              ("code", str(c))], [(now - 60_000, 1.0), (now - 2000, 100.0 * i + c + 0.125)])
                  for i in range(3) for c in (200, 500)]
        series.append(TimeSeries([("__name__", "app_temp_celsius"), ("job", "app"), ("instance", "h0:80")],
                                 [(now - 2000, -12345678.5)]))
        series.append(TimeSeries([("__name__", "other_job_metric"), ("job", "other")], [(now - 2000, 7.0)]))
        r = httpx.post(f"{cs.url}/api/v1/write", content=encode_snappy(WriteRequest(series)), headers=RW)
        assert r.status_code == 204, r.text
        prom = start_prometheus(tmp_path / "prom", PROM_CONFIG.format(target=cs.url.removeprefix("http://")))
        deadline = time.monotonic() + 60
        theirs: dict[tuple[tuple[str, str], ...], list[Any]] = {}
        while time.monotonic() < deadline:
            theirs = _vector(prom.url, '{job="app"}')
            if len(theirs) == 7:
                break
            time.sleep(0.5)
        mine = _vector(cs.url, '{job="app"}')
        assert len(mine) == 7
        # honor_labels kept the federated job/instance; the values are the same
        assert theirs == mine
        # the exposition timestamps were honoured: the sample is at Clearsight's timestamp
        r = httpx.get(f"{prom.url}/api/v1/query", params={"query": "app_temp_celsius[5m]"}, timeout=30)
        [s] = r.json()["data"]["result"]
        assert s["values"][-1] == [(now - 2000) / 1000, "-12345678.5"]
        assert _vector(prom.url, "other_job_metric") == {}
        up = _vector(prom.url, 'up{job="federate"}')
        assert list(up.values()) == ["1"]
    finally:
        if prom is not None:
            prom.stop()
        cs.stop()
