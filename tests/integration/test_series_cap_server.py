"""The global series cap (``limits.max_series_total``): rotating tenant ids cannot grow the series
past it. Before, each new tenant id got a fresh per-tenant allowance (issue 8, item 6)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.model.matchers import Matcher
from clearsight.pipeline.series_budget import host_memory_bytes, series_total_for
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.interface import LimitExceeded
from clearsight.store.storetest import workload
from tests.support.peers import start_clearsight

CONFIG = """
tenancy:
  trust_tenant_header: true
limits:
  max_active_series_per_tenant: 45
  max_series_total: 100
"""
HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


def _body(tenant_no: int, n: int, ts: int) -> bytes:
    return encode_snappy(WriteRequest([
        TimeSeries([("__name__", "cap_test"), ("t", str(tenant_no)), ("s", str(i))], [(ts, 1.0)]) for i in range(n)
    ]))


def test_rotating_tenants_stop_at_the_global_cap(tmp_path: Path) -> None:
    proc = start_clearsight(tmp_path, config_yaml=CONFIG)
    ts = int(time.time() * 1000) - 600_000
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as c:
            codes = []
            for k in range(8):  # 30 new series per tenant, well under the per-tenant limit
                r = c.post("/api/v1/write", content=_body(k, 30, ts), headers={**HEADERS, "X-Scope-OrgID": f"t{k}"})
                codes.append(r.status_code)
                if r.status_code != 204:
                    assert r.status_code == 400
                    assert "max_series_total" in r.text and "100" in r.text
            assert codes == [204, 204, 204, 400, 400, 400, 400, 400]
            # existing series of an accepted tenant still take samples at the cap
            r = c.post("/api/v1/write", content=_body(0, 30, ts + 1000), headers={**HEADERS, "X-Scope-OrgID": "t0"})
            assert r.status_code == 204
            # a request mixing existing and new series is refused whole: its known series get nothing
            r = c.post("/api/v1/write", content=_body(1, 41, ts + 2000), headers={**HEADERS, "X-Scope-OrgID": "t1"})
            assert r.status_code == 400 and "max_series_total" in r.text
            m = c.get("/metrics").text
            assert 'reason="limit_max_series_total"' in m
            assert "\nclearsight_store_max_series_total 100.0\n" in m
    finally:
        assert proc.stop() == 0
    store = EmbeddedMetricsStore(tmp_path / "data", retention_ms=10**13)
    try:
        st = store.stats()
        assert st.total_series == 90
        assert set(st.active_series) == {"t0", "t1", "t2"}
        d = store.select("t1", [Matcher.of("=", "__name__", "cap_test")], 0, 2**62)
        assert len(d) == 30 and d.timestamps.size == 30  # nothing of the refused request
    finally:
        store.close()


def test_store_cap_counts_the_batches_of_one_group(tmp_path: Path) -> None:
    labels = workload.series_labels(60)
    store = EmbeddedMetricsStore(tmp_path, max_series_total=50, queue_max_batches=64, duckdb_threads=1)
    try:
        futs = []
        for k in range(3):  # queued together: one group commit
            b = workload.scrape_batches(labels[k * 20:(k + 1) * 20], workload.timestamps(1),
                                        workload.values_matrix(20, 1))[0]
            futs.append(store.append(f"tenant{k}", b))
        outcomes = []
        for f in futs:
            try:
                outcomes.append(f.result(30).series_created)
            except LimitExceeded as e:
                assert e.limit == "max_series_total"
                outcomes.append(-1)
        assert outcomes == [20, 20, -1]
        assert store.stats().total_series == 40
        assert set(store.stats().active_series) == {"tenant0", "tenant1"}
    finally:
        store.close()


def test_the_default_cap_is_sized_from_memory_logged_and_exported(tmp_path: Path) -> None:
    proc = start_clearsight(tmp_path)  # no limits section: max_series_total auto
    try:
        want = series_total_for(host_memory_bytes())
        m = httpx.get(proc.url + "/metrics", timeout=30).text
        got = [float(line.split()[1]) for line in m.splitlines() if line.startswith("clearsight_store_max_series_total ")]
        assert got == [want]
    finally:
        assert proc.stop() == 0
    assert f"limits.max_series_total: auto = {want} series" in proc.log()
