"""(series, ts) pair search against a dict reference, including the rank path for wide spans."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.store.embedded.pairs import find_pairs

pairs = st.lists(st.tuples(st.integers(0, 6), st.integers(-(2**40), 2**40)), max_size=40, unique=True)
narrow = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 50)), max_size=40, unique=True)


def _arrays(ps: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray([p[0] for p in ps], dtype=np.uint32), np.asarray([p[1] for p in ps], dtype=np.int64)


@settings(max_examples=200, deadline=None)
@given(st.one_of(pairs, narrow), st.one_of(pairs, narrow), st.booleans())
def test_find_pairs_matches_reference(stored: list[tuple[int, int]], queries: list[tuple[int, int]], sort: bool) -> None:
    if sort:
        stored = sorted(stored)
    s_sid, s_ts = _arrays(stored)
    q_sid, q_ts = _arrays(queries)
    got = find_pairs(s_sid, s_ts, q_sid, q_ts, sorted_=sort)
    where = {p: i for i, p in enumerate(stored)}
    assert got.tolist() == [where.get(q, -1) for q in queries]


def test_wide_span_uses_ranks() -> None:
    s_sid = np.asarray([1, 1, 2], dtype=np.uint32)
    s_ts = np.asarray([0, 2**40, 5], dtype=np.int64)
    q_sid = np.asarray([1, 2, 1, 2], dtype=np.uint32)
    q_ts = np.asarray([2**40, 5, 5, 2**40], dtype=np.int64)
    assert find_pairs(s_sid, s_ts, q_sid, q_ts).tolist() == [1, 2, -1, -1]
