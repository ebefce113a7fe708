"""The instant ``sum``, ``avg``, ``count`` and ``group`` in Python floats give bit-identical results
to the vectorized path (``_fold``: the compiled fold or the numpy one)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.query.promql import agg_fold
from clearsight.query.promql.aggregations import (
    _avg_one_step,
    _count_one_step,
    _fold,
    _sum_avg,
    _sum_one_step,
)

floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e6, 1e6),
    st.sampled_from([1e308, -1e308, 1e16, 1.0, -1.0, 0.1, 0.0, -0.0]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(floats, st.booleans(), st.integers(0, 3)), min_size=1, max_size=40))
def test_matches_vectorized_sum(rows: list[tuple[float, bool, int]]) -> None:
    vals = np.asarray([[r[0]] for r in rows], dtype=np.float64)
    pres = np.asarray([[r[1]] for r in rows], dtype=bool)
    gid = [r[2] for r in rows]
    groups = max(gid) + 1
    with np.errstate(all="ignore"):
        want, want_seen, _ = _sum_avg("sum", vals, pres, np.asarray(gid, dtype=np.int64), groups, 1)
    got, got_seen = _sum_one_step("sum", vals, pres, gid, groups)
    assert got_seen.tolist() == want_seen.tolist()
    seen = want_seen[:, 0]
    # bit-identical where a group has members (the value of an empty group is unused)
    assert got[seen, 0].view(np.int64).tolist() == want[seen, 0].view(np.int64).tolist()


def _nan_as_one(a: np.ndarray) -> list[int]:
    """Bits, every NaN as the one quiet NaN (the compiled fold may give NaN either sign; no NaN's
    sign reaches the API)."""
    out = np.array(a, dtype=np.float64)
    out[np.isnan(out)] = np.nan
    return out.view(np.int64).tolist()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(floats, st.booleans(), st.integers(0, 3)), min_size=1, max_size=64),
       st.sampled_from(["avg", "count", "group"]), st.booleans())
def test_avg_count_group_match_the_fold(rows: list[tuple[float, bool, int]], op: str, compiled: bool) -> None:
    vals = np.asarray([[r[0]] for r in rows], dtype=np.float64)
    pres = np.asarray([[r[1]] for r in rows], dtype=bool)
    gid = [r[2] for r in rows]
    groups = max(gid) + 1
    kernel = agg_fold._aggfold
    try:
        if not compiled:
            agg_fold._aggfold = None
        with np.errstate(all="ignore"):
            want, want_seen, _ = _fold(op, vals, pres, np.asarray(gid, dtype=np.int64), groups, None, 1)
    finally:
        agg_fold._aggfold = kernel
    one_step = _avg_one_step if op == "avg" else _count_one_step
    got, got_seen = one_step(op, vals, pres, gid, groups)
    assert got_seen.tolist() == want_seen.tolist()
    seen = want_seen[:, 0]
    assert _nan_as_one(got[seen, 0]) == _nan_as_one(want[seen, 0])


def test_avg_switches_to_the_incremental_mean_as_the_fold() -> None:
    vals = np.asarray([[1.7e308], [1.7e308], [-1e308], [5.0], [1.7e308]])
    pres = np.ones((5, 1), dtype=bool)
    want, _, _ = _fold("avg", vals, pres, np.zeros(5, dtype=np.int64), 1, None, 1)
    got, _ = _avg_one_step("avg", vals, pres, [0] * 5, 1)
    assert np.isfinite(got[0, 0]) and got.view(np.int64).tolist() == want.view(np.int64).tolist()
