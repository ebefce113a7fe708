"""``EmbeddedMetricsStore.warm_caches``: after a reopen, the chunks of the last ``window_ms`` are
decoded into the decoded-chunk cache, newest first, no more than the cache holds; reads then hit
the cache and answer exactly as without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clearsight.model.labels import make_labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import SampleBatch
from clearsight.store.embedded import EmbeddedMetricsStore

HOUR = 3_600_000
END = 10 * HOUR  # samples every minute from 0 to 10 h
SERIES = [make_labels({"__name__": "node_load1", "instance": f"h{i}"}) for i in range(4)]
ALL = [Matcher.of("=", "__name__", "node_load1")]


def _open(d: Path, **kw: int) -> EmbeddedMetricsStore:
    opts: dict[str, int] = {"retention_ms": 10**12, "out_of_order_window_ms": HOUR, "duckdb_threads": 1,
                            "compact_min_rows": 1, "compact_samples_per_series": 30, "chunk_target_samples": 120}
    opts.update(kw)
    return EmbeddedMetricsStore(d, **opts)  # type: ignore[arg-type]


def _stored(tmp_path: Path) -> Path:
    store = _open(tmp_path)
    try:
        for h in range(END // HOUR):  # an hour at a time, compacted: a chunk per series and hour
            batch = [(labels, [(t, float(i * 1000 + t // 60_000)) for t in range(h * HOUR, (h + 1) * HOUR, 60_000)])
                     for i, labels in enumerate(SERIES)]
            store.append("t", SampleBatch.from_series(batch)).result()
            store.compact()
    finally:
        store.close()  # a clean stop compacts the head: every sample is in a chunk
    return tmp_path


def _chunks(store: EmbeddedMetricsStore) -> tuple[np.ndarray, np.ndarray]:
    snap = store._catalog.snapshot()
    return snap.max_ts, snap.n


def test_warming_decodes_the_newest_chunks_and_reads_then_hit_the_cache(tmp_path: Path) -> None:
    d = _stored(tmp_path)
    cold = _open(d)
    try:
        want = cold.select("t", ALL, END - HOUR // 2, END)
    finally:
        cold.close()
    store = _open(d)
    try:
        max_ts, n = _chunks(store)
        assert len(max_ts) > len(SERIES)  # several chunks per series: some are not recent
        recent = max_ts >= int(max_ts.max()) - HOUR
        assert store.warm_caches(window_ms=HOUR) == int(n[recent].sum())
        cache = store._chunk_cache
        assert cache.samples == int(n[recent].sum())
        misses = cache.misses
        got = store.select("t", ALL, END - HOUR // 2, END)
        assert cache.misses == misses
        assert cache.hits > 0
        assert got.labels == want.labels
        assert got.timestamps.tolist() == want.timestamps.tolist()
        assert got.values.tolist() == want.values.tolist()
    finally:
        store.close()


def test_warming_takes_no_more_than_the_cache_holds_newest_first(tmp_path: Path) -> None:
    d = _stored(tmp_path)
    store = _open(d, chunk_cache_samples=250)
    try:
        max_ts, n = _chunks(store)
        newest_first = np.argsort(-max_ts, kind="stable")
        fit = int(np.searchsorted(np.cumsum(n[newest_first]), 250, side="right"))
        assert 0 < fit < len(n)
        decoded = store.warm_caches(window_ms=END)
        assert decoded == int(n[newest_first[:fit]].sum())
        assert decoded <= 250
        assert store._chunk_cache.samples == decoded
        # the chunks kept are the newest ones: reading the newest of one series hits, its oldest misses
        cache = store._chunk_cache
        h0 = [*ALL, Matcher.of("=", "instance", "h0")]
        misses = cache.misses
        store.select("t", h0, END - HOUR, END)
        assert cache.misses == misses
        store.select("t", h0, 0, HOUR)
        assert cache.misses == misses + 1
    finally:
        store.close()


def test_warming_an_empty_store_decodes_nothing(tmp_path: Path) -> None:
    store = _open(tmp_path)
    try:
        assert store.warm_caches() == 0
        assert store._chunk_cache.samples == 0
    finally:
        store.close()
