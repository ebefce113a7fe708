"""The native-histogram part of the ``MetricsStore`` contract (``contract.py``'s conventions).

A store keeps native histogram samples (``SampleBatch.histograms``) as it keeps floats: durable
once acknowledged, all-or-nothing, tenant-scoped, the newest write of a timestamp wins, the
out-of-order window and retention apply, and ``select`` returns them in ``SeriesData.histograms``
(aligned with ``timestamps``, the ``values`` entry NaN). Histogram stale markers travel as float
``STALE_NAN`` samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from clearsight.model.histogram import CounterResetHint, FloatHistogram
from clearsight.model.labels import Labels
from clearsight.model.samples import STALE_NAN, HistogramSamples, SampleBatch, SeriesData, canonical_key
from clearsight.store.interface import AppendResult, MetricsStore
from clearsight.store.storetest.contract import (
    DAY_MS,
    Check,
    L,
    StoreFactory,
    _open,
    bits,
    check_well_formed,
    m,
)

H_A = L(__name__="rpc_seconds", job="a")
H_B = L(__name__="rpc_seconds", job="b")
MIXED = L(__name__="mixed", job="a")


def hist(k: int, *, schema: int = 1, integer: bool = True) -> FloatHistogram:
    """A histogram that grows with ``k``: positive and negative buckets with a gap, a zero bucket."""
    scale = 1.0 if integer else 0.37
    pos = {-2: 1.0 + k, -1: 2.0 * k, 3: 5.0 + k, 4: 1.0}
    neg = {0: 1.0 * k, 2: 3.0}
    zc = 2.0 + k
    pos = {i: c * scale for i, c in pos.items()}
    neg = {i: c * scale for i, c in neg.items()}
    count = sum(pos.values()) + sum(neg.values()) + zc * scale
    return FloatHistogram.build(
        schema=schema,
        count=count,
        sum=12.5 * k - 3.25,
        zero_threshold=0.001,
        zero_count=zc * scale,
        positive=pos,
        negative=neg,
        counter_reset_hint=CounterResetHint.NOT_RESET if k else CounterResetHint.UNKNOWN,
    )


def custom_hist(k: int) -> FloatHistogram:
    return FloatHistogram.build(
        schema=-53,
        count=6.0 + k,
        sum=4.5 * k,
        positive={0: 1.0, 1: 2.0 + k, 3: 3.0},
        custom_values=[0.1, 0.5, 1.0, 5.0],
    )


def hbatch(series: Sequence[tuple[Labels, Sequence[tuple[int, float | FloatHistogram]]]]) -> SampleBatch:
    """A batch where a sample's value is a float or a ``FloatHistogram``."""
    keys: list[bytes] = []
    f_idx: list[int] = []
    f_ts: list[int] = []
    f_v: list[float] = []
    h_idx: list[int] = []
    h_ts: list[int] = []
    hs: list[FloatHistogram] = []
    for i, (labels, samples) in enumerate(series):
        keys.append(canonical_key(labels))
        for t, v in samples:
            if isinstance(v, FloatHistogram):
                h_idx.append(i)
                h_ts.append(t)
                hs.append(v)
            else:
                f_idx.append(i)
                f_ts.append(t)
                f_v.append(v)
    base = SampleBatch.from_series([(lbl, []) for lbl, _ in series])
    base.series_idx = np.asarray(f_idx, dtype=np.int32)
    base.timestamps = np.asarray(f_ts, dtype=np.int64)
    base.values = np.asarray(f_v, dtype=np.float64)
    base.keys = keys
    base.histograms = HistogramSamples(
        np.asarray(h_idx, dtype=np.int32), np.asarray(h_ts, dtype=np.int64), hs
    )
    return base


def hwrite(
    store: MetricsStore,
    tenant: str,
    series: Sequence[tuple[Labels, Sequence[tuple[int, float | FloatHistogram]]]],
) -> AppendResult:
    return store.append(tenant, hbatch(series)).result(timeout=60)


def as_hdict(data: SeriesData) -> dict[Labels, list[tuple[int, float | FloatHistogram]]]:
    """Series -> samples, a histogram sample as its ``FloatHistogram``."""
    check_well_formed(data)
    out: dict[Labels, list[tuple[int, float | FloatHistogram]]] = {}
    for i in range(len(data)):
        labels, ts, vs = data.series(i)
        a = int(data.offsets[i])
        hs = data.histograms[a : a + ts.shape[0]] if data.histograms is not None else [None] * ts.shape[0]
        samples: list[tuple[int, float | FloatHistogram]] = []
        for t, v, h in zip(ts.tolist(), vs.tolist(), list(hs), strict=True):
            if h is not None:
                assert math.isnan(v), "a histogram sample's float value must be NaN"
                samples.append((t, h))
            else:
                samples.append((t, v))
        out[labels] = samples
    return out


def same(
    got: Sequence[tuple[int, float | FloatHistogram]], want: Sequence[tuple[int, float | FloatHistogram]]
) -> bool:
    if len(got) != len(want):
        return False
    for (t1, v1), (t2, v2) in zip(got, want, strict=True):
        if t1 != t2:
            return False
        if isinstance(v1, FloatHistogram) or isinstance(v2, FloatHistogram):
            if not (isinstance(v1, FloatHistogram) and isinstance(v2, FloatHistogram)):
                return False
            if not (
                v1.equals(v2)
                and bits(v1.sum) == bits(v2.sum)
                and v1.counter_reset_hint == v2.counter_reset_hint
                and v1.zero_threshold == v2.zero_threshold
            ):
                return False
        elif bits(v1) != bits(v2):
            return False
    return True


Samples = Sequence[tuple[int, float | FloatHistogram]]


def _assert_series(data: SeriesData, want: Mapping[Labels, Samples]) -> None:
    got = as_hdict(data)
    assert sorted(got) == sorted(want), f"series {sorted(got)} != {sorted(want)}"
    for lbls, samples in want.items():
        diff = [(g, w) for g, w in zip(got[lbls], samples, strict=False) if not same([g], [w])]
        assert same(got[lbls], samples), (
            f"{lbls}: {len(got[lbls])} vs {len(samples)} samples, first diffs {diff[:2]}"
        )
    assert list(data.labels) == sorted(data.labels), "series must come in label order"


def check_histograms_round_trip(factory: StoreFactory, d: Path) -> None:
    """Integer, float and custom-bucket histograms, a series mixing floats, histograms and a stale
    marker; inclusive ranges; durable across close and reopen."""
    a = [(t * 1000, hist(t)) for t in range(1, 6)]
    b = [(t * 1000, hist(t, schema=-2, integer=False)) for t in range(1, 4)]
    mixed: list[tuple[int, float | FloatHistogram]] = [
        (1000, 1.5),
        (2000, custom_hist(1)),
        (3000, STALE_NAN),
        (4000, custom_hist(2)),
    ]
    store = _open(factory, d)
    try:
        res = hwrite(store, "t", [(H_A, a[:3]), (H_B, b), (MIXED, mixed)])
        assert res.samples_written == 3 + 3 + 4 and res.series_created == 3
        hwrite(store, "t", [(H_A, a[3:])])
        want: dict[Labels, Samples] = {H_A: a, H_B: b, MIXED: mixed}
        _assert_series(store.select("t", [m('job=~"a|b"')], 0, 10_000), want)
        _assert_series(
            store.select("t", [m('__name__="rpc_seconds"')], 2000, 4000), {H_A: a[1:4], H_B: b[1:]}
        )
        assert store.series("t", [[m('__name__="rpc_seconds"')]], 0, 10_000) == [H_A, H_B]
        # Other tenants see nothing.
        assert len(store.select("u", [m('job=~".+"')], 0, 10_000)) == 0
    finally:
        store.close()
    store = _open(factory, d)
    try:
        _assert_series(store.select("t", [m('job=~"a|b"')], 0, 10_000), want)
    finally:
        store.close()


def check_histograms_overwrite_and_window(factory: StoreFactory, d: Path) -> None:
    """The newest write of a timestamp wins (also over a float there); samples older than the
    out-of-order window are dropped and counted, with the batch's other samples kept."""
    store = _open(factory, d, out_of_order_window_ms=10_000)
    try:
        hwrite(store, "t", [(H_A, [(1000, hist(1)), (2000, hist(2))]), (MIXED, [(5000, 1.0)])])
        hwrite(store, "t", [(H_A, [(2000, hist(7)), (3000, hist(3))]), (MIXED, [(5000, hist(5))])])
        _assert_series(
            store.select("t", [m('job="a"')], 0, 10_000),
            {H_A: [(1000, hist(1)), (2000, hist(7)), (3000, hist(3))], MIXED: [(5000, hist(5))]},
        )
        hwrite(store, "t", [(H_A, [(60_000, hist(60))])])
        res = hwrite(store, "t", [(H_A, [(40_000, hist(40)), (55_000, hist(55))])])
        assert res.out_of_bounds == 1 and res.samples_written == 1
        _assert_series(
            store.select("t", [m('__name__="rpc_seconds"')], 30_000, 70_000),
            {H_A: [(55_000, hist(55)), (60_000, hist(60))]},
        )
        # Many small writes (each a row) read back in order, once.
        for k in range(30):
            hwrite(store, "t", [(H_B, [(100_000 + k * 1000, hist(k))])])
        hwrite(store, "t", [(H_B, [(100_000 + 25 * 1000, hist(99))])])  # inside the window
        want: Samples = [(100_000 + k * 1000, hist(99 if k == 25 else k)) for k in range(30)]
        _assert_series(store.select("t", [m('job="b"')], 0, 200_000), {H_B: want})
        store.flush()
    finally:
        store.close()
    store = _open(factory, d, out_of_order_window_ms=10_000)
    try:
        _assert_series(store.select("t", [m('job="b"')], 0, 200_000), {H_B: want})
    finally:
        store.close()


def check_histograms_retention(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d, retention_ms=10_000)
    try:
        hwrite(
            store,
            "t",
            [(H_A, [(1000, hist(1)), (2000, hist(2))]), (H_B, [(1000, hist(1)), (20_000, hist(3))])],
        )
        store.apply_retention(22_000)  # cutoff 12_000
        _assert_series(
            store.select("t", [m('__name__="rpc_seconds"')], 0, 100_000), {H_B: [(20_000, hist(3))]}
        )
        assert store.series("t", [], 0, 100_000) == [H_B]
        res = hwrite(store, "t", [(H_A, [(5000, hist(5)), (15_000, hist(15))])])
        assert res.out_of_bounds == 1 and res.samples_written == 1
        _assert_series(store.select("t", [m('job="a"')], 0, 100_000), {H_A: [(15_000, hist(15))]})
    finally:
        store.close()


def check_histograms_all_or_nothing(factory: StoreFactory, d: Path) -> None:
    """A batch refused by a limit writes none of its histograms."""
    store = _open(factory, d, max_active_series_per_tenant=1)
    try:
        hwrite(store, "t", [(H_A, [(1000, hist(1))])])
        fut = store.append("t", hbatch([(H_A, [(2000, hist(2))]), (H_B, [(2000, hist(2))])]))
        try:
            fut.result(timeout=60)
            raise AssertionError("the series limit must refuse the batch")
        except Exception as e:
            assert type(e).__name__ == "LimitExceeded", e
        _assert_series(store.select("t", [m('__name__="rpc_seconds"')], 0, 10_000), {H_A: [(1000, hist(1))]})
    finally:
        store.close()


HISTOGRAM_CHECKS: list[Check] = [
    check_histograms_round_trip,
    check_histograms_overwrite_and_window,
    check_histograms_retention,
    check_histograms_all_or_nothing,
]

__all__ = ["DAY_MS", "HISTOGRAM_CHECKS", "as_hdict", "custom_hist", "hbatch", "hist", "hwrite"]
