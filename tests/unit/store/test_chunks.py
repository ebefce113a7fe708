"""The chunk codec: exact round trips, codec choice, compression on regular data."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.samples import STALE_NAN
from clearsight.store.embedded import chunks


def _roundtrip(sids: np.ndarray, ts: np.ndarray, vals: np.ndarray) -> chunks.Encoded:
    enc = chunks.encode(sids.astype(np.uint32), ts.astype(np.int64), vals.astype(np.float64))
    got_ts, got_v = chunks.decode(enc.n, enc.codec, enc.scale, enc.data, min_ts=enc.min_ts, max_ts=enc.max_ts)
    assert got_ts.tolist() == ts.tolist()
    assert got_v.view(np.uint64).tolist() == vals.view(np.uint64).tolist()
    return enc


any_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(0, 2**64 - 1).map(lambda b: struct.unpack("<d", struct.pack("<Q", b))[0]),
    st.integers(-(10**6), 10**6).map(lambda k: k / 100),
    st.just(STALE_NAN),
    st.just(-0.0),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 6),
            st.lists(st.tuples(st.integers(-(2**62), 2**62), any_float), min_size=1, max_size=40),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_roundtrip_exact(series: list[tuple[int, list[tuple[int, float]]]]) -> None:
    merged: dict[int, dict[int, float]] = {}
    for sid, samples in series:
        merged.setdefault(sid, {}).update(dict(samples))
    sids, ts, vals = [], [], []
    for sid in sorted(merged):
        for t in sorted(merged[sid]):
            sids.append(sid)
            ts.append(t)
            vals.append(merged[sid][t])
    enc = _roundtrip(np.array(sids), np.array(ts), np.array(vals, dtype=np.float64))
    _check_native_equals_reference(enc, -(2**63), 2**63 - 1)
    if ts:
        _check_native_equals_reference(enc, ts[len(ts) // 3], ts[len(ts) // 2])
    assert enc.series_id.tolist() == sorted(merged)
    assert enc.n.tolist() == [len(merged[s]) for s in sorted(merged)]
    assert enc.min_ts.tolist() == [min(merged[s]) for s in sorted(merged)]
    assert enc.max_ts.tolist() == [max(merged[s]) for s in sorted(merged)]


def _check_native_equals_reference(enc: chunks.Encoded, lo: int, hi: int) -> None:
    want = chunks.decode_range_py(enc.n, enc.codec, enc.scale, enc.data, lo, hi, min_ts=enc.min_ts, max_ts=enc.max_ts)
    got = chunks.decode_range(enc.n, enc.codec, enc.scale, enc.data, lo, hi, min_ts=enc.min_ts, max_ts=enc.max_ts)
    assert got[0].tolist() == want[0].tolist()
    assert got[1].view(np.uint64).tolist() == want[1].view(np.uint64).tolist()
    assert got[2].tolist() == want[2].tolist()
    ts_all, _ = chunks.decode(enc.n, enc.codec, enc.scale, enc.data, min_ts=enc.min_ts, max_ts=enc.max_ts)
    assert want[0].tolist() == [t for t in ts_all.tolist() if lo <= t <= hi]


def test_native_decoder_is_built() -> None:
    # The Cython decoder is what the store uses; the equivalence checks above would otherwise only
    # compare the reference with itself.
    assert chunks._chunkdec is not None


def test_codec_choice() -> None:
    ts = np.arange(4, dtype=np.int64) * 15_000
    sids = np.repeat(np.arange(1, 6, dtype=np.uint32), 4)
    vals = np.concatenate(
        [
            [1.0, 2.0, 3.0, 4.0],  # integers: DECIMAL values (ANCHORED), scale 0
            [0.25, 0.5, 12.75, 1e6 + 0.01],  # two decimals: DECIMAL values (ANCHORED), scale 2
            [1.0, STALE_NAN, 2.0, 3.0],  # a stale marker: XOR values (ANCHORED_XOR)
            [0.1 + 0.2, 1.0, 2.0, 3.0],  # a binary fraction: XOR
            [-0.0, 1.0, 2.0, 3.0],  # negative zero: XOR
        ]
    )
    enc = _roundtrip(sids, np.tile(ts, 5), vals)
    _check_native_equals_reference(enc, 15_000, 30_000)
    assert enc.codec.tolist() == [
        chunks.ANCHORED,
        chunks.ANCHORED,
        chunks.ANCHORED_XOR,
        chunks.ANCHORED_XOR,
        chunks.ANCHORED_XOR,
    ]
    assert enc.scale.tolist()[:2] == [0, 2]


def test_mixed_chunk_lengths_and_regular_data_compress() -> None:
    rng = np.random.default_rng(3)
    lengths = [1, 2, 120, 7, 720, 120]
    sids = np.repeat(np.arange(1, len(lengths) + 1, dtype=np.uint32), lengths)
    ts = np.concatenate([1_700_000_000_000 + np.arange(m, dtype=np.int64) * 15_000 for m in lengths])
    vals = np.concatenate([np.round(np.cumsum(rng.uniform(0, 10, m)), 2) for m in lengths])
    enc = _roundtrip(sids, ts, vals)
    _check_native_equals_reference(enc, int(ts[0]) + 15_000 * 3, int(ts[0]) + 15_000 * 200)
    # Regular timestamps and 2-decimal counters: far below the 16 raw bytes per sample.
    assert sum(len(d) for d in enc.data) < 4 * ts.shape[0]


def test_empty() -> None:
    enc = chunks.encode(np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64), np.zeros(0))
    assert enc.data == []
    ts, vals = chunks.decode(enc.n, enc.codec, enc.scale, enc.data, min_ts=enc.min_ts, max_ts=enc.max_ts)
    assert ts.shape == (0,) and vals.shape == (0,)
    for decode_range in (chunks.decode_range, chunks.decode_range_py):
        ts, vals, kept = decode_range(enc.n, enc.codec, enc.scale, enc.data, 0, 1, min_ts=enc.min_ts, max_ts=enc.max_ts)
        assert ts.shape == (0,) and vals.shape == (0,) and kept.shape == (0,)


def test_decoded_chunk_cache_equals_decoder_and_stays_bounded() -> None:
    rng = np.random.default_rng(5)
    lengths = [3, 50, 1, 20, 7]
    sids = np.repeat(np.arange(1, len(lengths) + 1, dtype=np.uint32), lengths)
    ts = np.concatenate([np.sort(rng.choice(10_000, m, replace=False)).astype(np.int64) for m in lengths])
    vals = np.concatenate([rng.normal(size=m) for m in lengths])
    vals[5] = STALE_NAN
    enc = chunks.encode(sids, ts, vals)
    cache = chunks.DecodedChunkCache(60)
    for lo, hi, pick in [
        (0, 10_000, [0, 1, 2]),  # all misses
        (2_000, 8_000, [1, 2, 3]),  # hits and misses, cut
        (0, 10_000, [1, 2, 3]),  # hits (3 may have evicted 0)
        (5_000, 5_000, [4, 0]),
    ]:
        idx = np.asarray(pick)
        args = (enc.n[idx], enc.codec[idx], enc.scale[idx], [enc.data[i] for i in pick], lo, hi)
        bounds = {"min_ts": enc.min_ts[idx], "max_ts": enc.max_ts[idx]}
        got = cache.decode_range(*args, **bounds)
        want = chunks.decode_range_py(*args, **bounds)
        assert got[0].tolist() == want[0].tolist()
        assert got[1].view(np.uint64).tolist() == want[1].view(np.uint64).tolist()
        assert got[2].tolist() == want[2].tolist()
        assert cache.samples <= 60
    assert cache.hits > 0 and cache.misses > 0
    cache.resize(0)
    assert cache.samples == 0 and len(cache) == 0


def test_native_range_gather_equals_concatenate_and_mask() -> None:
    assert chunks._chunkdec is not None, "the native chunk decoder is not built (pip install -e .)"
    rng = np.random.default_rng(11)
    for _ in range(200):
        k = int(rng.integers(0, 12))
        lens = rng.integers(0, 40, size=k)
        ts_parts = [np.sort(rng.choice(5_000, int(m), replace=False)).astype(np.int64) for m in lens]
        val_parts = [rng.normal(size=int(m)) for m in lens]
        for p in ts_parts + val_parts:
            p.flags.writeable = False  # as the cache hands them out
        lo = int(rng.integers(-100, 5_000))
        hi = lo + int(rng.integers(-10, 3_000))
        ts, vals, kept = chunks._chunkdec.gather_in_range(ts_parts, val_parts, lo, hi)
        all_ts = np.concatenate(ts_parts) if k else np.zeros(0, dtype=np.int64)
        all_vals = np.concatenate(val_parts) if k else np.zeros(0)
        keep = (all_ts >= lo) & (all_ts <= hi)
        assert ts.tolist() == all_ts[keep].tolist()
        assert vals.view(np.uint64).tolist() == all_vals[keep].view(np.uint64).tolist()
        assert kept.tolist() == [int(((p >= lo) & (p <= hi)).sum()) for p in ts_parts]


def test_native_range_gather_refuses_parts_of_another_shape() -> None:
    assert chunks._chunkdec is not None
    ts = np.arange(4, dtype=np.int64)
    vals = np.ones(4)
    bad: list[tuple[list[Any], list[Any]]] = [
        ([ts.astype(np.int32)], [vals]),  # other dtypes
        ([ts.astype(np.uint64)], [vals]),
        ([ts], [vals.astype(np.float32)]),
        ([ts], [vals[:3]]),  # lengths differ
        ([ts.reshape(2, 2)], [vals.reshape(2, 2)]),  # not 1-d
        ([ts[::2]], [vals[::2]]),  # not contiguous
        ([ts, ts], [vals]),  # one values part per timestamps part
    ]
    for ts_parts, val_parts in bad:
        with pytest.raises((ValueError, BufferError)):
            chunks._chunkdec.gather_in_range(ts_parts, val_parts, 0, 10)


def test_decoded_chunk_cache_by_key_fetches_only_the_bytes_it_misses() -> None:
    lengths = [4, 9, 2]
    sids = np.repeat(np.arange(1, 4, dtype=np.uint32), lengths)
    ts = np.concatenate([np.arange(m, dtype=np.int64) * 1000 for m in lengths])
    enc = chunks.encode(sids, ts, ts / 7.0)
    cache = chunks.DecodedChunkCache(1_000)
    asked: list[list[int]] = []

    def fetch(pos: list[int]) -> list[bytes]:
        asked.append(list(pos))
        return [enc.data[i] for i in pos]

    bounds = {"min_ts": enc.min_ts, "max_ts": enc.max_ts}
    want = chunks.decode_range_py(enc.n, enc.codec, enc.scale, enc.data, 1000, 5000, **bounds)
    for _ in range(2):
        got = cache.decode_range(enc.n, enc.codec, enc.scale, fetch, 1000, 5000, keys=[11, 12, 13], **bounds)
        assert [g.tolist() for g in got] == [w.tolist() for w in want]
    assert asked == [[0, 1, 2]]  # the second read was all hits: no bytes looked up
    idx = np.asarray([2, 0])

    def fetch_sub(pos: list[int]) -> list[bytes]:
        asked.append(list(pos))
        return [enc.data[int(idx[i])] for i in pos]

    got = cache.decode_range(enc.n[idx], enc.codec[idx], enc.scale[idx], fetch_sub, 0, 10**6, keys=[13, 99],
                             min_ts=enc.min_ts[idx], max_ts=enc.max_ts[idx])
    assert asked[-1] == [1]  # position 1 of this read (key 99) only
    assert got[0].tolist() == ts[13:15].tolist() + ts[:4].tolist()
    with pytest.raises(ValueError, match="one key per chunk"):
        cache.decode_range(enc.n, enc.codec, enc.scale, fetch, 0, 1, keys=[1], **bounds)
