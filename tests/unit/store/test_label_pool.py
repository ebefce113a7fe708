"""The store's label pool (store/embedded/label_pool.py): label sets made of shared pairs, equal to
what was written, and the memory a series costs the metrics store once its pairs are shared."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

from clearsight.model.labels import make_labels
from clearsight.store.embedded.duckdb_store import EmbeddedMetricsStore
from clearsight.store.embedded.label_pool import LabelPool
from clearsight.store.storetest.contract import L, batch, m, write


def test_interned_sets_are_equal_and_share_their_pairs() -> None:
    pool = LabelPool()
    a = pool.intern(L(__name__="up", job="node", instance="a:9100"))
    b = pool.intern(make_labels([("__name__", "up"), ("job", "node"), ("instance", "b:9100")]))
    assert a == L(__name__="up", job="node", instance="a:9100")
    assert b == L(__name__="up", job="node", instance="b:9100")
    shared = [p for p in a if p in b]
    assert [p[0] for p in shared] == ["__name__", "job"]
    for p in shared:  # the very same tuple object in both sets, not an equal copy
        assert any(q is p for q in b)
    assert len(pool) == 4


def test_keep_only_forgets_the_pairs_of_dead_sets() -> None:
    pool = LabelPool()
    a = pool.intern(L(__name__="up", job="node", instance="a"))
    pool.intern(L(__name__="up", job="node", instance="b"))
    assert pool.keep_only([a]) == 1
    assert len(pool) == 3
    again = pool.intern(L(__name__="up", job="node", instance="a"))
    assert all(x is y for x, y in zip(again, a, strict=True))


def _series(first: int, n: int) -> list[tuple[tuple[tuple[str, str], ...], list[tuple[int, float]]]]:
    """node_exporter-like: 8 metrics x 250 hosts x cpus, one sample each."""
    out = []
    for i in range(first, first + n):
        out.append((L(__name__=f"node_metric_{i % 8}", job="node", instance=f"host-{(i // 8) % 250}:9100",
                      cpu=str(i // 2000), mode="idle"), [(1_700_000_000_000, float(i))]))
    return out


def test_a_new_series_costs_the_store_under_500_bytes_of_python_memory(tmp_path: Path) -> None:
    """Before the pool each series held its own copies of every pair (~1,250 bytes traced per
    series on this workload, ~290 with it). Measured with tracemalloc over allocations made in clearsight's code
    while the store takes new series; the request batches are built before (the raw key bytes the
    key cache keeps from them are the decoder's allocation, not counted here)."""
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**15, out_of_order_window_ms=10**12,
                                 max_active_series_per_tenant=0, duckdb_threads=1)
    try:
        warm = _series(0, 2_000)
        for k in range(0, len(warm), 500):
            write(store, "t", warm[k:k + 500])
        more = _series(2_000, 8_000)
        batches = [more[k:k + 500] for k in range(0, len(more), 500)]
        prepared = [batch(b) for b in batches]
        del more, batches
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for b in prepared:
                store.append("t", b).result(timeout=60)
            store.flush()
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        grown = sum(s.size_diff for s in after.compare_to(before, "filename")
                    if "/clearsight/" in s.traceback[0].filename)
        per_series = grown / 8_000
        assert per_series < 500, f"{per_series:.0f} bytes per series"
        got = store.select("t", [m('job="node"')], 0, 2 * 10**12)
        assert len(got) == 10_000  # every series is there, with its own labels
        assert store.series("t", [[m('instance="host-3:9100"'), m('__name__="node_metric_1"')]], 0, 2 * 10**12) == [
            L(__name__="node_metric_1", job="node", instance="host-3:9100", cpu=str(c), mode="idle") for c in range(5)]
    finally:
        store.close()
