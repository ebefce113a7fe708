"""model/rollups.py: 1-hour buckets built from 5-minute buckets equal 1-hour buckets built from the
raw samples (hypothesis: random timestamps, counter resets, NaN, stale markers)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.rollups import FIVE_MINUTES_MS, ONE_HOUR_MS, Buckets, coarsen, from_samples
from clearsight.model.samples import STALE_NAN

value = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(float("nan")), st.just(STALE_NAN),
                  st.integers(0, 50).map(float))
series = st.lists(st.tuples(st.integers(0, 3 * ONE_HOUR_MS), value), min_size=0, max_size=60)


def _columns(data: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sids, ts, vals = [], [], []
    for i, pts in enumerate(data):
        uniq = dict(pts)  # one value per timestamp
        for t in sorted(uniq):
            sids.append(i + 1)
            ts.append(t)
            vals.append(uniq[t])
    return (np.asarray(sids, dtype=np.uint32), np.asarray(ts, dtype=np.int64), np.asarray(vals, dtype=np.float64))


def _same(a: Buckets, b: Buckets) -> None:
    for name in ("end", "cnt", "t_first", "t_last"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("v_first", "v_last", "vmin", "vmax"):  # picked, never computed: bit for bit
        assert np.array_equal(getattr(a, name).view(np.int64), getattr(b, name).view(np.int64)), name
    for name in ("vsum", "corr"):  # sums in another order
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-6, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(series, min_size=1, max_size=4))
def test_coarsened_buckets_equal_buckets_of_the_raw_samples(data: list[list[tuple[int, float]]]) -> None:
    sids, ts, vals = _columns(data)
    fine_s, fine = from_samples(sids, ts, vals, FIVE_MINUTES_MS)
    got_s, got = coarsen(fine_s, fine, ONE_HOUR_MS)
    want_s, want = from_samples(sids, ts, vals, ONE_HOUR_MS)
    assert np.array_equal(got_s, want_s)
    _same(got, want)
    assert int(want.cnt.sum()) == int(np.count_nonzero(vals.view(np.uint64) != np.float64(STALE_NAN).view(np.uint64)))


def test_a_counter_reset_across_buckets_is_corrected() -> None:
    sids = np.ones(4, dtype=np.uint32)
    ts = np.array([60_000, 240_000, 360_000, 420_000], dtype=np.int64)  # two 5-minute buckets
    vals = np.array([10.0, 20.0, 5.0, 7.0])  # reset between 20 and 5 (across the buckets)
    s5, b5 = from_samples(sids, ts, vals, FIVE_MINUTES_MS)
    assert b5.corr.tolist() == [0.0, 0.0]
    _, b1 = coarsen(s5, b5, ONE_HOUR_MS)
    assert b1.corr.tolist() == [20.0]  # Prometheus: increase = 7 - 10 + 20
    assert (b1.cnt.tolist(), b1.vmin.tolist(), b1.vmax.tolist(), b1.vsum.tolist()) == ([4], [5.0], [20.0], [42.0])


@settings(max_examples=100, deadline=None)
@given(st.lists(series, min_size=1, max_size=4))
def test_rows_round_trip_through_the_tables(data: list[list[tuple[int, float]]]) -> None:
    import duckdb

    from clearsight.store.embedded import rollups
    from clearsight.store.embedded.schema import DDL

    sids, ts, vals = _columns(data)
    bs, b = from_samples(sids, ts, vals, FIVE_MINUTES_MS)
    con = duckdb.connect()
    for stmt in DDL + rollups.DDL:
        con.execute(stmt)
    con.register("_clearsight_rollup", rollups.flat_columns(bs, b, FIVE_MINUTES_MS))
    con.execute("CREATE TABLE rollups_5m " + rollups.PART_DDL)
    con.execute(rollups._INSERT.format(table="rollups_5m"), [-(2**62), 2**62])
    rows = con.execute("SELECT count(*) FROM rollups_5m").fetchall()[0][0]
    assert rows == len({(int(s), int(e - 1) // ONE_HOUR_MS) for s, e in zip(bs, b.end, strict=True)})
    got_s, got = rollups.from_columns(con.execute(rollups._SELECT.format(table="rollups_5m"),
                                                  [-(2**62), 2**62]).fetchnumpy(), FIVE_MINUTES_MS)
    assert np.array_equal(got_s, bs)
    for name in ("end", "cnt", "t_first", "t_last"):
        assert np.array_equal(getattr(got, name), getattr(b, name)), name
    for name in ("v_first", "v_last", "vmin", "vmax", "vsum", "corr"):
        assert np.array_equal(getattr(got, name).view(np.int64), getattr(b, name).view(np.int64)), name
