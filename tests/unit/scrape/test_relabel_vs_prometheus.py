"""Differential test: Prometheus 2.42 and Clearsight load the same scrape config.

Target relabeling (every action, meta labels, templated target labels, __param_*, __scheme__,
__metrics_path__) must give the same active targets (labels, URL), discovered labels and dropped
targets as Prometheus reports in /api/v1/targets; metric relabeling and the honor_labels conflict
rules must give the same stored series for a real scrape.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from clearsight.scrape.config import parse_scrape_configs
from clearsight.scrape.manager import REPORT_SERIES, ScrapeManager
from clearsight.scrape.target import static_groups, targets_from_groups
from tests.unit.scrape.helpers import ExpositionServer, MemorySink

PROMETHEUS = "/usr/bin/prometheus"

pytestmark = pytest.mark.peer

EXPOSITION = """\
req{code="200",noise="1"} 1
req{code="503",noise="2"} 2
drop_me 1
keep_me{path="/x",job="theirs"} 3
Mixed_Case{v="A"} 4
"""


def scrape_config(expo_address: str) -> dict[str, Any]:
    return {
        "job_name": "rl",
        "scrape_interval": "1s",
        "params": {"module": ["m1"]},
        "static_configs": [
            {"targets": [expo_address], "labels": {"team": "Alpha", "env": "prod"}},
            {"targets": ["10.0.0.1:9100", "10.0.0.2:9100", "drop-me:1", "web-1:8080", "web-2:8080"],
             "labels": {"__meta_kind": "web", "zone": "eu-1"}},
            {"targets": ["eq:1"], "labels": {"a": "x", "b": "x", "addr_copy": "eq:1"}},
            {"targets": ["neq:1"], "labels": {"a": "x", "b": "y"}},
        ],
        "relabel_configs": [
            {"action": "drop", "source_labels": ["__address__"], "regex": "drop-.*"},
            {"action": "dropequal", "source_labels": ["__address__"], "target_label": "addr_copy"},
            {"source_labels": ["__address__"], "regex": "([^:]+):(\\d+)", "target_label": "host",
             "replacement": "${1}"},
            {"source_labels": ["__address__"], "regex": "([^:]+):(\\d+)", "target_label": "port_$2",
             "replacement": "p$2x"},
            {"source_labels": ["__address__"], "regex": "([^:]+):(\\d+)", "target_label": "suffix",
             "replacement": "$1_x"},
            {"action": "labelmap", "regex": "__meta_(.*)", "replacement": "meta_$1"},
            {"action": "hashmod", "source_labels": ["__address__"], "modulus": 4, "target_label": "shard"},
            {"action": "lowercase", "source_labels": ["team"], "target_label": "team_lc"},
            {"action": "uppercase", "source_labels": ["zone", "team"], "target_label": "ZONE"},
            {"source_labels": ["zone"], "regex": "eu-(\\d)", "target_label": "__param_region",
             "replacement": "r$1"},
            {"action": "labeldrop", "regex": "env"},
            {"source_labels": ["host"], "regex": "web-2", "target_label": "__scheme__", "replacement": "https"},
            {"source_labels": ["host"], "regex": "web-1", "target_label": "__metrics_path__",
             "replacement": "/other"},
            {"source_labels": ["host"], "regex": "10\\.0\\.0\\.2", "target_label": "__scrape_interval__",
             "replacement": "2s"},
            {"source_labels": ["host"], "regex": "10\\.0\\.0\\.1", "target_label": "instance",
             "replacement": "node-one"},
            {"action": "keepequal", "source_labels": ["a"], "target_label": "a"},
            {"action": "labelkeep", "regex": "__.*|job|host|port_.*|meta_.*|shard|team.*|ZONE|zone|instance|a|b"},
        ],
        "metric_relabel_configs": [
            {"action": "drop", "source_labels": ["__name__"], "regex": "drop_.*"},
            {"source_labels": ["__name__", "code"], "separator": "_", "regex": "req_(\\d)..",
             "target_label": "class", "replacement": "${1}xx"},
            {"action": "labeldrop", "regex": "noise"},
            {"action": "lowercase", "source_labels": ["v"], "target_label": "v"},
            {"action": "hashmod", "source_labels": ["__name__"], "modulus": 7, "target_label": "h"},
        ],
    }  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def expo() -> Iterator[ExpositionServer]:
    s = ExpositionServer()
    s.exposition.body = EXPOSITION
    yield s
    s.close()


@pytest.fixture
def prometheus(tmp_path: Path, expo: ExpositionServer) -> Iterator[str]:
    assert os.access(PROMETHEUS, os.X_OK), f"{PROMETHEUS} is missing: install prometheus"
    cfg = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
           "scrape_configs": [scrape_config(expo.address)]}  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    address = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address={address}", "--storage.remote.flush-deadline=1s"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield address
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _get(address: str, path: str, **params: str) -> Any:
    end = time.monotonic() + 60  # a guard against hanging, not a timing assertion
    while True:
        try:
            r = httpx.get(f"http://{address}{path}", params=params, timeout=5)
            if r.status_code == 200:
                return r.json()["data"]
        except httpx.HTTPError:
            pass
        assert time.monotonic() < end, f"Prometheus did not answer {path}"
        time.sleep(0.2)


def test_targets_and_series_match_prometheus(prometheus: str, expo: ExpositionServer) -> None:
    cfg = scrape_config(expo.address)
    (ours_cfg,) = parse_scrape_configs(
        [cfg], "diff.yml", global_scrape_interval=1.0, global_scrape_timeout=1.0
    )
    ours = targets_from_groups(ours_cfg, static_groups(ours_cfg))

    end = time.monotonic() + 60
    while True:
        data = _get(prometheus, "/api/v1/targets")
        if data["activeTargets"] and any(t["health"] == "up" for t in data["activeTargets"]):
            break
        assert time.monotonic() < end, "Prometheus never scraped the exposition"
        time.sleep(0.2)

    def key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(labels.items()))

    prom_active = {(key(t["labels"]), t["scrapeUrl"]) for t in data["activeTargets"]}
    ours_active = {(t.labels, t.url) for t in ours.active}
    assert ours_active == prom_active
    assert len(ours_active) == 6
    prom_discovered = {key(t["discoveredLabels"]) for t in data["activeTargets"]}
    assert {t.discovered_labels for t in ours.active} == prom_discovered
    prom_dropped = {key(t["discoveredLabels"]) for t in data["droppedTargets"]}
    assert set(ours.dropped) == prom_dropped
    assert len(prom_dropped) == 2
    intervals = {t["labels"]["instance"]: t["scrapeInterval"] for t in data["activeTargets"]}
    assert {dict(t.labels)["instance"]: f"{t.interval:g}s" for t in ours.active} == intervals

    # metric relabeling and exported_ conflicts, through a real scrape
    sink = MemorySink()
    api: dict[str, Any] = {}

    async def scrape() -> None:
        m = ScrapeManager([ours_cfg], sink, "t", run_loops=False)
        await m.start()
        api.update(m.api_targets())
        await m.scrape_now()
        await m.stop()

    asyncio.run(scrape())
    mine = {
        p.labels: p.value
        for p in sink.points
        if dict(p.labels).get("instance") == expo.address and dict(p.labels)["__name__"] not in REPORT_SERIES
    }
    result = _get(prometheus, "/api/v1/query", query=f'{{instance="{expo.address}"}}')["result"]
    prom = {
        key(x["metric"]): float(x["value"][1]) for x in result if x["metric"]["__name__"] not in REPORT_SERIES
    }
    assert mine == prom
    assert len(prom) == 4

    # /api/v1/targets shape: same keys, same static fields (health/lastScrape differ by nature).
    static = ("discoveredLabels", "labels", "scrapePool", "scrapeUrl", "scrapeInterval", "scrapeTimeout")

    def by_url(targets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {t["scrapeUrl"]: t for t in targets}

    ours_api, prom_api = by_url(api["activeTargets"]), by_url(data["activeTargets"])
    assert ours_api.keys() == prom_api.keys()
    for url, t in prom_api.items():
        assert set(ours_api[url]) == set(t)
        assert {k: ours_api[url][k] for k in static} == {k: t[k] for k in static}
        assert ours_api[url]["health"] == "unknown" and ours_api[url]["lastScrape"] == "0001-01-01T00:00:00Z"

    def dropped(targets: list[dict[str, Any]]) -> set[tuple[tuple[str, str], ...]]:
        return {key(t["discoveredLabels"]) for t in targets}

    assert dropped(api["droppedTargets"]) == dropped(data["droppedTargets"])
