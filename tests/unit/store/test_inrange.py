"""The compiled range filters (store/embedded/_inrange.pyx) against their numpy references: the ids
of a selection with samples in a range, the catalogue's chunks of some series overlapping a range,
the samples of chunks wholly inside one and of those overlapping it; and the decoded-chunk cache's all-hit read
(``cached_range``) against ``decode_range``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.store.embedded import _inrange  # type: ignore[attr-defined]
from clearsight.store.embedded.catalog import ChunkRows
from clearsight.store.embedded.chunks import DecodedChunkCache, encode

bounds_st = st.lists(st.tuples(st.integers(-5, 40), st.integers(-5, 40)), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(bounds_st, st.data(), st.integers(-10, 50), st.integers(-10, 50), st.integers(-10, 50))
def test_ids_in_range_match_numpy(bounds: list[tuple[int, int]], data: st.DataObject, floor: int, a: int,
                                  b: int) -> None:
    min_ts = np.asarray([min(p) for p in bounds], dtype=np.int64)
    max_ts = np.asarray([max(p) for p in bounds], dtype=np.int64)
    ids = np.asarray(sorted(data.draw(st.sets(st.integers(0, len(bounds) - 1)))), dtype=np.uint32)
    ids.setflags(write=False)  # as the selection cache hands them out
    lo, hi = min(a, b), max(a, b)
    got = _inrange.ids_in_range(ids, min_ts, max_ts, floor, lo, hi)
    want = ids[(np.maximum(min_ts[ids], floor) <= hi) & (max_ts[ids] >= lo)]
    assert got.dtype == np.uint32
    assert got.tolist() == want.tolist()
    assert (got is ids) == (want.shape[0] == ids.shape[0])


_IDS = np.asarray([0, 2], dtype=np.uint32)
_TS = np.zeros(3, dtype=np.int64)


@pytest.mark.parametrize(("ids", "min_ts", "error"), [
    ([0, 2], _TS, TypeError),  # not an array
    (_IDS.astype(np.int64), _TS, ValueError),  # another type
    (np.asarray([0, 9, 2], dtype=np.uint32)[::2], _TS, ValueError),  # not contiguous
    (_IDS.astype(">u4"), _TS, ValueError),  # not native order
    (_IDS.reshape(1, 2), _TS, ValueError),  # not 1-d
    (_IDS, _TS.astype(np.float64), ValueError),
    (_IDS, memoryview(_TS), TypeError),
])
def test_arrays_not_read_in_place_are_refused(ids: object, min_ts: object, error: type[Exception]) -> None:
    """The arrays are read in place (clearsight/_ndarray.pxd): anything but a 1-d contiguous
    native-order array of the expected type is refused, as a typed memoryview refused it."""
    with pytest.raises(error):
        _inrange.ids_in_range(ids, min_ts, _TS, 0, 0, 1)


def test_a_read_only_array_is_read() -> None:
    ids = _IDS.copy()
    ids.setflags(write=False)  # as the selection cache hands them out
    assert _inrange.ids_in_range(ids, _TS, _TS, 0, 0, 1) is ids


def test_ids_past_the_bounds_raise() -> None:
    ts = np.zeros(3, dtype=np.int64)
    ids = np.asarray([1, 3], dtype=np.uint32)
    with pytest.raises(ValueError, match="past the per-series bounds"):
        _inrange.ids_in_range(ids, ts, ts, 0, 0, 1)


# chunks: (series id, min_ts, span, n)
chunks_st = st.lists(st.tuples(st.integers(1, 8), st.integers(0, 50), st.integers(0, 20), st.integers(1, 9)),
                     max_size=25, unique_by=lambda c: (c[0], c[1]))


def _rows(chunks: list[tuple[int, int, int, int]]) -> ChunkRows:
    chunks = sorted(chunks)
    k = len(chunks)
    return ChunkRows(
        np.asarray([c[0] for c in chunks], dtype=np.uint32),
        np.asarray([c[1] for c in chunks], dtype=np.int64),
        np.asarray([c[1] + c[2] for c in chunks], dtype=np.int64),
        np.asarray([c[3] for c in chunks], dtype=np.int64),
        np.zeros(k, dtype=np.uint8), np.zeros(k, dtype=np.uint8), np.arange(k, dtype=np.int64),
    )


@settings(max_examples=300, deadline=None)
@given(chunks_st, st.sets(st.integers(0, 10)), st.integers(-5, 80), st.integers(-5, 80))
def test_catalogue_find_and_samples_inside_match_numpy(chunks: list[tuple[int, int, int, int]], idset: set[int],
                                                       a: int, b: int) -> None:
    rows = _rows(chunks)
    ids = np.asarray(sorted(idset), dtype=np.uint32)
    lo, hi = min(a, b), max(a, b)
    got = rows.find(ids, lo, hi)
    want = rows.find_py(ids, lo, hi)
    assert got.dtype == np.intp
    assert got.tolist() == want.tolist()
    assert rows.samples_inside(got, lo, hi) == rows.samples_inside_py(want, lo, hi)
    assert rows.samples_overlapping(ids, lo, hi) == rows.samples_overlapping_py(ids, lo, hi) == int(rows.n[want].sum())


def test_positions_past_the_catalogue_raise() -> None:
    rows = _rows([(1, 0, 5, 3)])
    with pytest.raises(ValueError, match="past the catalogue"):
        rows.samples_inside(np.asarray([1], dtype=np.intp), 0, 10)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 100), min_size=1, max_size=12, unique=True), min_size=1, max_size=6),
       st.integers(-5, 105), st.integers(-5, 105), st.data())
def test_cached_range_is_decode_range_when_every_chunk_is_cached(
    chunk_ts: list[list[int]], a: int, b: int, data: st.DataObject
) -> None:
    lo, hi = min(a, b), max(a, b)
    ts_l = [np.asarray(sorted(c), dtype=np.int64) for c in chunk_ts]
    vals_l = [t.astype(np.float64) * 0.5 - 3 for t in ts_l]
    enc = encode(np.repeat(np.arange(len(ts_l), dtype=np.uint32), [t.shape[0] for t in ts_l]),
                 np.concatenate(ts_l), np.concatenate(vals_l))
    codec, scale, blobs = enc.codec, enc.scale, enc.data
    n_a = enc.n.astype(np.int64)
    kw = {"min_ts": enc.min_ts, "max_ts": enc.max_ts}
    keys = list(range(len(ts_l)))
    cache = DecodedChunkCache(10_000)
    cached = data.draw(st.sets(st.sampled_from(keys)))
    if cached:  # some chunks decoded by an earlier read
        pos = sorted(cached)
        cache.decode_range(n_a[pos], codec[pos], scale[pos], [blobs[i] for i in pos],
                           lo, hi, min_ts=kw["min_ts"][pos], max_ts=kw["max_ts"][pos], keys=pos)
    hits = cache.hits
    got = cache.cached_range(keys, lo, hi)
    if len(cached) < len(keys):
        assert got is None and cache.hits == hits  # a miss: nothing counted, decode_range reads
        return
    want = DecodedChunkCache(0).decode_range(n_a, codec, scale, blobs, lo, hi, **kw)
    assert got is not None
    for g, w in zip(got, want, strict=True):
        assert g.tolist() == w.tolist()
    assert cache.hits == hits + len(keys)
