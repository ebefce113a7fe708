"""The agent's host collector next to Debian's prometheus-node-exporter on this machine.

node_exporter is scraped, the agent collects, node_exporter is scraped again. Every family both expose
must have the same label sets; values must agree: exactly for sizes, totals and info families,
between the two scrapes for counters, within the two scrapes (plus a small band for memory and free
space that other processes move meanwhile) for gauges. Instantaneous counts (running processes,
I/Os in flight) are compared by name and labels only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clearsight.agent.collectors.host import HostCollector
from tests.support.peers import Proc, start_node_exporter

pytestmark = pytest.mark.peer

Series = dict[str, dict[frozenset[tuple[str, str]], float]]

EXACT = {
    "node_boot_time_seconds", "node_uname_info", "node_disk_info", "node_network_up", "node_network_mtu_bytes",
    "node_filesystem_size_bytes", "node_filesystem_files", "node_filesystem_readonly",
    "node_filesystem_device_error", "node_memory_MemTotal_bytes", "node_memory_SwapTotal_bytes",
    "node_memory_HugePages_Total", "node_memory_Hugepagesize_bytes", "node_memory_VmallocTotal_bytes",
    "node_memory_CommitLimit_bytes",
}
INSTANTANEOUS = {"node_procs_running", "node_procs_blocked", "node_disk_io_now"}
# families the test insists on (the list): if one is missing on either side, the test fails
REQUIRED = {
    "node_cpu_seconds_total", "node_load1", "node_load5", "node_load15", "node_memory_MemTotal_bytes",
    "node_memory_MemAvailable_bytes", "node_memory_SwapFree_bytes", "node_filesystem_size_bytes",
    "node_filesystem_avail_bytes", "node_filesystem_free_bytes", "node_filesystem_files",
    "node_filesystem_files_free", "node_filesystem_readonly", "node_disk_reads_completed_total",
    "node_disk_read_bytes_total", "node_disk_written_bytes_total", "node_disk_io_time_seconds_total",
    "node_network_receive_bytes_total", "node_network_transmit_bytes_total", "node_network_receive_packets_total",
    "node_network_receive_errs_total", "node_network_receive_drop_total", "node_boot_time_seconds",
    "node_time_seconds", "node_procs_running", "node_procs_blocked", "node_uname_info",
}


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[Proc]:
    proc = start_node_exporter(tmp_path / "ne")
    try:
        yield proc
    finally:
        proc.stop()


def scrape(url: str) -> Series:
    text = httpx.get(url + "/metrics", timeout=30).text
    out: Series = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = float(s.value)
    return out


def collect_agent() -> Series:
    out: Series = {}
    for s in HostCollector().collect():
        out.setdefault(s.name, {})[frozenset(s.labels)] = s.value
    return out


def band(name: str, key: frozenset[tuple[str, str]], ne1: Series, ne2: Series) -> float:
    """How far a gauge may move outside the two scrapes (other processes allocate and write meanwhile)."""
    if name.startswith("node_memory_"):
        return 0.02 * ne1["node_memory_MemTotal_bytes"][frozenset()]
    if name in ("node_filesystem_free_bytes", "node_filesystem_avail_bytes"):
        return 0.01 * ne1["node_filesystem_size_bytes"][key]
    if name == "node_filesystem_files_free":
        return 0.01 * ne1["node_filesystem_files"][key]
    return 0.0


def test_every_family_both_expose_agrees(node_exporter: Proc) -> None:
    ne1 = scrape(node_exporter.url)
    t0 = time.time()
    agent = collect_agent()
    t1 = time.time()
    ne2 = scrape(node_exporter.url)

    common = sorted(set(agent) & set(ne1) & set(ne2))
    assert not REQUIRED - set(common), f"families missing on one side: {sorted(REQUIRED - set(common))}"
    problems: list[str] = []
    for name in common:
        keys = set(agent[name])
        if keys != set(ne1[name]) and keys != set(ne2[name]):
            problems.append(f"{name}: label sets differ: agent {sorted(map(sorted, keys))} "
                            f"node_exporter {sorted(map(sorted, ne1[name]))}")
            continue
        for key, v in agent[name].items():
            a, b = ne1[name].get(key), ne2[name].get(key)
            if a is None or b is None:
                continue  # a series that appeared or vanished between the scrapes
            lo, hi = min(a, b), max(a, b)
            if name in EXACT:
                ok = v == a == b
            elif name == "node_time_seconds":
                ok = t0 <= v <= t1
            elif name in INSTANTANEOUS:
                ok = v >= 0 and math.isfinite(v)
            elif name.endswith("_total"):
                ok = a <= v <= b  # counters: between the two reads
            else:
                slack = band(name, key, ne1, ne2)
                ok = lo - slack <= v <= hi + slack
            if not ok:
                problems.append(f"{name}{dict(key)}: agent {v!r}, node_exporter {a!r} then {b!r}")
    assert not problems, "\n".join(problems)
    assert len(common) >= len(REQUIRED)
