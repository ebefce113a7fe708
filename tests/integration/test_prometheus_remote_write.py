"""A real Prometheus scrapes a real node_exporter and remote-writes to Clearsight; afterwards every
series and every sample Prometheus stored is in Clearsight."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np

from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import stale_mask
from clearsight.store.embedded import EmbeddedMetricsStore
from tests.support.peers import start_clearsight, start_node_exporter, start_prometheus

PROM_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["{node}"]
        labels: {{env: test}}
remote_write:
  - url: "{clearsight}/api/v1/write"
    queue_config:
      batch_send_deadline: 200ms
      max_samples_per_send: 2000
      min_backoff: 50ms
      max_backoff: 1s
    metadata_config:
      send_interval: 1s
"""


def _prom_counts(url: str, at: float) -> dict[Labels, int]:
    # A range-vector selector as an instant query returns every raw sample in the window.
    r = httpx.get(f"{url}/api/v1/query", params={"query": '{job="node"}[1h]', "time": at}, timeout=60)
    r.raise_for_status()
    out: dict[Labels, int] = {}
    for item in r.json()["data"]["result"]:
        labels = dict(item["metric"])
        out[tuple(sorted(labels.items()))] = len(item["values"])
    return out


def test_prometheus_remote_write_lands_every_sample(tmp_path: Path) -> None:
    cs = start_clearsight(tmp_path / "cs")
    node = start_node_exporter(tmp_path / "node")
    prom = None
    try:
        prom = start_prometheus(
            tmp_path / "prom",
            PROM_CONFIG.format(node=node.url.removeprefix("http://"), clearsight=cs.url),
        )
        # Let Prometheus scrape a few times and ship what it scraped.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = httpx.get(f"{cs.url}/api/v1/series", params={"match[]": '{job="node"}'}, timeout=10)
            if r.status_code == 200 and len(r.json()["data"]) > 100:
                break
            time.sleep(0.5)
        time.sleep(4)
        # Metadata arrives too.
        md = httpx.get(f"{cs.url}/api/v1/metadata", params={"metric": "node_cpu_seconds_total"}, timeout=10).json()
        assert md["data"]["node_cpu_seconds_total"][0]["type"] == "counter"
        # Stop Prometheus first: SIGTERM flushes its remote-write queue (flush deadline 1s).
        assert prom.stop() == 0, prom.log()
        prom_dir = tmp_path / "prom"
        assert cs.stop() == 0, cs.log()
    finally:
        node.stop()
        if prom is not None:
            prom.stop()
        cs.stop()

    # What Clearsight holds (read straight from its data directory).
    store = EmbeddedMetricsStore(tmp_path / "cs" / "data", retention_ms=10**12, out_of_order_window_ms=3600_000,
                                 max_active_series_per_tenant=10**7, queue_max_batches=8)
    try:
        data = store.select("default", [Matcher.of("=", "job", "node")], 0, int(time.time() * 1000) + 60_000)
        ours: dict[Labels, int] = {}
        for i in range(len(data)):
            labels, _ts, vals = data.series(i)
            n = int(np.count_nonzero(~stale_mask(vals)))
            if n:
                ours[labels] = n
    finally:
        store.close()

    # What Prometheus stored: restart it on the same TSDB without scraping and ask it.
    prom2 = start_prometheus(prom_dir, "global:\n  scrape_interval: 1h\n")
    try:
        theirs = _prom_counts(prom2.url, time.time())
    finally:
        prom2.stop()

    assert len(theirs) > 100, "node_exporter should expose hundreds of series"
    assert set(ours) == set(theirs), (
        f"series differ: only in prometheus {sorted(set(theirs) - set(ours))[:5]}, "
        f"only in clearsight {sorted(set(ours) - set(theirs))[:5]}")
    mismatched = {k: (ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]}
    assert not mismatched, f"{len(mismatched)} series have different sample counts, e.g. {list(mismatched.items())[:3]}"
    assert sum(ours.values()) == sum(theirs.values())
