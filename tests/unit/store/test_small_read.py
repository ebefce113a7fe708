"""small_read.assemble_small against a dict reference: series in label order, each series' samples
from its chunks then its head rows; None exactly when a series' pieces overlap in time."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.labels import Labels, make_labels
from clearsight.store.embedded.small_read import IdArray, Order, assemble_small

# per series (id 1..6): a list of chunks (each a sorted list of distinct timestamps) and head rows
series_st = st.dictionaries(
    st.integers(1, 6),
    st.tuples(
        st.lists(st.lists(st.integers(0, 100), min_size=0, max_size=5, unique=True), max_size=3),
        st.lists(st.integers(0, 100), max_size=5, unique=True),
    ),
    min_size=1,
    max_size=5,
)


def _labels(sid: int, by_id: bool = False) -> Labels:
    # label order differs from id order (id 6 sorts first), or is id order
    return make_labels({"__name__": "m", "k": f"v{sid if by_id else 7 - sid}"})


def _order(by_id: bool) -> Callable[[IdArray], Order]:
    def order(sub: IdArray) -> Order:
        labels = [_labels(s, by_id) for s in sub.tolist()]
        perm = sorted(range(len(labels)), key=labels.__getitem__)
        if perm == list(range(len(labels))) and by_id:
            return labels, None  # as LabelOrder answers ids already in label order
        return [labels[i] for i in perm], np.asarray(perm, dtype=np.int64)

    return order


@settings(max_examples=300, deadline=None)
@given(series_st, st.booleans())
def test_matches_reference(series: dict[int, tuple[list[list[int]], list[int]]], by_id: bool) -> None:
    """``by_id``: series in id order are in label order, so chunk-only reads are the decoded
    columns in storage order (answered without concatenating)."""
    ids = np.asarray(sorted(series), dtype=np.uint32)
    c_sid: list[int] = []
    kept: list[int] = []
    c_ts: list[int] = []
    h_rows: list[tuple[int, int]] = []
    pieces: dict[int, list[list[int]]] = {}
    has_head: dict[Labels, bool] = {}
    for sid in sorted(series):
        chunks, head = series[sid]
        chunks = sorted((sorted(c) for c in chunks), key=lambda c: c[0] if c else -1)
        for c in chunks:
            c_sid.append(sid)
            kept.append(len(c))
            c_ts.extend(c)
        h_rows.extend((sid, t) for t in sorted(head))
        pieces[sid] = [c for c in chunks if c] + ([sorted(head)] if head else [])
        has_head[_labels(sid, by_id)] = bool(head)
    c_ts_a = np.asarray(c_ts, dtype=np.int64)
    h_sid = np.asarray([r[0] for r in h_rows], dtype=np.uint32)
    h_ts = np.asarray([r[1] for r in h_rows], dtype=np.int64)
    got = assemble_small(
        ids,
        np.asarray(c_sid, dtype=np.uint32),
        np.asarray(kept, dtype=np.int64),
        c_ts_a,
        c_ts_a.astype(np.float64) + 0.5,
        h_sid,
        h_ts,
        h_ts.astype(np.float64) + 0.25,
        _order(by_id),
    )
    overlap = any(any(p[-1] >= q[0] for p, q in itertools.pairwise(ps)) for ps in pieces.values())
    if overlap:
        assert got is None
        return
    assert got is not None
    want = sorted((_labels(sid, by_id), ps) for sid, ps in pieces.items() if ps)
    assert got.labels == [w[0] for w in want]
    for i, (labels, ps) in enumerate(want):
        a, b = int(got.offsets[i]), int(got.offsets[i + 1])
        assert got.timestamps[a:b].tolist() == [t for p in ps for t in p]
        chunk_ps, head_ps = (ps[:-1], ps[-1:]) if has_head[labels] else (ps, [])
        want_vals = [t + 0.5 for p in chunk_ps for t in p] + [t + 0.25 for p in head_ps for t in p]
        assert got.values[a:b].tolist() == want_vals
    assert got.timestamps.flags.writeable and got.values.flags.writeable
    assert not np.shares_memory(got.timestamps, c_ts_a)  # the decoded columns may be cached: a copy
