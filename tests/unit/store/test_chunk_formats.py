"""The bit-packed chunk format (PACKED) and the first format side by side: data dirs written by the
first format still read exactly, the sequence coder round-trips any int64 sequence, the mode chosen
fits the data, and malformed chunks are refused the same way by the native and reference decoders."""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import STALE_NAN, SampleBatch
from clearsight.store.embedded import EmbeddedMetricsStore, chunks
from clearsight.store.embedded.chunk_parts import all_chunks
from clearsight.store.embedded.schema import SCHEMA_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chunk_fixture_data as fx

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "metrics-codec-v1.duckdb.gz"
I64 = st.integers(-(2**63), 2**63 - 1)


def _native() -> Any:
    assert chunks._chunkdec is not None, "the native chunk codec is not built (pip install -e .)"
    return chunks._chunkdec


def _all_samples(store: EmbeddedMetricsStore) -> dict[Labels, tuple[list[int], list[int]]]:
    data = store.select("t", [Matcher.of("=~", "__name__", ".+")], -(2**62), 2**62)
    out = {}
    for i in range(len(data)):
        labels, ts, vals = data.series(i)
        out[labels] = (ts.tolist(), vals.view(np.uint64).tolist())
    return out


def _expected(n: int) -> dict[Labels, tuple[list[int], list[int]]]:
    return {
        labels: (ts.tolist(), np.asarray(vals, dtype=np.float64).view(np.uint64).tolist())
        for labels, (ts, vals) in zip(fx.series(), fx.samples(n), strict=True)
    }


def test_data_dir_of_the_first_format_reads_exactly_and_takes_packed_chunks(tmp_path: Path) -> None:
    with gzip.open(FIXTURE, "rb") as src, open(tmp_path / "metrics.duckdb", "wb") as dst:
        shutil.copyfileobj(src, dst)
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"), read_only=True)
    assert con.execute("SELECT value FROM clearsight_meta WHERE key = 'schema_version'").fetchall() == [
        ("2",)
    ]
    assert sorted({c for (c,) in con.execute("SELECT codec FROM chunks").fetchall()}) == [
        chunks.XOR,
        chunks.DECIMAL,
    ]
    con.close()
    total = fx.COMPACTED + fx.IN_HEAD
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**15, duckdb_threads=1)
    try:
        assert _all_samples(store) == _expected(total)
        # New samples go next to the old chunks, compacted in the new format.
        more = fx.samples(total + 30)
        items = [
            (labels, list(zip(ts[total:].tolist(), vals[total:].tolist(), strict=True)))
            for labels, (ts, vals) in zip(fx.series(), more, strict=True)
        ]
        store.append("t", SampleBatch.from_series(items)).result()
        store.compact()
        assert _all_samples(store) == _expected(total + 30)
    finally:
        store.close()
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"), read_only=True)
    codecs = {c for (c,) in con.execute(f"SELECT codec FROM {all_chunks(con)}").fetchall()}
    version = con.execute("SELECT value FROM clearsight_meta WHERE key = 'schema_version'").fetchall()
    series_columns = con.table("series").columns
    con.close()
    assert chunks.PACKED in codecs and chunks.DECIMAL in codecs
    assert version == [(str(SCHEMA_VERSION),)] and SCHEMA_VERSION == 4  # upgraded from 2 on open
    assert series_columns == ["series_id", "tenant", "metric", "labels"]  # fingerprint dropped
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**15, duckdb_threads=1)
    try:
        assert _all_samples(store) == _expected(total + 30)
    finally:
        store.close()


def test_both_formats_in_one_decode_call() -> None:
    rng = np.random.default_rng(7)
    lengths = [5, 1, 130, 2, 64]
    sids = np.repeat(np.arange(1, 6, dtype=np.uint32), lengths)
    ts = np.concatenate([np.sort(rng.choice(10**6, m, replace=False)) for m in lengths]).astype(np.int64)
    vals = np.round(rng.normal(0, 100, ts.shape[0]), 2)
    vals[3] = 0.1 + 0.2  # series 1 is XOR
    old = chunks.encode(sids, ts, vals, pack=False)
    new = chunks.encode(sids, ts, vals)
    assert old.codec.tolist() == [chunks.XOR] + [chunks.DECIMAL] * 4
    assert new.codec.tolist() == [chunks.PACKED_XOR] + [chunks.PACKED] * 4
    pick = [0, 1, 2, 3, 4]
    mixed = (
        np.asarray([old.n[0], new.n[1], old.n[2], new.n[3], old.n[4]]),
        np.asarray([old.codec[0], new.codec[1], old.codec[2], new.codec[3], old.codec[4]]),
        np.asarray([old.scale[i] if i % 2 == 0 else new.scale[i] for i in pick]),
        [old.data[i] if i % 2 == 0 else new.data[i] for i in pick],
    )
    for decode in (chunks.decode, chunks.decode_py):
        got_ts, got_v = decode(*mixed)
        assert got_ts.tolist() == ts.tolist()
        assert got_v.view(np.uint64).tolist() == vals.view(np.uint64).tolist()
    lo, hi = int(ts[20]), int(ts[150])
    a = chunks.decode_range(*mixed, lo, hi)
    b = chunks.decode_range_py(*mixed, lo, hi)
    assert a[0].tolist() == b[0].tolist() and a[2].tolist() == b[2].tolist()
    assert a[1].view(np.uint64).tolist() == b[1].view(np.uint64).tolist()


def _sequences(blob: bytes, n: int) -> tuple[list[int], list[int], int, int]:
    t, pos = chunks._read_seq(blob, 0, n)
    k, end = chunks._read_seq(blob, pos, n)
    assert end == len(blob)
    return t.tolist(), k.tolist(), blob[0], blob[pos]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(I64, I64), min_size=1, max_size=70))
def test_sequence_coder_round_trips_any_int64(pairs: list[tuple[int, int]]) -> None:
    native = _native()
    ts = np.asarray([p[0] for p in pairs], dtype=np.int64)
    k = np.asarray([p[1] for p in pairs], dtype=np.int64)
    (blob,) = native.encode_packed(
        ts, k, np.zeros(1, dtype=np.int64), np.asarray([len(pairs)], dtype=np.int64)
    )
    got_t, got_k, _, _ = _sequences(blob, len(pairs))
    assert got_t == ts.tolist() and got_k == k.tolist()


def test_mode_and_size_fit_the_data() -> None:
    native = _native()
    rng = np.random.default_rng(1)
    n = 120
    one = (np.zeros(1, dtype=np.int64), np.asarray([n], dtype=np.int64))

    def enc(t: np.ndarray, k: np.ndarray) -> bytes:
        (b,) = native.encode_packed(t.astype(np.int64), k.astype(np.int64), *one)
        assert _sequences(b, n)[:2] == (t.tolist(), k.tolist())
        return bytes(b)

    t0 = 1_764_000_000_000
    jittered = t0 + np.arange(n) * 15_000 + rng.integers(-2, 3, n)
    counter = np.cumsum(rng.integers(650, 1950, n)) + 10**9
    b = enc(jittered, counter)
    _, _, ts_mode, val_mode = _sequences(b, n)
    assert (ts_mode, val_mode) == (2, 0)  # GRID timestamps (only the jitter stored), DELTA values
    # The jitter's 5 values as base-5 digits (27 per 63 bits), 11 bits per increment of a range of
    # 1,300 (base 1,300: 6 per 63 bits, 10.5 each), plus headers.
    assert _width_byte(b, 0) == chunks.RADIX
    assert len(b) <= (7 * 63 * 8 // 8 + 20 * 63) // 8 + 2 * 16
    # Exact scrapes and a constant: headers only.
    assert len(enc(t0 + np.arange(n) * 15_000, np.full(n, 7))) <= 16
    # A steady rate with small wobble: DOD values.
    steady = np.cumsum(1_000_000 + np.cumsum(rng.integers(-3, 4, n)))
    assert _sequences(enc(jittered, steady), n)[3] == 1
    # A gap breaks the grid: DELTA or DOD timestamps, still exact.
    gap = np.concatenate([t0 + np.arange(60) * 15_000, t0 + 10**7 + np.arange(60) * 15_000])
    assert _sequences(enc(gap, counter), n)[2] in (0, 1)


def _width_byte(blob: bytes, pos: int) -> int:
    """The width byte of the sequence at ``blob[pos:]`` (GRID or DOD: after x0, the extra varint
    and the minimum)."""
    assert blob[pos] in (1, 2)
    _, pos = chunks._varint(blob, pos + 1)
    _, pos = chunks._varint(blob, pos)
    _, pos = chunks._varint(blob, pos)
    return blob[pos]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(2**62), 2**62),
    st.integers(1, 3_000),
    st.lists(st.integers(0, 40), min_size=1, max_size=90),
    st.integers(0, 2**20),
)
def test_small_ranges_round_trip_through_both_decoders(
    t0: int, step: int, jitter: list[int], span: int
) -> None:
    # Small element ranges that are not powers of two: the RADIX packing, any group remainder.
    native = _native()
    n = len(jitter)
    ts = np.asarray([t0 + i * step + j for i, j in enumerate(jitter)], dtype=np.int64)
    ts = np.maximum.accumulate(ts) + np.arange(n)  # strictly ascending
    k = np.asarray([(span * j) % (span + 7) for j in jitter], dtype=np.int64)
    (blob,) = native.encode_packed(ts, k, np.zeros(1, dtype=np.int64), np.asarray([n], dtype=np.int64))
    got_t, got_k, _, _ = _sequences(bytes(blob), n)
    assert got_t == ts.tolist() and got_k == k.tolist()
    native_out, reference_out = _decode_both(bytes(blob), n, 0)
    assert native_out == reference_out != "ValueError"


def _decode_both(blob: bytes, n: int, scale: int, codec: int = chunks.PACKED) -> tuple[object, object]:
    args = (np.asarray([n]), np.asarray([codec]), np.asarray([scale]), [blob], -(2**63), 2**63 - 1)
    out: list[object] = []
    for fn in (chunks.decode_range, chunks.decode_range_py):
        try:
            ts, vals, kept = fn(*args)
            out.append((ts.tolist(), vals.view(np.uint64).tolist(), kept.tolist()))
        except ValueError:
            out.append("ValueError")
    return out[0], out[1]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=50),
    st.integers(0, 9),
    st.booleans(),
    st.data(),
)
def test_malformed_packed_chunks_are_refused_not_misread(
    ks: list[int], scale: int, floats: bool, data: st.DataObject
) -> None:
    _native()
    n = len(ks)
    ts = np.cumsum(np.asarray([15_000 + (k % 5) for k in ks], dtype=np.int64))
    vals = np.asarray(ks, dtype=np.float64) / 10.0**scale
    if floats:  # binary fractions and a stale marker: XOR values
        vals = vals / 3.0 + 1e-300
        vals[n // 2] = STALE_NAN
    enc = chunks.encode(np.ones(n, dtype=np.uint32), ts, vals)
    codec = chunks.PACKED_XOR if floats else chunks.PACKED
    assert enc.codec.tolist() == [codec]
    good = bytearray(enc.data[0])
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "random", "length"]))
    claimed = n
    if kind == "flip":
        i = data.draw(st.integers(0, len(good) - 1))
        good[i] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        del good[data.draw(st.integers(0, len(good) - 1)) :]
    elif kind == "extend":
        good += data.draw(st.binary(min_size=1, max_size=8))
    elif kind == "random":
        good = bytearray(data.draw(st.binary(max_size=40)))
    else:
        claimed = data.draw(st.integers(0, 3 * n))
    native, reference = _decode_both(bytes(good), claimed, int(enc.scale[0]), codec)
    assert native == reference
    if kind == "extend":
        assert native == "ValueError"  # trailing bytes


def test_unknown_codec_is_refused() -> None:
    args = (np.asarray([1]), np.asarray([9]), np.asarray([0]), [b"\x00\x00\x00\x00"], 0, 1)
    with pytest.raises(ValueError):
        chunks.decode_range(*args)
    with pytest.raises(ValueError):
        chunks.decode_range_py(*args)


def test_decoded_chunk_cache_keys_on_the_length() -> None:
    # Exact scrapes of a steady counter: only headers, the same bytes for 6 and for 11 samples.
    ts = np.arange(11, dtype=np.int64) * 10_000
    vals = ts / 1000.0
    short = chunks.encode(np.ones(6, dtype=np.uint32), ts[:6], vals[:6])
    long = chunks.encode(np.ones(11, dtype=np.uint32), ts, vals)
    assert short.data == long.data
    cache = chunks.DecodedChunkCache(1_000)
    for enc in (short, long, short):
        got_ts, _got_v, kept = cache.decode_range(enc.n, enc.codec, enc.scale, enc.data, 0, 10**6)
        assert got_ts.tolist() == ts[: int(enc.n[0])].tolist() and kept.tolist() == [int(enc.n[0])]


def test_a_clean_close_compacts_the_head(tmp_path: Path) -> None:
    data = fx.samples(50)
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**15, duckdb_threads=1)
    try:
        items = [
            (labels, list(zip(ts.tolist(), vals.tolist(), strict=True)))
            for labels, (ts, vals) in zip(fx.series(), data, strict=True)
        ]
        store.append("t", SampleBatch.from_series(items)).result()
    finally:
        store.close()
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM samples").fetchall() == [(0,)]
        assert con.execute(f"SELECT count(*), sum(n) FROM {all_chunks(con)}").fetchall() == [(5, 250)]
        block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]
        assert block_size == 64 * 1024  # kernel.database.BLOCK_SIZE, for new files
    finally:
        con.close()
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**15, duckdb_threads=1)
    try:
        assert _all_samples(store) == _expected(50)
    finally:
        store.close()


def test_first_format_chunks_merge_into_packed(tmp_path: Path) -> None:
    # The fixture's 200-sample chunks and the 37 samples compacted after them are below a target of
    # 230 and reach it together: the merge decodes the first format and writes PACKED (or XOR).
    with gzip.open(FIXTURE, "rb") as src, open(tmp_path / "metrics.duckdb", "wb") as dst:
        shutil.copyfileobj(src, dst)
    total = fx.COMPACTED + fx.IN_HEAD + 30
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**15, duckdb_threads=1, chunk_target_samples=230)
    try:
        more = fx.samples(total)
        items = [
            (
                labels,
                list(
                    zip(
                        ts[fx.COMPACTED + fx.IN_HEAD :].tolist(),
                        vals[fx.COMPACTED + fx.IN_HEAD :].tolist(),
                        strict=True,
                    )
                ),
            )
            for labels, (ts, vals) in zip(fx.series(), more, strict=True)
        ]
        store.append("t", SampleBatch.from_series(items)).result()
        store.compact()
        assert _all_samples(store) == _expected(total)
    finally:
        store.close()
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"), read_only=True)
    rows = con.execute(f"SELECT series_id, n, codec FROM {all_chunks(con)} ORDER BY series_id").fetchall()
    con.close()
    assert [n for _, n, _ in rows] == [total] * 5  # one merged chunk per series
    assert sorted({c for _, _, c in rows}) == [chunks.PACKED, chunks.PACKED_XOR]
