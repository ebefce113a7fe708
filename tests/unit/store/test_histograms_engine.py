"""The PromQL engine over native histograms stored in the embedded store answers exactly as over the
same samples held in memory (store.memory.MemorySeriesSelector, the engine's reference selector):
histogram_quantile, histogram_count, histogram_sum, histogram_fraction, rate, increase, sum, with
the samples in the head, compacted, and after a reopen."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from clearsight.model.histogram import FloatHistogram
from clearsight.model.samples import STALE_NAN
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.result import QueryResult
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.memory import MemorySeriesSelector
from clearsight.store.storetest.contract import L
from clearsight.store.storetest.contract_histograms import custom_hist, hist, hwrite

QUERIES = [
    "histogram_quantile(0.9, rate(rpc_seconds[1m]))",
    "histogram_quantile(0.5, sum by (job) (rate(rpc_seconds[2m])))",
    "histogram_count(rate(rpc_seconds[1m]))",
    "histogram_sum(increase(rpc_seconds[2m]))",
    "histogram_fraction(0, 4, rpc_seconds)",
    "sum(rpc_seconds)",
    "rate(rpc_seconds[1m])",
    "histogram_count(custom)",
    "histogram_quantile(0.75, custom)",
    "histogram_sum(custom)",
    "rpc_seconds",
]
STEP = 15_000


def _series() -> list[tuple[tuple[tuple[str, str], ...], list[tuple[int, float | FloatHistogram]]]]:
    out: list[tuple[tuple[tuple[str, str], ...], list[tuple[int, float | FloatHistogram]]]] = []
    for j, job in enumerate(["a", "b", "c"]):
        samples: list[tuple[int, float | FloatHistogram]] = [
            (k * STEP, hist(k * (j + 1), integer=j != 1)) for k in range(1, 40)
        ]
        if job == "c":
            samples[20] = (samples[20][0], STALE_NAN)  # a stale marker in the middle
            samples[30:] = [(t, hist(k)) for k, (t, _) in enumerate(samples[30:])]  # a counter reset
        out.append((L(__name__="rpc_seconds", job=job), samples))
    out.append((L(__name__="custom", job="a"), [(k * STEP, custom_hist(k)) for k in range(1, 40)]))
    return out


def _memory() -> MemorySeriesSelector:
    mem = MemorySeriesSelector()
    for labels, samples in _series():
        ts = [t for t, _ in samples]
        vals = [v if isinstance(v, float) else math.nan for _, v in samples]
        hs = [v if isinstance(v, FloatHistogram) else None for _, v in samples]
        mem.add(labels, ts, vals, histograms=hs)
    return mem


def _same(a: QueryResult, b: QueryResult) -> None:
    assert [s.labels for s in a.series] == [s.labels for s in b.series]
    for x, y in zip(a.series, b.series, strict=True):
        assert x.timestamps.tolist() == y.timestamps.tolist()
        np.testing.assert_array_equal(x.values, y.values)
        xh = x.histograms or [None] * len(x.timestamps)
        yh = y.histograms or [None] * len(y.timestamps)
        for p, q in zip(xh, yh, strict=True):
            assert (p is None) == (q is None)
            if p is not None and q is not None:
                assert p.equals(q), (p, q)


@pytest.mark.parametrize("compact", [False, True], ids=["head", "compacted"])
def test_engine_answers_from_stored_histograms(tmp_path: Path, compact: bool) -> None:
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**12, out_of_order_window_ms=3_600_000)
    try:
        series = _series()
        # Written scrape by scrape (a row per series and commit), as a remote-write sender does.
        for k in range(39):
            hwrite(store, "t", [(labels, samples[k : k + 1]) for labels, samples in series])
        if compact:
            store.compact()
        mem = _memory()
        engine = Engine()
        for q in QUERIES:
            want = engine.range(mem, q, 60_000, 39 * STEP, STEP)
            got = engine.range(store.querier("t"), q, 60_000, 39 * STEP, STEP)
            assert want.series, f"{q}: the reference answers nothing"
            _same(got, want)
        store.close()
        store = EmbeddedMetricsStore(tmp_path, retention_ms=10**12, out_of_order_window_ms=3_600_000)
        for q in QUERIES:
            _same(engine.instant(store.querier("t"), q, 30 * STEP), engine.instant(mem, q, 30 * STEP))
    finally:
        store.close()
