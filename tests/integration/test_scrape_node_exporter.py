"""Scrapes a real prometheus-node-exporter with the ScrapeManager into an in-memory sink."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from clearsight.model.labels import Labels
from clearsight.scrape.config import parse_scrape_configs
from clearsight.scrape.manager import REPORT_SERIES, ScrapeManager
from tests.unit.scrape.helpers import MemorySink, select, value

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"

pytestmark = pytest.mark.peer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def node_exporter() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    assert os.access(NODE_EXPORTER, os.X_OK), f"{NODE_EXPORTER} is missing: install prometheus-node-exporter"
    port = _free_port()
    address = f"127.0.0.1:{port}"
    proc = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address={address}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        end = time.monotonic() + 30  # a guard against hanging, not a timing assertion
        while True:
            assert proc.poll() is None, "node_exporter exited at startup"
            try:
                if httpx.get(f"http://{address}/metrics", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end, "node_exporter did not start serving"
            time.sleep(0.1)
        yield proc, address
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def test_scrape_node_exporter_then_kill_it(node_exporter: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, address = node_exporter
    cfgs = parse_scrape_configs(
        yaml.safe_load(
            f"- job_name: node\n  scrape_interval: 15s\n  static_configs: [{{targets: ['{address}']}}]\n"
        ),
        "integration.yml",
    )
    sink = MemorySink()

    def series(batch: list) -> set[Labels]:  # type: ignore[type-arg]
        return {p.labels for p in batch if dict(p.labels)["__name__"] not in REPORT_SERIES and not p.stale}

    async def main() -> None:
        m = ScrapeManager(cfgs, sink, "default", run_loops=False)
        await m.start()
        await m.scrape_now()
        (st,) = m.targets()
        assert st.health == "up", st.last_error
        first = sink.batches[-1]
        assert value(select(first, "up", job="node", instance=address)) == 1.0
        node = [p for p in first if dict(p.labels)["__name__"].startswith("node_")]
        assert len(node) > 50
        assert all(dict(p.labels)["job"] == "node" and dict(p.labels)["instance"] == address for p in first)
        assert any(dict(p.labels)["__name__"] == "node_cpu_seconds_total" for p in node)
        assert value(select(first, "scrape_samples_scraped")) == len(first) - len(REPORT_SERIES)
        meta = {md.metric: md for md in sink.metadata}
        assert meta["node_cpu_seconds_total"].type == "counter"
        assert meta["node_cpu_seconds_total"].help

        await m.scrape_now()
        second = sink.batches[-1]
        assert value(select(second, "up")) == 1.0
        assert series(second) == series(first)
        assert not any(p.stale for p in second)
        assert value(select(second, "scrape_series_added")) == 0.0

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        await m.scrape_now()
        third = sink.batches[-1]
        assert value(select(third, "up", job="node", instance=address)) == 0.0
        stale = {p.labels for p in third if p.stale}
        assert stale == series(second)
        (st,) = m.targets()
        assert st.health == "down" and st.last_error
        await m.stop()

    asyncio.run(main())


def test_scrape_node_exporter_into_the_embedded_store(
    node_exporter: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    """The whole write path: manager -> MetricsIngestor (validation) -> embedded DuckDB store."""
    from clearsight.model.matchers import Matcher
    from clearsight.model.samples import is_stale_nan
    from clearsight.pipeline.ingestor import MetricsIngestor
    from clearsight.pipeline.limits import WriteLimits
    from clearsight.pipeline.validate import make_validator
    from clearsight.store.embedded.duckdb_store import EmbeddedMetricsStore

    proc, address = node_exporter
    cfgs = parse_scrape_configs(
        [{"job_name": "node", "static_configs": [{"targets": [address]}]}], "integration.yml"
    )
    store = EmbeddedMetricsStore(tmp_path / "data")
    try:
        ingestor = MetricsIngestor(store, [make_validator(WriteLimits(), time.time)])

        async def main() -> None:
            m = ScrapeManager(cfgs, ingestor.ingest, "default", run_loops=False)
            await m.start()
            await m.scrape_now()
            await asyncio.sleep(0.01)  # distinct millisecond timestamps for the next scrape
            await m.scrape_now()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            await asyncio.sleep(0.01)
            await m.scrape_now()
            for st in m.targets():
                assert st.write_error == "", st.write_error
            await m.stop()

        asyncio.run(main())
        job = Matcher.of("=", "job", "node")
        up = store.select("default", [Matcher.of("=", "__name__", "up"), job], 0, 2**62)
        assert len(up) == 1
        _, _, values = up.series(0)
        assert values.tolist() == [1.0, 1.0, 0.0]
        cpu = store.select("default", [Matcher.of("=", "__name__", "node_cpu_seconds_total"), job], 0, 2**62)
        assert len(cpu) > 0
        for i in range(len(cpu)):
            labels, ts, vals = cpu.series(i)
            assert dict(labels)["instance"] == address
            assert len(ts) == 3
            assert not any(is_stale_nan(float(v)) for v in vals[:2])
            assert is_stale_nan(float(vals[2]))  # bit-exact stale marker after the target died
        meta = store.metadata("default", "node_cpu_seconds_total")
        assert meta["node_cpu_seconds_total"][0].type == "counter"
    finally:
        store.close()
