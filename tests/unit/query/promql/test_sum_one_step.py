"""The instant ``sum`` in Python floats gives bit-identical results to the vectorized path."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.query.promql.aggregations import _sum_avg, _sum_one_step

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
    got, got_seen = _sum_one_step(vals, pres, gid, groups)
    assert got_seen.tolist() == want_seen.tolist()
    seen = want_seen[:, 0]
    # bit-identical where a group has members (the value of an empty group is unused)
    assert got[seen, 0].view(np.int64).tolist() == want[seen, 0].view(np.int64).tolist()
