"""``values.SeriesViews``: per-series views of a concatenated column behave as the list of slices
the range selectors built before (index, negative index, slice, iteration, length)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from clearsight.query.promql.values import SeriesViews


@given(st.lists(st.integers(0, 5), max_size=6), st.integers(-8, 8), st.integers(-8, 8))
def test_views_are_the_slices(lengths: list[int], a: int, b: int) -> None:
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64))
    starts = ends - np.asarray(lengths, dtype=np.int64)
    column = np.arange(int(ends[-1]) if lengths else 0, dtype=np.int64) * 10
    want = [column[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    views = SeriesViews(column, starts, ends)
    assert len(views) == len(want)
    assert [x.tolist() for x in views] == [x.tolist() for x in want]
    for i in range(-len(want), len(want)):
        assert views[i].tolist() == want[i].tolist()
        assert np.shares_memory(views[i], column) or views[i].size == 0  # views, not copies
    assert [x.tolist() for x in views[a:b]] == [x.tolist() for x in want[a:b]]
