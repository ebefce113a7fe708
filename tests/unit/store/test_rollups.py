"""Rollups of the embedded store against raw samples: the same queries through the rollup path
(``store.querier``) and the raw path (``RawOnly``) must give the same answers (docs/storage.md
"Rollups": exact except sums and reset corrections, within a relative 1e-9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clearsight.model.labels import make_labels
from clearsight.model.rollups import FIVE_MINUTES_MS, ONE_HOUR_MS
from clearsight.query.promql import rollup_plan
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.result import QueryResult
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.embedded.rollups import SCHEMES
from clearsight.store.interface import RollupProgress, RollupReader
from clearsight.store.memory import MemorySeriesSelector
from clearsight.store.storetest.contract import m
from clearsight.store.storetest.contract_histograms import hbatch, hist
from tests.unit.store.rollup_data import DAY, HOUR, T0, RawOnly, batch, random_series

APPROX = ("rate", "increase", "sum_over_time", "avg_over_time")  # float sums: relative 1e-9
QUERIES = [
    "rate(x_total[1h])", "increase(x_total[2h])", "delta(x_total[5m])", "sum by (instance) (rate(x_total[1h]))",
    "count_over_time(x_total[1h])", "sum_over_time(x_total[3h])", "avg_over_time(x_total[1h])",
    "min_over_time(x_total[10m])", "max_over_time(x_total[1h])", "last_over_time(x_total[1h])",
    "first_over_time(x_total[15m])", "present_over_time(x_total[1h])", "rate(x_total[1h] offset 2h)",
    "increase(x_total[1d])", "max_over_time(x_total[1h] @ 1700100000)",
]


def _store(path: Path, **kw: object) -> EmbeddedMetricsStore:
    return EmbeddedMetricsStore(path, retention_ms=10**13, out_of_order_window_ms=HOUR, compact_min_rows=10**9,
                                **kw)  # type: ignore[arg-type]


def _progress(store: EmbeddedMetricsStore) -> RollupProgress:
    p = store.stats().rollups
    assert p is not None
    return p


def _rows(store: EmbeddedMetricsStore, res: int, what: str, where: str, params: list[int]) -> list[tuple[int, ...]]:
    """``SELECT what ... WHERE where`` over every partition of a resolution's rollup rows (a
    partition without matching rows adds none; ``count(*)`` adds a row only when non-zero)."""
    out: list[tuple[int, ...]] = []
    with store._reader() as cur:
        for p in SCHEMES[res].list(cur):
            got = cur.execute(f"SELECT {what} FROM {p.name} WHERE {where}", params).fetchall()
            out += [r for r in got if r != (0,)]
    return out


def assert_same(a: QueryResult, b: QueryResult, approx: bool, what: str = "", allow_empty: bool = False) -> None:
    ra = {s.labels: s for s in a.series}
    rb = {s.labels: s for s in b.series}
    assert ra.keys() == rb.keys(), what
    assert ra or allow_empty, f"{what} returned nothing: the comparison would prove nothing"
    for k, sa in ra.items():
        sb = rb[k]
        assert np.array_equal(sa.timestamps, sb.timestamps), k
        va, vb = sa.values, sb.values
        assert np.array_equal(np.isnan(va), np.isnan(vb)), k
        ok = ~np.isnan(va)
        if approx:
            np.testing.assert_allclose(va[ok], vb[ok], rtol=1e-9, atol=0)
        else:
            assert np.array_equal(va[ok], vb[ok]), k


def _both(store: EmbeddedMetricsStore, q: str, start: int, end: int, step: int) -> tuple[QueryResult, QueryResult]:
    e = Engine()
    return e.range(store.querier("t"), q, start, end, step), e.range(RawOnly(store.querier("t")), q, start, end, step)


@pytest.mark.parametrize("seed", [1, 2])
def test_rollup_answers_equal_raw_answers(tmp_path: Path, seed: int) -> None:
    store = _store(tmp_path)
    try:
        store.append("t", batch(random_series(seed, 10, 3))).result()
        store.compact()
        store.run_rollups(T0 + 3 * DAY + 2 * HOUR)
        p = _progress(store)
        assert p.until_ms == {"5m": T0 + 3 * DAY + HOUR, "1h": T0 + 3 * DAY}  # now - out-of-order window
        for q in QUERIES:
            for start, end, step in [(T0, T0 + 3 * DAY, FIVE_MINUTES_MS), (T0, T0 + 3 * DAY, ONE_HOUR_MS),
                                     (T0 + 7 * HOUR, T0 + 3 * DAY + 3 * HOUR, 3 * ONE_HOUR_MS),
                                     (T0 + 2 * DAY, T0 + 2 * DAY, 0)]:
                a, b = _both(store, q, start, end, step or 1)
                assert_same(a, b, any(f in q for f in APPROX), q)
        # Instant queries on and off bucket boundaries (the latter from raw samples).
        for t in (T0 + DAY + 5 * FIVE_MINUTES_MS, T0 + DAY + 1234):
            e = Engine()
            for q in QUERIES:
                assert_same(e.instant(store.querier("t"), q, t), e.instant(RawOnly(store.querier("t")), q, t),
                            any(f in q for f in APPROX), q, allow_empty=True)
        assert _progress(store).reads_total > p.reads_total  # the rollups answered
        assert _progress(store).fallbacks_total == 0
    finally:
        store.close()


def test_a_late_write_falls_back_to_raw_until_the_block_is_rolled_up_again(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        data = random_series(3, 6, 2)
        store.append("t", batch(data)).result()
        store.compact()
        store.run_rollups(T0 + 2 * DAY + 2 * HOUR)
        # A new series (an HA replica's, a backfill) may write at any time above the retention.
        late = make_labels({"__name__": "x_total", "instance": "i0", "s": "late"})
        store.append("t", batch([(late, [(T0 + DAY + 30 * 60_000, 1e9)])])).result()
        before = _progress(store)
        assert before.dirty_blocks == 1
        q = "max_over_time(x_total[1h])"
        a, b = _both(store, q, T0, T0 + 2 * DAY, ONE_HOUR_MS)
        assert_same(a, b, False)
        assert _progress(store).fallbacks_total > before.fallbacks_total
        # A query away from the dirty block still uses the rollups.
        reads = _progress(store).reads_total
        assert_same(*_both(store, q, T0 + 3 * HOUR, T0 + 20 * HOUR, ONE_HOUR_MS), False)
        assert _progress(store).reads_total > reads
        store.run_rollups(T0 + 2 * DAY + 2 * HOUR)
        after = _progress(store)
        assert after.dirty_blocks == 0 and after.dirty_recomputed_total == 1
        a, b = _both(store, q, T0, T0 + 2 * DAY, ONE_HOUR_MS)
        assert_same(a, b, False)
        assert _progress(store).fallbacks_total == after.fallbacks_total  # rollups again, with the late sample
        assert any(np.nanmax(s.values) > 1e8 for s in a.series)
    finally:
        store.close()


def test_delete_series_invalidates_the_rolled_up_blocks(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        store.append("t", batch(random_series(4, 6, 2))).result()
        store.compact()
        store.run_rollups(T0 + 2 * DAY + 2 * HOUR)
        deleted = store.delete_series("t", [[m('s="1"')]], T0 + DAY, T0 + DAY + 3 * HOUR - 1)
        assert deleted > 0
        # The hours wholly inside lose their rows; the two the range cuts ((D - 1h, D] holds the sample
        # at D) are dirty until the next pass.
        assert _progress(store).dirty_blocks == 2
        sid = int(store.rollup_series_ids("t", [m('s="1"')])[0])
        rows = _rows(store, FIVE_MINUTES_MS, "block_start", "series_id = ? AND block_start BETWEEN ? AND ?",
                     [sid, T0 + DAY - HOUR, T0 + DAY + 2 * HOUR])
        assert sorted(rows) == [(T0 + DAY - HOUR,), (T0 + DAY + 2 * HOUR,)]
        q = 'count_over_time(x_total{s="1"}[1h])'
        a, b = _both(store, q, T0, T0 + 2 * DAY, ONE_HOUR_MS)
        assert_same(a, b, False)
        store.run_rollups(T0 + 2 * DAY + 2 * HOUR)
        assert _progress(store).dirty_blocks == 0
        fallbacks = _progress(store).fallbacks_total
        a, b = _both(store, q, T0, T0 + 2 * DAY, ONE_HOUR_MS)
        assert_same(a, b, False)
        assert _progress(store).fallbacks_total == fallbacks
        gone = [t for t, _ in a.series[0].points() if T0 + DAY < t <= T0 + DAY + 3 * HOUR]
        assert gone == []  # no window inside the deleted range has samples
    finally:
        store.close()


def test_rollups_have_their_own_retention_and_outlive_raw_samples(tmp_path: Path) -> None:
    store = _store(tmp_path, rollup_retention_ms={FIVE_MINUTES_MS: 2 * DAY, ONE_HOUR_MS: 10 * DAY})
    try:
        store.append("t", batch(random_series(5, 6, 4))).result()
        store.compact()
        now = T0 + 4 * DAY + 2 * HOUR
        q = "sum by (instance) (increase(x_total[1h]))"
        store.run_rollups(T0 + 2 * DAY + 2 * HOUR)  # the first days roll up while the 5-minute rows are kept
        store.run_rollups(now)
        cov = {c.res_ms: (c.from_ms, c.until_ms) for c in store.querier("t").rollup_coverage()}
        assert cov[FIVE_MINUTES_MS] == (now - 2 * DAY, T0 + 4 * DAY + HOUR)  # whole hours
        assert cov[ONE_HOUR_MS] == (T0 + DAY, T0 + 4 * DAY)  # whole days inside the first 5-minute coverage
        # Whole day partitions of 5-minute rows older than the cutoff are dropped; the cutoff's day stays
        # (its rows below the coverage are never read).
        with store._reader() as cur:
            assert [p.start for p in SCHEMES[FIVE_MINUTES_MS].list(cur)] == [T0 + 2 * DAY, T0 + 3 * DAY]
        assert _rows(store, FIVE_MINUTES_MS, "count(*)", "block_start < ?", [T0 + 2 * DAY]) == []
        assert sum(n for (n,) in _rows(store, ONE_HOUR_MS, "count(*)", "block_start < ?", [T0 + 2 * DAY])) > 0
        a, b = _both(store, q, T0 + DAY + HOUR, T0 + 3 * DAY, ONE_HOUR_MS)
        assert_same(a, b, True)
        # Raw retention of 1 day: the first days' raw samples go, their 1-hour rollups stay.
        store.retention_ms = DAY
        # (Partitioned retention drops whole partitions and hides the rest below the floor: the
        # count may be 0 when every chunk ends in a kept partition; what matters is below.)
        store.apply_retention(now)
        after = Engine().range(store.querier("t"), q, T0 + DAY + HOUR, T0 + 3 * DAY, ONE_HOUR_MS)
        raw_after = Engine().range(RawOnly(store.querier("t")), q, T0 + DAY + HOUR, T0 + 3 * DAY, ONE_HOUR_MS)
        assert_same(after, a, False)  # the same answer as before the raw samples expired
        assert raw_after.series == []  # no raw sample of the range is left
    finally:
        store.close()


def test_a_30_day_range_at_1h_step_reads_no_raw_samples_of_the_rolled_up_days(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        rng = np.random.default_rng(7)
        n, step = 20, 120_000
        ts = np.arange(T0 + step, T0 + 30 * DAY + 1, step, dtype=np.int64)
        labels = [make_labels({"__name__": "x_total", "instance": f"i{i % 4}", "s": str(i)}) for i in range(n)]
        vals = np.cumsum(rng.random((n, ts.size)) * 100, axis=1)
        for day in range(30):
            sl = slice(day * ts.size // 30, (day + 1) * ts.size // 30)
            store.append("t", batch([(labels[i], list(zip(ts[sl].tolist(), vals[i, sl].tolist(), strict=True)))
                                     for i in range(n)])).result()
        store.compact()
        now = T0 + 30 * DAY + 2 * HOUR
        store.run_rollups(now)
        q = "sum by (instance) (rate(x_total[1h]))"
        e = Engine()
        for end in (T0 + 30 * DAY, T0 + 30 * DAY + HOUR):  # inside the 1-hour coverage, and past it
            rolled = e.range(store.querier("t"), q, T0 + HOUR, end, ONE_HOUR_MS)
            raw = e.range(RawOnly(store.querier("t")), q, T0 + HOUR, end, ONE_HOUR_MS)
            assert_same(rolled, raw, True)
            assert raw.stats.samples_loaded >= n * 30 * 720 - n * 30
            past = end - T0 - 30 * DAY  # the steps after the coverage read their windows raw
            assert rolled.stats.samples_loaded <= n * (past + HOUR) // step
        p = _progress(store)
        assert p.reads_total >= 2 and p.fallbacks_total == 0
    finally:
        store.close()


def test_series_with_native_histograms_are_read_raw(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        data = random_series(6, 2, 1, metric="h")
        store.append("t", batch(data[1:])).result()
        store.append("t", hbatch([(data[0][0], [*data[0][1], (T0 + DAY - 1, hist(3))])])).result()
        assert store._hist.any(np.array([1, 2, 3], dtype=np.uint32))
        store.compact()
        store.run_rollups(T0 + DAY + 2 * HOUR)
        before = _progress(store)
        a, b = _both(store, "count_over_time(h[1h])", T0 + HOUR, T0 + DAY, ONE_HOUR_MS)
        assert _progress(store).fallbacks_total > before.fallbacks_total
        assert [s.labels for s in a.series] == [s.labels for s in b.series]
        assert_same(a, b, False)
    finally:
        store.close()


def test_a_selector_without_rollups_is_read_raw() -> None:
    sel = MemorySeriesSelector()
    for labels, pts in random_series(8, 2, 1):
        sel.add(labels, [t for t, _ in pts], [v for _, v in pts])
    assert not isinstance(sel, RollupReader)
    res = Engine().range(sel, "rate(x_total[1h])", T0 + HOUR, T0 + DAY, ONE_HOUR_MS)
    assert len(res.series) == 2


def test_rollup_progress_is_exported_on_metrics(tmp_path: Path) -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from clearsight.selfmetrics import SelfMetrics

    store = _store(tmp_path)
    try:
        store.append("t", batch(random_series(9, 3, 1))).result()
        metrics = SelfMetrics()
        metrics.add_store(store.stats, tmp_path)
        store.run_rollups(T0 + DAY + 2 * HOUR)
        Engine().range(store.querier("t"), "rate(x_total[1h])", T0 + HOUR, T0 + DAY, ONE_HOUR_MS)
        got = {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
               for fam in text_string_to_metric_families(generate_latest(metrics.registry).decode())
               for smp in fam.samples}
        p = _progress(store)
        assert p.buckets_written_total["5m"] > 0
        assert got[("clearsight_rollup_buckets_written_total", (("resolution", "5m"),))] == p.buckets_written_total["5m"]
        assert got[("clearsight_rollup_finalised_until_seconds", (("resolution", "1h"),))] == (T0 + DAY) / 1000
        assert got[("clearsight_rollup_reads_total", ())] == 1
        assert got[("clearsight_rollup_dirty_blocks", ())] == 0
    finally:
        store.close()


def test_plan_reads_raw_when_steps_inside_the_coverage_are_off_the_grid() -> None:
    five = FIVE_MINUTES_MS
    cov = [(five, 0, 10 * HOUR)]
    on_grid = np.arange(HOUR, 3 * HOUR + 1, five, dtype=np.int64)
    assert (rollup_plan.plan(cov, on_grid, five) == five).all()
    # Grafana's 15 s step over [5m]: one step in 20 is aligned; the query reads raw samples only.
    off_grid = np.arange(HOUR, 3 * HOUR + 1, 15_000, dtype=np.int64)
    assert not rollup_plan.plan(cov, off_grid, five).any()
    # Steps past the coverage do not count: on the grid inside it, rollups; after it, raw.
    tail = np.concatenate([on_grid, np.arange(10 * HOUR + 15_000, 10 * HOUR + 60_001, 15_000, dtype=np.int64)])
    got = rollup_plan.plan(cov, tail, five)
    assert (got[: on_grid.size] == five).all() and not got[on_grid.size:].any()
