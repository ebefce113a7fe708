"""Differential test: a real Prometheus 2.42 scrapes the same expositions as Clearsight.

Each case is served by its own local HTTP server; one Prometheus scrapes all of them. For every
case Prometheus' verdict (target up or down) must equal ours (parse accepted or InvalidInput), and
for accepted ones the stored series, values and metadata must be the same. Known, documented
differences (docs/scraping.md) are not among the cases: Clearsight refuses duplicate series, is
stricter than Prometheus on OpenMetrics family grouping/suffixes, and drops OpenMetrics `_created`
series that Prometheus 2.42 still stores (here those are excluded from the comparison).
"""

from __future__ import annotations

import asyncio
import math
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

from clearsight.ingest.prom_text import parse_prometheus_text
from clearsight.pipeline.errors import InvalidInput
from clearsight.scrape.config import parse_scrape_configs
from clearsight.scrape.manager import REPORT_SERIES, ScrapeManager
from tests.unit.scrape.helpers import ExpositionServer, MemorySink

PROMETHEUS = "/usr/bin/prometheus"
TEXT = "text/plain; version=0.0.4; charset=utf-8"
OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"

pytestmark = pytest.mark.peer

RICH_TEXT = """\
# HELP esc_help Help with \\\\ backslash and \\n newline and \\" quote.
# TYPE esc_help gauge
esc_help{path="C:\\\\dir\\\\f.txt",q="say \\"hi\\"",nl="a\\nb",odd="\\q"} 1
# TYPE special gauge
special{kind="nan"} NaN
special{kind="pinf"} +Inf
special{kind="ninf"} -Inf
special{kind="exp"} 1.5e-3
special{kind="inf2"} Inf
special{kind="infinity"} -infinity
# TYPE hist histogram
hist_bucket{le="0.5"} 1
hist_bucket{le="+Inf"} 2
hist_sum 1.5
hist_count 2
# TYPE summ summary
# HELP summ A summary.
summ{quantile="0.9"} 3
summ_sum 3
summ_count 1
# TYPE unt untyped
unt{a="",b="x"} 7
conflict{job="theirs",instance="i",exported_job="e"} 1
ws   {  a = "1" , }   2
trail{a="1",} 4 \t
plain_created 5
#HELP nospace not a help line
# just a comment

"""

RICH_OM = """\
# TYPE om_req_seconds summary
# UNIT om_req_seconds seconds
# HELP om_req_seconds Latency with \\"quotes\\".
om_req_seconds_sum{path="/api"} 9036.32
om_req_seconds_count{path="/api"} 807283.0
om_req_seconds_created{path="/api"} 1605281325.0
# TYPE om_cpu_seconds counter
# UNIT om_cpu_seconds seconds
om_cpu_seconds_total 4.2e+06 # {trace_id="abc"} 1.0 1605281325.5
om_cpu_seconds_created 1605281325.0
# TYPE om_lat histogram
om_lat_bucket{le="0.5"} 1 # {trace_id="x"} 0.3
om_lat_bucket{le="+Inf"} 2
om_lat_count 2
om_lat_sum 2.1
# TYPE om_build info
om_build_info{version="1.0"} 1
# TYPE om_feature stateset
om_feature{om_feature="a"} 1
om_feature{om_feature="b"} 0
# TYPE om_queue gaugehistogram
om_queue_bucket{le="+Inf"} 3
om_queue_gcount 3
om_queue_gsum 7
# TYPE om_mystery unknown
om_mystery NaN
om_implicit 1
# EOF
"""

# (content type, body, accepted by both)
CASES: list[tuple[str, str, bool]] = [
    (TEXT, RICH_TEXT, True),
    (OM, RICH_OM, True),
    (TEXT, "t_a 1 \n", True),
    (TEXT, "t_b .5\nt_c 1.\nt_d{} 3\n", True),
    (TEXT, "", True),
    (OM, "o_a 1\n# EOF", True),
    (TEXT, "t_e +nan\n", False),
    (TEXT, "t_f 0x1p-2\n", False),
    (TEXT, "t_g 1\r\n", False),
    (TEXT, "t_h 1 -5\n", False),
    (TEXT, "  t_i 1\n", False),
    (TEXT, "t_j abc\n", False),
    (TEXT, "t_k 1e400\n", False),
    (TEXT, "t_l 1 2 3\n", False),
    (TEXT, 't_m{a="1"\n', False),
    (TEXT, "t_n{a=1} 1\n", False),
    (TEXT, "# TYPE t_o countr\n", False),
    (OM, "o_b 1\n", False),
    (OM, "o_c 1 \n# EOF\n", False),
    (OM, "o_d 1\n# EOF\n\n", False),
    (OM, "# TYPE o_e_bytes gauge\n# UNIT o_e_bytes seconds\no_e_bytes 1\n# EOF\n", False),
    (OM, 'o_f{a="1", b="2"} 1\n# EOF\n', False),
    (OM, "o_g +nan\n# EOF\n", False),
    (OM, "o_h 1 abc\n# EOF\n", False),
    (OM, "# TYPE o_i bogus\n# EOF\n", False),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ours_accepts(ct: str, body: str) -> bool:
    try:
        parse_prometheus_text(body.encode(), ct, 0)
    except InvalidInput:
        return False
    return True


@pytest.fixture
def servers() -> Iterator[list[ExpositionServer]]:
    out = []
    try:
        for ct, body, _ in CASES:
            s = ExpositionServer()
            s.exposition.content_type = ct
            s.exposition.body = body
            out.append(s)
        yield out
    finally:
        for s in out:
            s.close()


@pytest.fixture
def prometheus(tmp_path: Path, servers: list[ExpositionServer]) -> Iterator[str]:
    assert os.access(PROMETHEUS, os.X_OK), f"{PROMETHEUS} is missing: install prometheus"
    cfg = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {"job_name": "diff", "static_configs": [{"targets": [s.address for s in servers]}]}
        ],
    }
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


def _wait_all_scraped(address: str) -> dict[str, dict[str, Any]]:
    end = time.monotonic() + 60  # a guard against hanging, not a timing assertion
    while True:
        try:
            r = httpx.get(f"http://{address}/api/v1/targets", timeout=5)
            targets = r.json()["data"]["activeTargets"] if r.status_code == 200 else []
        except httpx.HTTPError:
            targets = []
        by_addr = {t["labels"]["instance"]: t for t in targets}
        if len(by_addr) == len(CASES) and all(t["health"] != "unknown" for t in by_addr.values()):
            return by_addr
        assert time.monotonic() < end, "Prometheus did not scrape every target"
        time.sleep(0.2)


def _prom_series(address: str, instance: str) -> dict[tuple[tuple[str, str], ...], str]:
    r = httpx.get(f"http://{address}/api/v1/query", params={"query": f'{{instance="{instance}"}}'}, timeout=5)
    return {tuple(sorted(x["metric"].items())): x["value"][1] for x in r.json()["data"]["result"]}


def _same(a: str, b: float) -> bool:
    fa = float(a)
    return (math.isnan(fa) and math.isnan(b)) or fa == b


def test_clearsight_and_prometheus_agree(prometheus: str, servers: list[ExpositionServer]) -> None:
    by_addr = _wait_all_scraped(prometheus)
    verdicts = []
    for (ct, body, expected), s in zip(CASES, servers, strict=True):
        prom_up = by_addr[s.address]["health"] == "up"
        verdicts.append((body[:30], ct[:10], prom_up, _ours_accepts(ct, body), expected))
    mismatched = [v for v in verdicts if not (v[2] == v[3] == v[4])]
    assert not mismatched, f"(body, type, prometheus up, clearsight accepts, expected): {mismatched}"

    # Same series and values for the accepted expositions, through the whole scrape manager.
    cfgs = parse_scrape_configs(
        [{"job_name": "diff", "static_configs": [{"targets": [s.address for s in servers]}]}], "diff"
    )
    sink = MemorySink()

    async def scrape() -> None:
        m = ScrapeManager(cfgs, sink, "t", run_loops=False)
        await m.start()
        await m.scrape_now()
        await m.stop()

    asyncio.run(scrape())
    ours: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for p in sink.points:
        d = dict(p.labels)
        if d["__name__"] not in REPORT_SERIES:
            ours.setdefault(d["instance"], {})[p.labels] = p.value
    compared = 0
    for (ct, body, accepted), s in zip(CASES, servers, strict=True):
        if not accepted:
            continue
        prom = _prom_series(prometheus, s.address)
        prom = {k: v for k, v in prom.items() if dict(k)["__name__"] not in REPORT_SERIES}
        if ct == OM:  # Prometheus 2.42 stores OpenMetrics _created series; Clearsight drops them
            prom = {k: v for k, v in prom.items() if not dict(k)["__name__"].endswith("_created")}
        mine = ours.get(s.address, {})
        assert set(prom) == set(mine), (s.address, set(prom) ^ set(mine))
        for k, v in prom.items():
            assert _same(v, mine[k]), (k, v, mine[k])
        assert prom or body == "", body
        compared += len(prom)
    assert compared >= 35

    # Same metadata (type, help, unit) per family.
    r = httpx.get(f"http://{prometheus}/api/v1/metadata", timeout=5)
    prom_meta = r.json()["data"]
    families = {md.metric for md in sink.metadata} - set(REPORT_SERIES)
    assert len(families) >= 12
    for md in sink.metadata:
        if md.metric in REPORT_SERIES:
            continue
        assert md.metric in prom_meta, md.metric
        assert {"type": md.type, "help": md.help, "unit": md.unit} in prom_meta[md.metric], (
            md,
            prom_meta[md.metric],
        )
