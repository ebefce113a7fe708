"""The backend-agnostic contract of ``store.interface.MetricsStore``, as reusable checks.

Every check is a function ``check_x(factory, data_dir)``: ``factory(data_dir, **options)`` opens a
store (a second call with the same ``data_dir`` after ``close()`` must see the same data, which an
external backend can satisfy by reconnecting to the same server and namespace). A backend's test
module runs them all::

    @pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
    def test_contract(check, tmp_path):
        check(my_factory, tmp_path)
"""

from __future__ import annotations

import concurrent.futures
import math
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from clearsight.model.labels import Labels, make_labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import STALE_NAN, MetricMetadata, SampleBatch, SeriesData, stale_mask
from clearsight.store.interface import (
    AppendResult,
    InvalidBatch,
    LimitExceeded,
    MetricsStore,
    StoreClosed,
)

DAY_MS = 24 * 3600 * 1000


class StoreFactory(Protocol):
    def __call__(
        self,
        data_dir: Path,
        *,
        retention_ms: int = ...,
        out_of_order_window_ms: int = ...,
        max_active_series_per_tenant: int = ...,
    ) -> MetricsStore: ...


Check = Callable[[StoreFactory, Path], None]

# --- helpers -------------------------------------------------------------------------------------


def L(**kv: str) -> Labels:
    """``L(__name__="up", job="a")`` -> canonical labels."""
    return make_labels(kv)


def batch(
    series: Sequence[tuple[Labels, Sequence[tuple[int, float]]]], metadata: list[MetricMetadata] | None = None
) -> SampleBatch:
    return SampleBatch.from_series([(lbl, list(s)) for lbl, s in series], metadata)


def write(
    store: MetricsStore,
    tenant: str,
    series: Sequence[tuple[Labels, Sequence[tuple[int, float]]]],
    metadata: list[MetricMetadata] | None = None,
) -> AppendResult:
    return store.append(tenant, batch(series, metadata)).result(timeout=60)


def m(spec: str) -> Matcher:
    """``m('job=~"a|b"')`` -> Matcher."""
    for op in ("=~", "!~", "!=", "="):
        name, sep, rest = spec.partition(op)
        if sep and rest.startswith('"') and rest.endswith('"'):
            return Matcher.of(op, name, rest[1:-1])
    raise ValueError(spec)


def as_dict(data: SeriesData) -> dict[Labels, list[tuple[int, float]]]:
    out: dict[Labels, list[tuple[int, float]]] = {}
    for i in range(len(data)):
        labels, ts, vs = data.series(i)
        assert labels not in out, f"series {labels} returned twice"
        out[labels] = list(zip(ts.tolist(), vs.tolist(), strict=True))
    return out


def bits(v: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", v))[0])


def check_well_formed(data: SeriesData) -> None:
    """Offsets consistent, per-series timestamps strictly ascending, the optional ``histograms`` and
    ``start_timestamps`` columns (when not None) aligned with ``timestamps``."""
    assert data.offsets.shape[0] == len(data.labels) + 1
    assert int(data.offsets[0]) == 0 and int(data.offsets[-1]) == data.timestamps.shape[0]
    assert data.timestamps.shape == data.values.shape
    assert data.timestamps.dtype == np.int64 and data.values.dtype == np.float64
    if data.histograms is not None:
        assert data.histograms.shape == data.timestamps.shape, "histograms must align with timestamps"
        assert data.histograms.dtype == np.dtype(object)
    if data.start_timestamps is not None:
        assert data.start_timestamps.shape == data.timestamps.shape, "start_timestamps must align with timestamps"
        assert data.start_timestamps.dtype == np.int64
    for i in range(len(data)):
        _, ts, _ = data.series(i)
        assert ts.shape[0] > 0, "a selected series must have samples"
        assert bool(np.all(np.diff(ts) > 0)), "timestamps must be strictly ascending"


def _open(factory: StoreFactory, d: Path, **kw: int) -> MetricsStore:
    opts: dict[str, int] = {
        "retention_ms": 365 * DAY_MS,
        "out_of_order_window_ms": 3_600_000,
        "max_active_series_per_tenant": 0,
    }
    opts.update(kw)
    return factory(d, **opts)


UP_A = L(__name__="up", job="a", instance="x")
UP_B = L(__name__="up", job="b", instance="y")
UP_C = L(__name__="up", job="c")  # no instance label
RQ = L(__name__="requests_total", job="a", code="200")

# --- checks --------------------------------------------------------------------------------------


def check_round_trip(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d)
    try:
        res = write(
            store,
            "t",
            [(UP_A, [(1000, 1.0), (2000, 2.5)]), (UP_B, [(1500, -3.0)]), (RQ, [(1000, 10.0), (3000, 1e300)])],
        )
        assert res.samples_written == 5 and res.series_created == 3
        assert res.out_of_bounds == 0 and res.duplicates == 0
        data = store.select("t", [m('__name__="up"')], 0, 10_000)
        check_well_formed(data)
        assert as_dict(data) == {UP_A: [(1000, 1.0), (2000, 2.5)], UP_B: [(1500, -3.0)]}
        everything = store.select("t", [m('job=~".+"')], 0, 10_000)
        assert as_dict(everything)[RQ] == [(1000, 10.0), (3000, 1e300)]
        # Samples given out of order within a batch come back sorted.
        write(store, "t", [(UP_C, [(5000, 5.0), (4000, 4.0)])])
        assert as_dict(store.querier("t").select([m('job="c"')], 0, 10_000)) == {
            UP_C: [(4000, 4.0), (5000, 5.0)]
        }
    finally:
        store.close()


def check_matchers(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d)
    try:
        write(
            store,
            "t",
            [(UP_A, [(1000, 1.0)]), (UP_B, [(1000, 2.0)]), (UP_C, [(1000, 3.0)]), (RQ, [(1000, 4.0)])],
        )

        def sel(*specs: str) -> set[Labels]:
            data = store.select("t", [m(s) for s in specs], 0, 2000)
            check_well_formed(data)
            return set(data.labels)

        assert sel('__name__="up"') == {UP_A, UP_B, UP_C}
        assert sel('__name__="up"', 'job!="a"') == {UP_B, UP_C}
        assert sel('job=~"a|b"') == {UP_A, UP_B, RQ}
        assert sel('job=~"a"') == {UP_A, RQ}
        assert sel('job=~"b.*"') == {UP_B}
        assert sel('job=~"."', '__name__="up"') == {UP_A, UP_B, UP_C}
        assert sel('instance=~"[xy]"') == {UP_A, UP_B}
        assert sel('__name__="up"', 'job!~"a|c"') == {UP_B}
        assert sel('__name__="nope"') == set()
        assert sel('job="a"', 'job="b"') == set()
        # Anchored regex: "x" does not match "xx" and "x.*" is not a substring search.
        assert sel('instance=~"x"') == {UP_A}
        assert sel('__name__=~"p"') == set()
        # Empty-string semantics: a missing label equals "".
        assert sel('__name__="up"', 'instance=""') == {UP_C}
        assert sel('instance!=""') == {UP_A, UP_B}
        assert sel('__name__="up"', 'instance=~"x|"') == {UP_A, UP_C}
        assert sel('__name__="up"', 'instance!~"x"') == {UP_B, UP_C}
        assert sel('__name__="up"', 'instance!~".+"') == {UP_C}
        assert sel('__name__="up"', 'instance=~".*"') == {UP_A, UP_B, UP_C}
        assert sel('__name__="up"', 'nolabel=""') == {UP_A, UP_B, UP_C}
        assert sel('__name__="up"', 'nolabel!=""') == set()
        assert sel('__name__="up"', 'nolabel!="z"') == {UP_A, UP_B, UP_C}
        assert sel('code="200"') == {RQ}
    finally:
        store.close()


def check_tenant_isolation(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d, max_active_series_per_tenant=2)
    try:
        write(
            store,
            "t1",
            [(UP_A, [(1000, 1.0)]), (UP_B, [(1000, 2.0)])],
            [MetricMetadata("up", "gauge", "t1 help")],
        )
        # Same label set in another tenant is another series with its own data and its own limit.
        res = write(store, "t2", [(UP_A, [(1000, 9.0)]), (RQ, [(1000, 7.0)])])
        assert res.series_created == 2
        assert as_dict(store.select("t1", [m('__name__=~".+"')], 0, 2000)) == {
            UP_A: [(1000, 1.0)],
            UP_B: [(1000, 2.0)],
        }
        assert as_dict(store.select("t2", [m('__name__=~".+"')], 0, 2000)) == {
            UP_A: [(1000, 9.0)],
            RQ: [(1000, 7.0)],
        }
        assert len(store.select("t3", [m('__name__=~".*"')], 0, 2000)) == 0
        assert set(store.series("t1", [], 0, 2000)) == {UP_A, UP_B}
        assert store.label_values("t1", "__name__", [], 0, 2000) == ["up"]
        assert store.label_values("t2", "__name__", [], 0, 2000) == ["requests_total", "up"]
        assert "code" not in store.label_names("t1", [], 0, 2000)
        assert "code" in store.label_names("t2", [], 0, 2000)
        assert store.metadata("t2") == {}
        assert store.metadata("t1") == {"up": [MetricMetadata("up", "gauge", "t1 help")]}
        assert store.series("nobody", [], 0, 2000) == []
        assert store.label_names("nobody", [], 0, 2000) == []
        assert store.label_values("nobody", "job", [], 0, 2000) == []
    finally:
        store.close()


def check_time_range_inclusive(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d)
    try:
        write(store, "t", [(UP_A, [(1000, 1.0), (2000, 2.0), (3000, 3.0)]), (UP_B, [(5000, 5.0)])])
        q = [m('__name__="up"')]
        assert as_dict(store.select("t", q, 2000, 3000)) == {UP_A: [(2000, 2.0), (3000, 3.0)]}
        assert as_dict(store.select("t", q, 1000, 1000)) == {UP_A: [(1000, 1.0)]}
        assert as_dict(store.select("t", q, 3000, 5000)) == {UP_A: [(3000, 3.0)], UP_B: [(5000, 5.0)]}
        assert as_dict(store.select("t", q, 3001, 4999)) == {}
        assert as_dict(store.select("t", q, 0, 999)) == {}
        assert as_dict(store.select("t", q, 5000, 4000)) == {}
        assert store.series("t", [q], 4000, 6000) == [UP_B]
        assert store.series("t", [q], 0, 999) == []
        assert store.label_values("t", "job", [], 4000, 6000) == ["b"]
        assert store.label_values("t", "job", [], 0, 6000) == ["a", "b"]
        assert "instance" not in store.label_names("t", [], 6000, 7000)
    finally:
        store.close()


def check_out_of_order_and_duplicates(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d, out_of_order_window_ms=10_000)
    try:
        write(store, "t", [(UP_A, [(100_000, 1.0)])])
        # Within the window: written; a duplicate timestamp: newest write wins and is counted;
        # older than max_ts - window: dropped and counted.
        res = write(store, "t", [(UP_A, [(95_000, 2.0), (100_000, 3.0), (89_999, 4.0), (90_000, 5.0)])])
        assert res.out_of_bounds == 1
        assert res.duplicates == 1
        assert res.samples_written == 3
        assert as_dict(store.select("t", [m('job="a"')], 0, 200_000)) == {
            UP_A: [(90_000, 5.0), (95_000, 2.0), (100_000, 3.0)]
        }
        # A duplicate inside one batch: the later sample wins.
        res = write(store, "t", [(UP_A, [(110_000, 1.0), (110_000, 2.0)])])
        assert res.duplicates == 1
        # Re-sending a whole batch (a client retry) changes nothing but the counters.
        again = [(UP_A, [(110_000, 2.0)]), (UP_B, [(110_000, 7.0)])]
        write(store, "t", again)
        res = write(store, "t", again)
        assert res.duplicates == 2 and res.series_created == 0
        got = as_dict(store.select("t", [m('__name__="up"')], 0, 200_000))
        assert got[UP_A][-1] == (110_000, 2.0) and got[UP_B] == [(110_000, 7.0)]
        # The window moves with the newest sample.
        res = write(store, "t", [(UP_A, [(99_999, 1.0)])])
        assert res.out_of_bounds == 1 and res.samples_written == 0
        # New series have no window yet.
        res = write(store, "t", [(UP_C, [(1, 1.0)])])
        assert res.out_of_bounds == 0 and res.samples_written == 1
        # Concurrent batches in one group commit keep arrival order for duplicates.
        futs = [store.append("t", batch([(UP_C, [(2, float(i))])])) for i in range(20)]
        results = [f.result(timeout=60) for f in futs]
        assert sum(r.duplicates for r in results) == 19
        assert as_dict(store.select("t", [m('job="c"')], 0, 10))[UP_C] == [(1, 1.0), (2, 19.0)]
    finally:
        store.close()


def check_stale_markers(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d)
    try:
        other_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0]
        write(
            store,
            "t",
            [
                (
                    UP_A,
                    [
                        (1000, 1.0),
                        (2000, STALE_NAN),
                        (3000, math.nan),
                        (4000, other_nan),
                        (5000, math.inf),
                        (6000, -0.0),
                    ],
                )
            ],
        )
        data = store.select("t", [m('job="a"')], 0, 10_000)
        _, ts, vs = data.series(0)
        assert ts.tolist() == [1000, 2000, 3000, 4000, 5000, 6000]
        assert stale_mask(vs).tolist() == [False, True, False, False, False, False]
        assert bits(float(vs[1])) == bits(STALE_NAN)
        assert math.isnan(vs[2]) and not stale_mask(vs[2:3])[0]
        assert math.isnan(vs[3]) and not stale_mask(vs[3:4])[0]
        assert vs[4] == math.inf and vs[5] == 0.0
    finally:
        store.close()


def check_limits_all_or_nothing(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d, max_active_series_per_tenant=3)
    try:
        write(store, "t", [(UP_A, [(1000, 1.0)]), (UP_B, [(1000, 2.0)])])
        fut = store.append(
            "t",
            batch(
                [(UP_A, [(2000, 1.5)]), (UP_C, [(2000, 3.0)]), (RQ, [(2000, 4.0)])],
                [MetricMetadata("requests_total", "counter")],
            ),
        )
        try:
            fut.result(timeout=60)
            raise AssertionError("expected LimitExceeded")
        except LimitExceeded:
            pass
        # Nothing of the rejected batch was written: not the new series, not the sample of the
        # existing one, not its metadata.
        assert as_dict(store.select("t", [m('__name__=~".+"')], 0, 10_000)) == {
            UP_A: [(1000, 1.0)],
            UP_B: [(1000, 2.0)],
        }
        assert store.metadata("t") == {}
        # Existing series keep accepting samples; one more series fits.
        res = write(store, "t", [(UP_A, [(3000, 3.0)]), (UP_C, [(3000, 3.0)])])
        assert res.series_created == 1
        assert store.stats().active_series.get("t") == 3
        # Another tenant has its own budget.
        assert write(store, "u", [(RQ, [(1, 1.0)])]).series_created == 1
        # Invalid labels reject a batch whole too, without hurting batches queued with it.
        bad = SampleBatch.from_series([(UP_A, [(4000, 4.0)])])
        bad.keys.append(b"dup")
        bad.decode_labels = lambda k: (("a", "1"), ("a", "2")) if k == b"dup" else UP_A
        bad.series_idx = np.array([0, 1], dtype=np.int32)
        bad.timestamps = np.array([4000, 4000], dtype=np.int64)
        bad.values = np.array([4.0, 4.0])
        f_bad = store.append("t", bad)
        f_ok = store.append("t", batch([(UP_B, [(4000, 4.0)])]))
        try:
            f_bad.result(timeout=60)
            raise AssertionError("expected InvalidBatch")
        except InvalidBatch:
            pass
        assert f_ok.result(timeout=60).samples_written == 1
        assert 4000 not in [t for t, _ in as_dict(store.select("t", [m('job="a"')], 0, 10_000))[UP_A]]
    finally:
        store.close()


def check_retention(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d, retention_ms=10_000)
    try:
        write(store, "t", [(UP_A, [(1000, 1.0), (2000, 2.0), (20_000, 3.0)]), (UP_B, [(1000, 1.0)])])
        write(store, "u", [(UP_B, [(1000, 1.0), (30_000, 2.0)])])
        deleted = store.apply_retention(22_000)  # cutoff 12_000
        # Expired samples disappear from reads at once; the count is what left the disk now (a
        # backend may reclaim in larger units, later).
        assert 0 <= deleted <= 4
        assert as_dict(store.select("t", [m('__name__="up"')], 0, 100_000)) == {UP_A: [(20_000, 3.0)]}
        assert store.series("t", [], 0, 100_000) == [UP_A]
        assert store.label_values("t", "job", [], 0, 100_000) == ["a"]
        assert store.series("u", [], 0, 100_000) == [UP_B]
        assert store.stats().active_series.get("t") == 1
        # A series that lost everything comes back as new when written again.
        res = write(store, "t", [(UP_B, [(25_000, 9.0)])])
        assert res.series_created == 1
        assert as_dict(store.select("t", [m('job="b"')], 0, 100_000)) == {UP_B: [(25_000, 9.0)]}
        assert store.apply_retention(22_000) <= 4 - deleted
        # Samples older than the applied retention are refused even for a new series.
        res = write(store, "t", [(RQ, [(5_000, 1.0), (15_000, 2.0)])])
        assert res.out_of_bounds == 1 and res.samples_written == 1
        assert as_dict(store.select("t", [m('code="200"')], 0, 100_000)) == {RQ: [(15_000, 2.0)]}
        assert as_dict(store.select("u", [m('job="b"')], 0, 100_000)) == {UP_B: [(30_000, 2.0)]}
    finally:
        store.close()


def check_series_labels_limits(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d)
    try:
        write(
            store,
            "t",
            [(UP_A, [(1000, 1.0)]), (UP_B, [(1000, 2.0)]), (UP_C, [(1000, 3.0)]), (RQ, [(1000, 4.0)])],
        )
        all_series = store.series("t", [], 0, 2000)
        assert all_series == sorted([UP_A, UP_B, UP_C, RQ])
        assert store.series("t", [], 0, 2000, limit=2) == all_series[:2]
        # Matcher sets are ORed, matchers within a set ANDed.
        assert set(store.series("t", [[m('job="a"'), m('__name__="up"')], [m('job="c"')]], 0, 2000)) == {
            UP_A,
            UP_C,
        }
        assert store.label_names("t", [], 0, 2000) == ["__name__", "code", "instance", "job"]
        assert store.label_names("t", [], 0, 2000, limit=2) == ["__name__", "code"]
        assert store.label_names("t", [[m('__name__="up"')]], 0, 2000) == ["__name__", "instance", "job"]
        assert store.label_values("t", "job", [], 0, 2000) == ["a", "b", "c"]
        assert store.label_values("t", "job", [], 0, 2000, limit=1) == ["a"]
        assert store.label_values("t", "instance", [[m('job=~"a|c"')]], 0, 2000) == ["x"]
        assert store.label_values("t", "nolabel", [], 0, 2000) == []
    finally:
        store.close()


def check_metadata(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d)
    try:
        write(
            store,
            "t",
            [(UP_A, [(1000, 1.0)])],
            [
                MetricMetadata("up", "gauge", "Up.", ""),
                MetricMetadata("requests_total", "counter", "Reqs.", ""),
            ],
        )
        write(
            store,
            "t",
            [(UP_A, [(2000, 1.0)])],
            [MetricMetadata("up", "gauge", "Up.", ""), MetricMetadata("up", "gauge", "Up, reworded.", "")],
        )
        md = store.metadata("t")
        assert set(md) == {"up", "requests_total"}
        assert md["requests_total"] == [MetricMetadata("requests_total", "counter", "Reqs.", "")]
        assert sorted(x.help for x in md["up"]) == ["Up, reworded.", "Up."]
        assert list(store.metadata("t", metric="requests_total")) == ["requests_total"]
        assert store.metadata("t", metric="nope") == {}
        assert len(store.metadata("t", limit=1)) == 1
        assert len(store.metadata("t", limit_per_metric=1)["up"]) == 1
    finally:
        store.close()


def check_close_reopen(factory: StoreFactory, d: Path) -> None:
    store = _open(factory, d)
    write(
        store,
        "t",
        [(UP_A, [(1000, 1.0), (2000, STALE_NAN)]), (UP_B, [(1000, 2.0)])],
        [MetricMetadata("up", "gauge", "Up.")],
    )
    write(store, "u", [(RQ, [(1000, 3.0)])])
    # Constant runs (one value, or the same NaN repeated) must keep their NaN payload on disk.
    write(store, "u", [(UP_C, [(1000, STALE_NAN)]), (UP_B, [(t, STALE_NAN) for t in range(1, 3000)])])
    store.close()
    store.close()  # idempotent
    try:
        store.append("t", batch([(UP_A, [(3000, 3.0)])]))
        raise AssertionError("append after close must raise StoreClosed")
    except StoreClosed:
        pass
    store = _open(factory, d)
    try:
        got = as_dict(store.select("t", [m('__name__="up"')], 0, 10_000))
        assert got[UP_B] == [(1000, 2.0)]
        assert got[UP_A][0] == (1000, 1.0) and bits(got[UP_A][1][1]) == bits(STALE_NAN)
        assert store.series("u", [], 0, 10_000) == sorted([RQ, UP_B, UP_C])
        stale = as_dict(store.select("u", [m('__name__="up"')], 0, 10_000))
        assert [bits(v) for _, v in stale[UP_C]] == [bits(STALE_NAN)]
        assert {bits(v) for _, v in stale[UP_B]} == {bits(STALE_NAN)} and len(stale[UP_B]) == 2999
        assert store.metadata("t") == {"up": [MetricMetadata("up", "gauge", "Up.")]}
        # Known series are recognised after reopening (no new series, duplicates detected).
        res = write(store, "t", [(UP_A, [(1000, 5.0), (3000, 3.0)])])
        assert res.series_created == 0 and res.duplicates == 1
        assert as_dict(store.select("t", [m('job="a"')], 0, 10_000))[UP_A][0] == (1000, 5.0)
    finally:
        store.close()


def check_concurrent_appends_and_reads(factory: StoreFactory, d: Path) -> None:
    """Many writers and readers at once: every acknowledged sample is readable afterwards."""
    store = _open(factory, d)
    try:

        def writer(w: int) -> int:
            n = 0
            for j in range(20):
                series = [(L(__name__="m", w=str(w), s=str(s)), [(j * 1000, float(j))]) for s in range(50)]
                n += write(store, "t", series).samples_written
                store.select("t", [m(f'w="{w}"')], 0, 10**6)
            return n

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            total = sum(pool.map(writer, range(4)))
        assert total == 4 * 20 * 50
        data = store.select("t", [m('__name__="m"')], 0, 10**6)
        check_well_formed(data)
        assert len(data) == 200 and data.timestamps.shape[0] == total
    finally:
        store.close()


def check_delete_series(factory: StoreFactory, d: Path) -> None:
    """Prometheus' ``delete_series``: the range's samples of the matching series of one tenant go,
    everything else stays; a series left empty disappears from listings; durable across reopen."""
    pts = [(t, float(t // 1000)) for t in range(0, 100_001, 10_000)]
    store = _open(factory, d)
    try:
        write(store, "t", [(UP_A, pts[:6]), (UP_B, pts[:6]), (RQ, pts[:6])])
        write(store, "t", [(UP_A, pts[6:]), (UP_B, pts[6:]), (RQ, pts[6:])])  # a second batch (chunk)
        write(store, "u", [(UP_A, pts), (UP_B, pts)])
        assert store.delete_series("t", [[m('job="zzz"')]], 0, 10**6) == 0
        assert store.delete_series("t", [], 0, 10**6) == 0  # no matcher set: nothing
        # job="a" selects UP_A and RQ; [25_000, 70_000] inclusive holds 30k, 40k, ..., 70k.
        assert store.delete_series("t", [[m('job="a"')]], 25_000, 70_000) == 2 * 5
        kept = [p for p in pts if not 25_000 <= p[0] <= 70_000]
        got = as_dict(store.select("t", [m('__name__=~".+"')], 0, 10**6))
        assert got == {UP_A: kept, RQ: kept, UP_B: pts}
        # Inclusive bounds, and several matcher sets ORed: a set per match[].
        assert store.delete_series("t", [[m('job="b"')], [m('code="200"')]], 0, 0) == 2
        assert as_dict(store.select("t", [m('job="b"')], 0, 10**6)) == {UP_B: pts[1:]}
        # A whole series: gone from select, series, label names and values.
        assert store.delete_series("t", [[m('__name__="up"'), m('job="b"')]], -(2**62), 2**62) == 10
        assert store.series("t", [], 0, 10**6) == sorted([UP_A, RQ])
        assert store.label_values("t", "job", [], 0, 10**6) == ["a"]
        assert "instance" in store.label_names("t", [], 0, 10**6)
        assert store.delete_series("t", [[m('__name__="up"')]], -(2**62), 2**62) == len(kept)
        assert store.label_names("t", [], 0, 10**6) == ["__name__", "code", "job"]
        assert store.stats().active_series.get("t") == 1
        # The other tenant's identical series are untouched.
        assert as_dict(store.select("u", [m('__name__="up"')], 0, 10**6)) == {UP_A: pts, UP_B: pts}
        # A deleted series written again comes back as a new one; a deleted range can be refilled.
        assert write(store, "t", [(UP_B, [(50_000, 7.0)])]).series_created == 1
        write(store, "t", [(RQ, [(50_000, 8.0)])])
    finally:
        store.close()
    store = _open(factory, d)
    try:
        rq = [p for p in pts[1:] if not 25_000 <= p[0] <= 70_000]
        assert as_dict(store.select("t", [m('__name__=~".+"')], 0, 10**6)) == {
            UP_B: [(50_000, 7.0)],
            RQ: sorted([*rq, (50_000, 8.0)]),
        }
        assert store.series("t", [], 0, 10**6) == sorted([UP_B, RQ])
        assert as_dict(store.select("u", [m('__name__="up"')], 0, 10**6)) == {UP_A: pts, UP_B: pts}
    finally:
        store.close()


def check_delete_concurrent_with_appends(factory: StoreFactory, d: Path) -> None:
    """A deletion racing appends into its own range: every batch acknowledged before the deletion
    started is gone, every batch appended after it returned is kept in full (nothing acknowledged
    later is lost), and samples outside the range are never touched."""
    store = _open(factory, d)
    try:
        lbl = L(__name__="race", job="w")
        write(store, "t", [(lbl, [(-1, 1.0)])])  # outside the range: must survive
        done = concurrent.futures.Future[None]()
        acked: list[tuple[float, float, list[int]]] = []  # (submitted, acknowledged, ts) on a shared clock

        def appender() -> None:
            t = 0
            while not done.done() or len(acked) < 40:
                ts = [t, t + 1, t + 2]
                t += 3
                sent = time.monotonic()
                store.append("t", batch([(lbl, [(x, float(x)) for x in ts])])).result(timeout=60)
                acked.append((sent, time.monotonic(), ts))

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(appender)
            deadline = time.monotonic() + 120
            while len(acked) < 20:
                assert not fut.done() and time.monotonic() < deadline, fut.exception() if fut.done() else "stuck"
                time.sleep(0.001)
            began = time.monotonic()
            store.delete_series("t", [[m('job="w"')]], 0, 10**9)
            returned = time.monotonic()
            done.set_result(None)
            fut.result(timeout=120)
        stored = set(store.select("t", [m('job="w"')], -10, 10**9).timestamps.tolist())
        assert -1 in stored
        before = [ts for _, ack, ts in acked if ack < began]
        after = [ts for sent, _, ts in acked if sent > returned]
        assert before and after
        assert not stored & {x for ts in before for x in ts}, (
            "a sample acknowledged before the deletion survived"
        )
        missing = {x for ts in after for x in ts} - stored
        assert not missing, f"samples acknowledged after the deletion were lost: {sorted(missing)[:10]}"
    finally:
        store.close()


ALL_CHECKS: list[Check] = [
    check_round_trip,
    check_matchers,
    check_tenant_isolation,
    check_time_range_inclusive,
    check_out_of_order_and_duplicates,
    check_stale_markers,
    check_limits_all_or_nothing,
    check_retention,
    check_series_labels_limits,
    check_metadata,
    check_close_reopen,
    check_concurrent_appends_and_reads,
    check_delete_series,
    check_delete_concurrent_with_appends,
]
