"""The writer's decoded window: lookups against a dict reference, coverage by snapshot and uid."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.store.embedded.catalog import ChunkRows
from clearsight.store.embedded.window import DecodedWindow

# chunks: per chunk a series id and a list of distinct timestamps (chunks of a series may overlap
# in time, but a (series, ts) pair is in one chunk only).
chunk_lists = st.lists(
    st.tuples(st.integers(1, 4), st.lists(st.integers(0, 60), min_size=1, max_size=8, unique=True)),
    min_size=1,
    max_size=8,
)


def _build(chunks: list[tuple[int, list[int]]]) -> tuple[ChunkRows, DecodedWindow | None, dict[tuple[int, int], float]]:
    seen: set[tuple[int, int]] = set()
    kept: list[tuple[int, list[int]]] = []
    for sid, ts in chunks:
        ts = sorted(t for t in ts if (sid, t) not in seen)
        if ts:
            seen.update((sid, t) for t in ts)
            kept.append((sid, ts))
    kept.sort(key=lambda c: (c[0], c[1][0]))
    k = len(kept)
    rows = ChunkRows(
        np.asarray([c[0] for c in kept], dtype=np.uint32),
        np.asarray([c[1][0] for c in kept], dtype=np.int64),
        np.asarray([c[1][-1] for c in kept], dtype=np.int64),
        np.asarray([len(c[1]) for c in kept], dtype=np.int64),
        np.zeros(k, dtype=np.uint8),
        np.zeros(k, dtype=np.uint8),
        np.arange(10, 10 + k, dtype=np.int64),
    )
    ts = np.asarray([t for c in kept for t in c[1]], dtype=np.int64)
    vals = np.arange(ts.shape[0], dtype=np.float64) + 0.5
    ref = {(c_sid, t): float(v) for (c_sid, t), v in zip(((c[0], t) for c in kept for t in c[1]), vals, strict=True)}
    return rows, DecodedWindow.build(rows, rows, ts, vals), ref


@settings(max_examples=150, deadline=None)
@given(chunk_lists, st.lists(st.tuples(st.integers(0, 5), st.integers(-5, 70)), max_size=30))
def test_lookup_matches_reference(chunks: list[tuple[int, list[int]]], queries: list[tuple[int, int]]) -> None:
    _, win, ref = _build(chunks)
    assert win is not None
    sid = np.asarray([q[0] for q in queries], dtype=np.uint32)
    ts = np.asarray([q[1] for q in queries], dtype=np.int64)
    found, vals = win.lookup(sid, ts)
    assert found.tolist() == [q in ref for q in queries]
    assert [float(v) for v, f in zip(vals, found, strict=True) if f] == [ref[q] for q in queries if q in ref]


def test_covers_needs_same_snapshot_and_every_uid() -> None:
    rows, win, _ = _build([(1, [0, 1]), (2, [5])])
    assert win is not None
    assert win.covers(rows, rows.uid)
    assert win.covers(rows, rows.uid[:1])
    assert not win.covers(rows, np.asarray([99], dtype=np.int64))
    other = rows.take(np.arange(len(rows)))
    assert not win.covers(other, rows.uid)


def test_wide_span_builds_no_window() -> None:
    rows = ChunkRows(
        np.asarray([1], dtype=np.uint32), np.asarray([0], dtype=np.int64), np.asarray([2**33], dtype=np.int64),
        np.asarray([2], dtype=np.int64), np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.uint8),
        np.asarray([1], dtype=np.int64),
    )
    assert DecodedWindow.build(rows, rows, np.asarray([0, 2**33], dtype=np.int64), np.zeros(2)) is None
