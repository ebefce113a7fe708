"""The head's in-memory mirror (store/embedded/head.py) against a dict model: random adds, deletes,
retention cuts and selects."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.store.embedded.head import HeadMirror, order_by_series_ts

Model = dict[tuple[int, int], float]


def _rows(pairs: dict[tuple[int, int], float]) -> tuple[Any, Any, Any]:
    items = sorted(pairs.items())
    sid = np.array([k[0] for k, _ in items], dtype=np.uint32)
    ts = np.array([k[1] for k, _ in items], dtype=np.int64)
    vals = np.array([v for _, v in items], dtype=np.float64)
    return sid, ts, vals


def _select(model: Model, ids: list[int], start: int, end: int) -> list[tuple[int, int, float]]:
    want = set(ids)
    return sorted((s, t, v) for (s, t), v in model.items() if s in want and start <= t <= end)


def _got(head: HeadMirror, ids: list[int], start: int, end: int) -> list[tuple[int, int, float]]:
    sid, ts, vals = head.select(np.array(sorted(set(ids)), dtype=np.uint32), start, end)
    return list(zip(sid.tolist(), ts.tolist(), vals.tolist(), strict=True))


# Timestamps from a narrow and a very wide range (the wide one forces the lexsort path).
timestamps = st.one_of(st.integers(0, 50), st.integers(-(2**61), 2**61))
rows = st.dictionaries(st.tuples(st.integers(1, 8), timestamps), st.integers(-100, 100).map(float), max_size=30)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), rows, st.integers(0, 10)),
        st.tuples(st.just("drop"), timestamps),
        st.tuples(st.just("clear")),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(ops, st.lists(st.integers(1, 8), max_size=8), timestamps, timestamps)
def test_mirror_matches_model(operations: list[Any], ids: list[int], a: int, b: int) -> None:
    head = HeadMirror()
    model: Model = {}
    for op in operations:
        if op[0] == "write":
            # The store deletes a pair before writing it again: delete some present pairs, and
            # every pair this write touches that is present.
            new: dict[tuple[int, int], float] = op[1]
            present = sorted(model)
            extra = present[: op[2]]
            gone = sorted({k for k in new if k in model} | set(extra))
            for k in gone:
                del model[k]
            model.update(new)
            dsid = np.array([k[0] for k in gone], dtype=np.uint32)
            dts = np.array([k[1] for k in gone], dtype=np.int64)
            head.apply(_rows(new), (dsid, dts))
        elif op[0] == "drop":
            dropped = head.drop_before(op[1])
            old = [k for k in model if k[1] < op[1]]
            assert dropped == len(old)
            for k in old:
                del model[k]
        else:
            head.clear()
            model.clear()
        assert head.rows == len(model)
        assert _got(head, list(range(1, 9)), -(2**62), 2**62) == _select(model, list(range(1, 9)), -(2**62), 2**62)
    lo, hi = min(a, b), max(a, b)
    assert _got(head, ids, lo, hi) == _select(model, ids, lo, hi)


def test_segments_stay_logarithmic() -> None:
    head = HeadMirror()
    for step in range(1000):
        sid = np.arange(1, 101, dtype=np.uint32)
        head.apply((sid, np.full(100, step * 1000, dtype=np.int64), np.full(100, float(step))))
    assert head.rows == 100_000
    assert head.segments <= 7 * 4 + 1  # (FANOUT - 1) * ceil(log8(1000)) + 1
    sid, ts, vals = head.select(np.array([7, 50], dtype=np.uint32), 10_000, 19_000)
    assert sid.tolist() == [7] * 10 + [50] * 10
    assert ts.tolist() == list(range(10_000, 20_000, 1000)) * 2
    assert vals.tolist() == [float(s) for s in range(10, 20)] * 2


def test_order_by_series_ts_is_stable_on_both_paths() -> None:
    sid = np.array([2, 1, 2, 1, 1], dtype=np.uint32)
    for ts in (np.array([5, 9, 5, 3, 9], dtype=np.int64), np.array([5, 2**60, 5, -(2**60), 2**60], dtype=np.int64)):
        order = order_by_series_ts(sid, ts).tolist()
        want = sorted(range(5), key=lambda i: (int(sid[i]), int(ts[i]), i))
        assert order == want


@settings(max_examples=300, deadline=None)
@given(rows, st.lists(st.integers(0, 9), max_size=9, unique=True), timestamps, timestamps)
def test_compiled_rows_in_matches_numpy(pairs: Model, ids: list[int], a: int, b: int) -> None:
    from clearsight.store.embedded import head as head_mod

    assert head_mod._headsel is not None, "the Cython extension is built by `make setup`"
    mirror = HeadMirror()
    mirror.apply(_rows(pairs))
    want_ids = np.array(sorted(ids), dtype=np.uint32)
    lo, hi = min(a, b), max(a, b)
    for seg in mirror._segments:
        assert seg.rows_in(want_ids, lo, hi).tolist() == seg.rows_in_py(want_ids, lo, hi).tolist()


def test_lookup_finds_stored_pairs_and_values() -> None:
    mirror = HeadMirror()
    mirror.apply(_rows({(1, 10): 1.5, (2, 10): 2.5}))
    mirror.apply(_rows({(1, 20): 3.5}))
    found, vals = mirror.lookup(np.array([1, 1, 2, 3], dtype=np.uint32), np.array([20, 15, 10, 10], dtype=np.int64))
    assert found.tolist() == [True, False, True, False]
    assert vals[found].tolist() == [3.5, 2.5]


@settings(max_examples=200, deadline=None)
@given(st.lists(rows, min_size=1, max_size=12), st.lists(st.tuples(st.integers(0, 9), timestamps), max_size=20))
def test_lookup_matches_model(writes: list[Model], probes: list[tuple[int, int]]) -> None:
    """Pair lookups over many segments (key search, or the per-series pass for segments spanning
    2**32 ms or more) against the dict model, before and after segments merge."""
    head = HeadMirror()
    model: Model = {}
    for new in writes:
        gone = sorted(k for k in new if k in model)
        for k in gone:
            del model[k]
        model.update(new)
        head.apply(
            _rows(new),
            (np.array([k[0] for k in gone], dtype=np.uint32), np.array([k[1] for k in gone], dtype=np.int64)),
        )
        pairs = sorted(set(probes) | set(list(model)[:5]))
        if not pairs:
            continue
        found, vals = head.lookup(
            np.array([p[0] for p in pairs], dtype=np.uint32), np.array([p[1] for p in pairs], dtype=np.int64)
        )
        assert found.tolist() == [p in model for p in pairs]
        assert vals[found].tolist() == [model[p] for p in pairs if p in model]


def test_merges_stop_at_max_merge_rows() -> None:
    """No merge holds more than ``max_merge_rows`` rows: the segments it would take stay as they
    are, and every row still reads back."""
    head = HeadMirror(max_merge_rows=2_000)
    sizes: list[int] = []
    for step in range(600):
        sid = np.arange(1, 101, dtype=np.uint32)
        head.apply((sid, np.full(100, step * 1000, dtype=np.int64), np.full(100, float(step))))
        sizes.append(max(len(s) for s in head._segments))
    assert max(sizes) == 800  # 8 segments of 100 rows merged once; 8 of 800 would hold 6,400
    assert head.rows == 60_000
    assert head.segments >= 60_000 // 800
    sid, ts, vals = head.select(np.array([3], dtype=np.uint32), 0, 10**9)
    assert ts.tolist() == list(range(0, 600_000, 1000)) and vals.tolist() == [float(s) for s in range(600)]
