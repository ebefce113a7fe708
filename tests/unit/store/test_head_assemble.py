"""``HeadPick.assemble`` (the compiled one-pass read assembly, store/embedded/_headsel.pyx) and
``HeadView.read_cached`` (a read located, cut from the decoded-chunk cache and assembled in one
call; head-only reads too) against a dict reference: per series in the requested order, its chunk
samples then its head rows segment after segment; None exactly when some series' pieces are not in strictly ascending time order;
hostile arguments raise instead of reading out of bounds."""

from __future__ import annotations

import itertools
import struct
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.store.embedded.catalog import ChunkRows
from clearsight.store.embedded.head import HeadMirror, HeadPick, HeadView
from clearsight.store.embedded.index import IdArray

# per series (id 1..6): its chunks (each a list of distinct timestamps) and its head writes
# (each group commit a list of distinct timestamps; the mirror keeps a pair in one segment only)
series_st = st.dictionaries(
    st.integers(1, 6),
    st.tuples(
        st.lists(st.lists(st.integers(0, 100), min_size=0, max_size=5, unique=True), max_size=3),
        st.lists(st.lists(st.integers(0, 100), min_size=1, max_size=4, unique=True), max_size=3),
    ),
    min_size=1,
    max_size=5,
)


def _head(series: dict[int, tuple[list[list[int]], list[list[int]]]], stale: set[int] | None = None) -> HeadMirror:
    """A mirror written in group commits: commit ``g`` holds every series' ``g``-th head write (value
    ts + 0.25; a stale marker at the ``stale`` timestamps)."""
    head = HeadMirror()
    seen: set[tuple[int, int]] = set()
    commits = max((len(h) for _, h in series.values()), default=0)
    for g in range(commits):
        rows = sorted({(sid, t) for sid, (_, h) in series.items() if g < len(h) for t in h[g]} - seen)
        seen.update(rows)
        if rows:
            sid = np.asarray([r[0] for r in rows], dtype=np.uint32)
            ts = np.asarray([r[1] for r in rows], dtype=np.int64)
            vals = ts.astype(np.float64) + 0.25
            if stale:
                vals[np.isin(ts, sorted(stale))] = STALE
            head.apply((sid, ts, vals))
    return head


Entries = OrderedDict[Any, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]


def _cached_chunks(series: dict[int, tuple[list[list[int]], list[list[int]]]],
                   missing: set[int]) -> tuple[list[tuple[int, list[int]]], ChunkRows, Entries]:
    """The series' chunks (by (series, min ts)), their catalogue rows (uids from 100) and the
    decoded-chunk cache's entries of those not ``missing`` (value ts + 0.5)."""
    chunks = sorted((sid, sorted(c)) for sid, (cs, _) in series.items() for c in cs if c)
    chunks.sort(key=lambda c: (c[0], c[1][0]))
    rows = ChunkRows(np.asarray([c[0] for c in chunks], dtype=np.uint32),
                     np.asarray([c[1][0] for c in chunks], dtype=np.int64),
                     np.asarray([c[1][-1] for c in chunks], dtype=np.int64),
                     np.asarray([len(c[1]) for c in chunks], dtype=np.int64),
                     np.zeros(len(chunks), dtype=np.uint8), np.zeros(len(chunks), dtype=np.uint8),
                     np.arange(100, 100 + len(chunks), dtype=np.int64))
    entries: Entries = OrderedDict()
    for j, (_, ts) in enumerate(chunks):
        if j not in missing:
            t = np.asarray(ts, dtype=np.int64)
            entries[100 + j] = (t, t.astype(np.float64) + 0.5)
    return chunks, rows, entries


def _refused(view: Any, ids_l: list[int], chunks: list[tuple[int, list[int]]], lo: int, hi: int, cap: int | None,
             max_chunks: int, missing: set[int]) -> tuple[object, dict[int, list[tuple[int, float]]], list[int],
                                                          dict[int, list[int]], int]:
    """What a cached read refuses, as the step by step read does: the ``needed`` count, None (a
    chunk not cached, more than ``max_chunks``: no entry touched) or False (not refused); with the
    head rows, the chunks used, their samples kept and the samples in all."""
    head_rows = {sid: [(int(s.ts[r]), float(s.vals[r])) for s in view.segments for r in range(len(s))
                       if int(s.sid[r]) == sid and lo <= int(s.ts[r]) <= hi] for sid in ids_l}
    n_head = sum(len(v) for v in head_rows.values())
    used = [j for j, (sid, ts) in enumerate(chunks) if sid in ids_l and ts[-1] >= lo and ts[0] <= hi]
    kept = {j: [t for t in chunks[j][1] if lo <= t <= hi] for j in used}
    total = n_head + sum(len(v) for v in kept.values())
    if cap is not None and n_head > cap:  # refused before the chunks are looked at, as _locate does
        return n_head, head_rows, used, kept, total
    if len(used) > max_chunks or any(j in missing for j in used):
        return None, head_rows, used, kept, total
    certain = n_head + sum(len(chunks[j][1]) for j in used if chunks[j][1][0] >= lo and chunks[j][1][-1] <= hi)
    if cap is not None and certain > cap:
        return certain, head_rows, used, kept, total
    if cap is not None and total > cap:
        return total, head_rows, used, kept, total
    return False, head_rows, used, kept, total


@settings(max_examples=300, deadline=None)
@given(series_st, st.integers(0, 100), st.integers(0, 100), st.randoms(use_true_random=False))
def test_matches_reference(series: dict[int, tuple[list[list[int]], list[list[int]]]], a: int, b: int,
                           rnd: object) -> None:
    lo, hi = min(a, b), max(a, b)
    ids = np.asarray(sorted(series), dtype=np.uint32)
    head = _head(series)
    pick = head.pick(ids, lo, hi)
    # chunk samples as a decoded read gives them: chunks of a series by min ts, in-range samples only
    c_sid: list[int] = []
    kept: list[int] = []
    c_ts: list[int] = []
    chunk_pieces: dict[int, list[list[int]]] = {}
    for sid in sorted(series):
        chunks = sorted((sorted(t for t in c if lo <= t <= hi) for c in series[sid][0] if c), key=lambda c: min(c or [0]))
        chunk_pieces[sid] = chunks
        for c in chunks:
            c_sid.append(sid)
            kept.append(len(c))
            c_ts.extend(c)
    c_ts_a = np.asarray(c_ts, dtype=np.int64)
    perm_l = list(range(len(ids)))
    rnd.shuffle(perm_l)  # type: ignore[attr-defined]
    perm = np.asarray(perm_l, dtype=np.int64)
    got = pick.assemble(perm, np.asarray(c_sid, dtype=np.uint32), np.asarray(kept, dtype=np.int64), c_ts_a,
                        c_ts_a.astype(np.float64) + 0.5)
    # reference: per series, its chunk pieces then its head rows segment after segment
    segs = pick.segments
    want: list[tuple[list[int], list[float]]] = []
    ordered = True
    for i in perm_l:
        sid = int(ids[i])
        ts = [t for c in chunk_pieces[sid] for t in c]
        vals = [t + 0.5 for t in ts]
        for s in segs:
            rows = [r for r in range(len(s)) if int(s.sid[r]) == sid and lo <= int(s.ts[r]) <= hi]
            ts += [int(s.ts[r]) for r in rows]
            vals += [float(s.vals[r]) for r in rows]
        ordered &= all(x < y for x, y in itertools.pairwise(ts))
        want.append((ts, vals))
    if not ordered:
        assert got is None
        return
    assert got is not None
    offsets, ts_out, vals_out, empty = got
    assert np.diff(offsets).tolist() == [len(w[0]) for w in want]
    assert offsets[0] == 0
    assert empty == sum(1 for w in want if not w[0])
    assert ts_out.tolist() == [t for w in want for t in w[0]]
    assert vals_out.tolist() == [v for w in want for v in w[1]]
    assert pick.rows == sum(len(w[0]) for w in want) - len(c_ts)
    assert not np.shares_memory(ts_out, c_ts_a)  # decoded columns may be cached: a copy


def test_hostile_arguments_raise() -> None:
    head = HeadMirror()
    head.apply((np.asarray([1, 2], dtype=np.uint32), np.asarray([10, 10], dtype=np.int64), np.ones(2)))
    ids = np.asarray([1, 2], dtype=np.uint32)
    pick = head.pick(ids, 0, 100)
    none = np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    bad_perm = np.asarray([0, 5], dtype=np.int64)
    with pytest.raises(ValueError, match="perm out of range"):
        pick.assemble(bad_perm, *none)
    with pytest.raises(ValueError, match="one position per id"):
        pick.assemble(np.asarray([0], dtype=np.int64), *none)
    # a chunk of a series that is not read, chunks out of series order, counts past the samples
    with pytest.raises(ValueError, match="not among the ids"):
        pick.assemble(None, np.asarray([3], dtype=np.uint32), np.asarray([1], dtype=np.int64),
                      np.asarray([1], dtype=np.int64), np.ones(1))
    with pytest.raises(ValueError, match="not among the ids"):
        pick.assemble(None, np.asarray([2, 1], dtype=np.uint32), np.asarray([1, 1], dtype=np.int64),
                      np.asarray([1, 2], dtype=np.int64), np.ones(2))
    with pytest.raises(ValueError, match="exceed the decoded samples"):
        pick.assemble(None, np.asarray([1], dtype=np.uint32), np.asarray([5], dtype=np.int64),
                      np.asarray([1], dtype=np.int64), np.ones(1))
    forged = HeadPick(pick.segments, ids, 0, 100, np.asarray([0, 99, 0, 1], dtype=np.int64), 2, None, pick.native)
    with pytest.raises(ValueError, match="outside a segment"):
        forged.assemble(None, *none)


@settings(max_examples=300, deadline=None)
@given(series_st, st.sets(st.integers(1, 8)), st.integers(0, 100), st.integers(0, 100),
       st.sampled_from([None, -1, 0, 2, 10**6]), st.randoms(use_true_random=False))
def test_head_read_matches_reference(series: dict[int, tuple[list[list[int]], list[list[int]]]], extra: set[int],
                                     a: int, b: int, cap: int | None, rnd: object) -> None:
    """``HeadView.read_cached`` without chunks (a head-only read, ids the head may not hold) against
    the dict reference: each series' rows in range, segment after segment, in ``perm`` order; None
    exactly when they are not ascending; the row count instead when it exceeds ``cap``."""
    lo, hi = min(a, b), max(a, b)
    head = _head(series)
    view = head.view()
    ids_l = sorted(set(series) | extra)
    ids = np.asarray(ids_l, dtype=np.uint32)
    perm_l = list(range(len(ids_l)))
    rnd.shuffle(perm_l)  # type: ignore[attr-defined]
    got = view.read_cached(ids, np.asarray(perm_l, dtype=np.int64), lo, hi, cap, ChunkRows.empty().native,
                           OrderedDict(), 0)
    want = []
    for i in perm_l:
        rows = [(int(s.ts[r]), float(s.vals[r])) for s in view.segments for r in range(len(s))
                if int(s.sid[r]) == ids_l[i] and lo <= int(s.ts[r]) <= hi]
        want.append(rows)
    total = sum(len(w) for w in want)
    if cap is not None and total > cap:
        assert got == total
        return
    if not all(x[0] < y[0] for w in want for x, y in itertools.pairwise(w)):
        assert got is None
        return
    assert isinstance(got, tuple)
    offsets, ts, vals, empty, chunks = got
    assert chunks == 0
    assert np.diff(offsets).tolist() == [len(w) for w in want] and offsets[0] == 0
    assert ts.tolist() == [t for w in want for t, _ in w]
    assert vals.tolist() == [v for w in want for _, v in w]
    assert empty == sum(1 for w in want if not w)
    assert view.pick(ids, lo, hi).rows == total


@settings(max_examples=300, deadline=None)
@given(series_st, st.sets(st.integers(1, 8)), st.integers(0, 100), st.integers(0, 100),
       st.sampled_from([None, -1, 0, 2, 10**6]), st.sampled_from([0, 1, 100]), st.sets(st.integers(0, 20)),
       st.randoms(use_true_random=False))
def test_cached_read_matches_reference(
    series: dict[int, tuple[list[list[int]], list[list[int]]]], extra: set[int], a: int, b: int, cap: int | None,
    max_chunks: int, missing: set[int], rnd: object,
) -> None:
    """``HeadView.read_cached`` (chunks from the decoded-chunk cache and head rows in one compiled
    call) against the dict reference: per series in ``perm`` order, the in-range samples of its
    chunks overlapping the range, then its head rows; None, touching no entry, when a chunk is not
    cached or there are more than ``max_chunks``; the ``needed`` count of the step by step read
    when ``cap`` refuses; None when the pieces are not ascending; the chunks used moved to the
    end of the entries."""
    lo, hi = min(a, b), max(a, b)
    head = _head(series)
    view = head.view()
    ids_l = sorted(set(series) | extra)
    ids = np.asarray(ids_l, dtype=np.uint32)
    chunks, rows, entries = _cached_chunks(series, missing)
    entries["other"] = (np.zeros(0, dtype=np.int64), np.zeros(0))  # a key of another kind: never taken
    before = list(entries)
    perm_l = list(range(len(ids_l)))
    rnd.shuffle(perm_l)  # type: ignore[attr-defined]
    got = view.read_cached(ids, np.asarray(perm_l, dtype=np.int64), lo, hi, cap, rows.native, entries, max_chunks)

    refused, head_rows, used, kept, _ = _refused(view, ids_l, chunks, lo, hi, cap, max_chunks, missing)
    if refused is not False:
        assert got == refused and list(entries) == before
        return
    assert list(entries) == [k for k in before if k not in {100 + j for j in used}] + [100 + j for j in used]
    want = []
    for i in perm_l:
        pieces = [(t, t + 0.5) for j in used if chunks[j][0] == ids_l[i] for t in kept[j]] + head_rows[ids_l[i]]
        want.append(pieces)
    if not all(x[0] < y[0] for w in want for x, y in itertools.pairwise(w)):
        assert got is None
        return
    assert isinstance(got, tuple)
    offsets, ts_out, vals_out, empty, taken = got
    assert taken == len(used)
    assert np.diff(offsets).tolist() == [len(w) for w in want] and offsets[0] == 0
    assert ts_out.tolist() == [t for w in want for t, _ in w]
    assert vals_out.tolist() == [v for w in want for _, v in w]
    assert empty == sum(1 for w in want if not w)
    for t, _ in entries.values():
        assert not np.shares_memory(ts_out, t)  # cached columns are copied, never handed out


def _one_chunk() -> tuple[HeadView, IdArray, ChunkRows, npt.NDArray[np.int64]]:
    """Series 1 with a head row at 10 and one chunk (uid 7) at 1..3, its timestamps ``good``."""
    head = HeadMirror()
    head.apply((np.asarray([1], dtype=np.uint32), np.asarray([10], dtype=np.int64), np.ones(1)))
    rows = ChunkRows(np.asarray([1], dtype=np.uint32), np.asarray([1], dtype=np.int64), np.asarray([3], dtype=np.int64),
                     np.asarray([2], dtype=np.int64), np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.uint8),
                     np.asarray([7], dtype=np.int64))
    return head.view(), np.asarray([1], dtype=np.uint32), rows, np.asarray([1, 3], dtype=np.int64)


def test_cached_read_hostile_arguments_raise() -> None:
    view, ids, rows, good = _one_chunk()
    with pytest.raises(TypeError, match="must be a dict"):
        view.read_cached(ids, None, 0, 100, None, rows.native, [(good, np.ones(2))], 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one position per id"):
        view.read_cached(ids, np.asarray([0, 0], dtype=np.int64), 0, 100, None, rows.native, OrderedDict(), 10)
    with pytest.raises(ValueError, match="differ in length"):
        view.read_cached(ids, None, 0, 100, None, rows.native, OrderedDict({7: (good, np.ones(3))}), 10)
    with pytest.raises(ValueError, match="expected a 1-d contiguous"):
        view.read_cached(ids, None, 0, 100, None, rows.native, OrderedDict({7: (good.astype(np.int32), np.ones(2))}),
                         10)
    got = view.read_cached(ids, None, 0, 100, None, rows.native, OrderedDict({7: (good, np.ones(2))}), 10)
    assert isinstance(got, tuple) and got[1].tolist() == [1, 3, 10] and got[4] == 1


@pytest.mark.parametrize("late", [False, True])
def test_large_cached_read_matches_reference(late: bool) -> None:
    """A read large enough that the compiled bounds and copy run without the GIL (at least 2,048
    (series, segment) pairs and 4,096 samples: ``NOGIL_SEARCHES``, ``NOGIL_SAMPLES``) gives what
    numpy computes from the same chunks and head segments; a series whose head holds a sample
    older than its chunks' last makes it None, as on the small path."""
    rng = np.random.default_rng(3)
    n_series, chunk_len, n_chunks = 300, 20, 3
    head = HeadMirror()
    head.max_merge_rows = 0  # keep every group commit a segment of its own
    first_head = chunk_len * n_chunks
    for g in range(12):  # group commits of 2 samples per series, after the chunks' samples
        sid = np.repeat(np.arange(1, n_series + 1, dtype=np.uint32), 2)
        ts = np.tile(np.asarray([first_head + 2 * g, first_head + 2 * g + 1], dtype=np.int64), n_series)
        if late and g == 5:
            ts[2 * 7] = 30  # series 8: a head sample (in range) older than its chunks' last
        head.apply((sid, ts, rng.random(ts.size)))
    view = head.view()
    assert len(view.segments) * n_series >= 2048
    c_sid, c_min, c_max, c_n, c_uid = [], [], [], [], []
    entries: OrderedDict[Any, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = OrderedDict()
    uid = 1000
    for s in range(1, n_series + 1):
        for c in range(n_chunks):
            t = np.arange(c * chunk_len, (c + 1) * chunk_len, dtype=np.int64)
            entries[uid] = (t, rng.random(t.size))
            c_sid.append(s)
            c_min.append(int(t[0]))
            c_max.append(int(t[-1]))
            c_n.append(t.size)
            c_uid.append(uid)
            uid += 1
    rows = ChunkRows(np.asarray(c_sid, dtype=np.uint32), np.asarray(c_min, dtype=np.int64),
                     np.asarray(c_max, dtype=np.int64), np.asarray(c_n, dtype=np.int64),
                     np.zeros(len(c_sid), dtype=np.uint8), np.zeros(len(c_sid), dtype=np.uint8),
                     np.asarray(c_uid, dtype=np.int64))
    ids = np.arange(1, n_series + 1, dtype=np.uint32)
    perm = rng.permutation(n_series).astype(np.int64)
    lo, hi = 5, first_head + 20
    got = view.read_cached(ids, perm, lo, hi, None, rows.native, entries, 10_000)
    by_uid = dict(zip(c_uid, c_sid, strict=True))
    want_ts, want_vals, lens = [], [], []
    for i in perm.tolist():
        sid = i + 1
        parts_t = [entries[u][0] for u in c_uid if by_uid[u] == sid]
        parts_v = [entries[u][1] for u in c_uid if by_uid[u] == sid]
        for seg in view.segments:
            m = seg.sid == sid
            parts_t.append(seg.ts[m])
            parts_v.append(seg.vals[m])
        t = np.concatenate(parts_t)
        v = np.concatenate(parts_v)
        keep = (t >= lo) & (t <= hi)
        want_ts.append(t[keep])
        want_vals.append(v[keep])
        lens.append(int(keep.sum()))
    if late:
        assert got is None
        return
    assert isinstance(got, tuple)
    offsets, ts_out, vals_out, empty, taken = got
    assert sum(lens) >= 4096
    assert taken == len(c_uid)
    assert np.diff(offsets).tolist() == lens and empty == 0
    assert np.array_equal(ts_out, np.concatenate(want_ts))
    assert np.array_equal(vals_out, np.concatenate(want_vals))
    bounds, total = view.native.bounds(ids, lo, hi)
    nseg = len(view.segments)
    for s, seg in enumerate(view.segments):  # the searches against numpy's
        a = np.searchsorted(seg.sid, ids, "left")
        b = np.searchsorted(seg.sid, ids, "right")
        for i in range(n_series):
            t = seg.ts[a[i]:b[i]]
            lo_i = a[i] + np.searchsorted(t, lo, "left")
            hi_i = a[i] + np.searchsorted(t, hi, "right")
            if seg.max_ts < lo or seg.min_ts > hi:  # a segment outside the range: not searched
                lo_i = hi_i = 0
            assert (bounds[(i * nseg + s) * 2], bounds[(i * nseg + s) * 2 + 1]) == (lo_i, hi_i)
    assert total == sum(lens) - sum(int(((entries[u][0] >= lo) & (entries[u][0] <= hi)).sum()) for u in c_uid)


STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


@settings(max_examples=400, deadline=None)
@given(series_st, st.sets(st.integers(1, 8)), st.integers(0, 100), st.integers(0, 100),
       st.sampled_from([None, -1, 0, 2, 10**6]), st.sampled_from([0, 1, 100]), st.sets(st.integers(0, 20)),
       st.sets(st.integers(0, 100), max_size=6), st.randoms(use_true_random=False))
def test_latest_matches_reference(
    series: dict[int, tuple[list[list[int]], list[list[int]]]], extra: set[int], a: int, b: int, cap: int | None,
    max_chunks: int, missing: set[int], stale: set[int], rnd: object,
) -> None:
    """``Segments.latest`` (an instant selector's read: each series' newest sample in the range, from
    its head rows and its cached chunks) against the dict reference: the value of the newest
    of its in-range pieces' samples per series in ``perm`` order, with the samples a read would
    copy; the ``needed`` count where ``read_cached`` refuses; None, touching no entry, for a chunk
    not cached, more than ``max_chunks``, a newest timestamp held twice
    or a newest sample that is a stale marker (head rows at ``stale`` timestamps are); series
    without a sample in the range left out and named."""
    lo, hi = min(a, b), max(a, b)
    view = _head(series, stale).view()
    ids_l = sorted(set(series) | extra)
    ids = np.asarray(ids_l, dtype=np.uint32)
    chunks, rows, entries = _cached_chunks(series, missing)
    before = list(entries)
    perm_l = list(range(len(ids_l)))
    rnd.shuffle(perm_l)  # type: ignore[attr-defined]
    assert view.native is not None and rows.native is not None
    got = view.native.latest(ids, np.asarray(perm_l, dtype=np.int64), lo, hi, cap, rows.native, entries, max_chunks)

    refused, head_rows, used, kept, total = _refused(view, ids_l, chunks, lo, hi, cap, max_chunks, missing)
    if refused is not False:
        assert got == refused and list(entries) == before
        return
    want: list[float] | None = []
    dropped: list[int] = []
    for jj, i in enumerate(perm_l):
        pieces = [(t, t + 0.5) for j in used if chunks[j][0] == ids_l[i] for t in kept[j]] + head_rows[ids_l[i]]
        newest = max((t for t, _ in pieces), default=None)
        if newest is None:
            dropped.append(jj)
            continue
        at = [v for t, v in pieces if t == newest]
        if len(at) != 1 or struct.pack("<d", at[0]) == struct.pack("<d", STALE):
            want = None
            break
        assert want is not None
        want.append(at[0])
    if want is None:
        assert got is None and list(entries) == before
        return
    assert isinstance(got, tuple)
    values, samples, taken, left_out = got
    assert values.shape == (len(want), 1) and values[:, 0].tolist() == want
    assert left_out == (dropped or None)
    assert samples == total and taken == len(used)
    assert list(entries) == [k for k in before if k not in {100 + j for j in used}] + [100 + j for j in used]


def test_latest_hostile_arguments_raise() -> None:
    view, ids, rows, good = _one_chunk()
    native = view.native
    with pytest.raises(TypeError, match="must be a dict"):
        native.latest(ids, None, 0, 100, None, rows.native, [(good, np.ones(2))], 10)
    with pytest.raises(ValueError, match="one position per id"):
        native.latest(ids, np.asarray([0, 0], dtype=np.int64), 0, 100, None, rows.native, OrderedDict(), 10)
    with pytest.raises(ValueError, match="perm out of range"):
        native.latest(ids, np.asarray([3], dtype=np.int64), 0, 100, None, rows.native, OrderedDict(), 10)
    with pytest.raises(ValueError, match="differ in length"):
        native.latest(ids, None, 0, 100, None, rows.native, OrderedDict({7: (good, np.ones(3))}), 10)
    with pytest.raises(ValueError, match="max_chunks"):
        native.latest(ids, None, 0, 100, None, rows.native, OrderedDict(), -1)
    with pytest.raises(ValueError, match="expected a 1-d contiguous"):  # values not float64
        native.latest(ids, None, 0, 100, None, rows.native, OrderedDict({7: (good, np.ones(2, dtype=np.float32))}), 10)
    with pytest.raises(ValueError, match="expected a 1-d contiguous"):  # perm not int64
        native.latest(ids, np.zeros(1, dtype=np.int32), 0, 100, None, rows.native, OrderedDict(), 10)
    with pytest.raises(TypeError, match="expected a numpy array"):
        native.latest([1], None, 0, 100, None, rows.native, OrderedDict(), 10)
    got = native.latest(ids, None, 0, 100, None, rows.native, OrderedDict({7: (good, np.ones(2))}), 10)
    assert isinstance(got, tuple) and got[0].tolist() == [[1.0]] and got[1:] == (3, 1, None)
