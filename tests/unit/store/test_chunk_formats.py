"""The chunk formats side by side: the bit-packed ones (PACKED, and ANCHORED, written now) and the
first format. Data dirs written by the first format and by PACKED still read exactly, the sequence
coder round-trips any int64 sequence in both layouts, the mode chosen fits the data, and malformed
chunks (or rows whose bounds do not match them) are refused the same way by the native and
reference decoders."""

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
# PACKED and PACKED_XOR chunks (and head rows), schema 3, written by commit 8aaa6fc from the same samples.
FIXTURE_PACKED = Path(__file__).resolve().parent / "fixtures" / "metrics-codec-v2.duckdb.gz"
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


def _copy_fixture(fixture: Path, tmp_path: Path) -> list[int]:
    """Unpacks ``fixture`` into ``tmp_path``; the codecs of its chunks."""
    with gzip.open(fixture, "rb") as src, open(tmp_path / "metrics.duckdb", "wb") as dst:
        shutil.copyfileobj(src, dst)
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"), read_only=True)
    try:
        return sorted({c for (c,) in con.execute("SELECT codec FROM chunks").fetchall()})
    finally:
        con.close()


def _read_extend_reread(tmp_path: Path) -> set[int]:
    """Opens the fixture's data dir: every sample reads exactly; 30 more per series are compacted
    next to the old chunks (in the format written now) and read exactly, also after a reopen.
    Returns the codecs of the chunks then."""
    total = fx.COMPACTED + fx.IN_HEAD
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**15, duckdb_threads=1)
    try:
        assert _all_samples(store) == _expected(total)
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
    con.close()
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**15, duckdb_threads=1)
    try:
        assert _all_samples(store) == _expected(total + 30)
    finally:
        store.close()
    return codecs


def test_data_dir_of_the_first_format_reads_exactly_and_takes_anchored_chunks(tmp_path: Path) -> None:
    assert _copy_fixture(FIXTURE, tmp_path) == [chunks.XOR, chunks.DECIMAL]
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"), read_only=True)
    assert con.execute("SELECT value FROM clearsight_meta WHERE key = 'schema_version'").fetchall() == [
        ("2",)
    ]
    con.close()
    codecs = _read_extend_reread(tmp_path)
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"), read_only=True)
    version = con.execute("SELECT value FROM clearsight_meta WHERE key = 'schema_version'").fetchall()
    series_columns = con.table("series").columns
    con.close()
    assert chunks.ANCHORED in codecs and chunks.DECIMAL in codecs
    assert version == [(str(SCHEMA_VERSION),)] and SCHEMA_VERSION == 6  # upgraded from 2 on open
    assert series_columns == ["series_id", "tenant", "metric", "labels"]  # fingerprint dropped


def test_data_dir_of_the_packed_format_reads_exactly_and_takes_anchored_chunks(tmp_path: Path) -> None:
    assert _copy_fixture(FIXTURE_PACKED, tmp_path) == [chunks.PACKED, chunks.PACKED_XOR]
    codecs = _read_extend_reread(tmp_path)
    assert {chunks.PACKED, chunks.ANCHORED} <= codecs  # old chunks kept, new ones anchored


def _packed(enc: chunks.Encoded, ts: np.ndarray, vals: np.ndarray) -> list[bytes]:
    """The chunks of ``enc`` written by the PACKED encoders (the layout before ANCHORED)."""
    native = _native()
    starts = np.concatenate(([0], np.cumsum(enc.n.astype(np.int64))[:-1])).astype(np.int64)
    out = []
    for i, (c, e) in enumerate(zip(enc.codec.tolist(), enc.scale.tolist(), strict=True)):
        one = (starts[i : i + 1], enc.n[i : i + 1].astype(np.int64))
        if c == chunks.ANCHORED_XOR:
            (b,) = native.encode_packed_xor(ts, vals.view(np.int64), *one)
        else:
            (b,) = native.encode_packed(ts, np.rint(vals * 10.0**e).astype(np.int64), *one)
        out.append(bytes(b))
    return out


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
    assert new.codec.tolist() == [chunks.ANCHORED_XOR] + [chunks.ANCHORED] * 4
    packed = _packed(new, ts, vals)
    pick = [0, 1, 2, 3, 4]
    fmt = [1, 0, 2, 1, 0]  # 0: the first format, 1: ANCHORED, 2: PACKED
    encs = [old, new, new]
    mixed = (
        np.asarray([encs[f].n[i] for i, f in zip(pick, fmt, strict=True)]),
        np.asarray([
            encs[f].codec[i] if f < 2 else encs[f].codec[i] - (chunks.ANCHORED - chunks.PACKED)
            for i, f in zip(pick, fmt, strict=True)
        ]),
        np.asarray([encs[f].scale[i] for i, f in zip(pick, fmt, strict=True)]),
        [packed[i] if f == 2 else encs[f].data[i] for i, f in zip(pick, fmt, strict=True)],
    )
    assert sorted(set(mixed[1].tolist())) == [chunks.DECIMAL, chunks.PACKED, chunks.ANCHORED, chunks.ANCHORED_XOR]
    bounds = {"min_ts": new.min_ts, "max_ts": new.max_ts}
    for decode in (chunks.decode, chunks.decode_py):
        got_ts, got_v = decode(*mixed, **bounds)
        assert got_ts.tolist() == ts.tolist()
        assert got_v.view(np.uint64).tolist() == vals.view(np.uint64).tolist()
    lo, hi = int(ts[20]), int(ts[150])
    a = chunks.decode_range(*mixed, lo, hi, **bounds)
    b = chunks.decode_range_py(*mixed, lo, hi, **bounds)
    assert a[0].tolist() == b[0].tolist() and a[2].tolist() == b[2].tolist()
    assert a[1].view(np.uint64).tolist() == b[1].view(np.uint64).tolist()


def _sequences(blob: bytes, n: int) -> tuple[list[int], list[int], int, int]:
    t, pos = chunks._read_seq(blob, 0, n)
    k, end = chunks._read_seq(blob, pos, n)
    assert end == len(blob)
    return t.tolist(), k.tolist(), blob[0], blob[pos]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(I64, I64), min_size=1, max_size=70))
def test_sequence_coder_round_trips_any_int64_in_both_layouts(pairs: list[tuple[int, int]]) -> None:
    native = _native()
    ts = np.asarray([p[0] for p in pairs], dtype=np.int64)
    k = np.asarray([p[1] for p in pairs], dtype=np.int64)
    (blob,) = native.encode_packed(
        ts, k, np.zeros(1, dtype=np.int64), np.asarray([len(pairs)], dtype=np.int64)
    )
    got_t, got_k, _, _ = _sequences(blob, len(pairs))
    assert got_t == ts.tolist() and got_k == k.tolist()
    # ANCHORED: the timestamps' first and last element come from the row (any int64 sequence, any
    # order: GRID's step is derived from them in wrapping arithmetic).
    one = (np.zeros(1, dtype=np.int64), np.asarray([len(pairs)], dtype=np.int64))
    (anchored,) = native.encode_anchored(ts, k, *one)
    assert len(anchored) <= len(blob) - 1  # at least the first timestamp's varint is gone
    anchor = (int(ts[0]), int(ts[-1]))
    got_ta, pos = chunks._read_seq(bytes(anchored), 0, len(pairs), anchor=anchor)
    got_ka, end = chunks._read_seq(bytes(anchored), pos, len(pairs), compact=True)
    assert end == len(anchored)
    assert got_ta.tolist() == ts.tolist() and got_ka.tolist() == k.tolist()
    native_out, reference_out = _decode_both(bytes(anchored), len(pairs), 0, chunks.ANCHORED, anchor)
    assert native_out == reference_out
    assert native_out != "ValueError" and native_out[0] == ts.tolist()  # type: ignore[index]


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


def _decode_both(
    blob: bytes, n: int, scale: int, codec: int = chunks.PACKED, bounds: tuple[int, int] = (0, 0)
) -> tuple[object, object]:
    args = (np.asarray([n]), np.asarray([codec]), np.asarray([scale]), [blob], -(2**63), 2**63 - 1)
    rows = {"min_ts": np.asarray([bounds[0]]), "max_ts": np.asarray([bounds[1]])}
    out: list[object] = []
    for fn in (chunks.decode_range, chunks.decode_range_py):
        try:
            ts, vals, kept = fn(*args, **rows)
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
    codec = chunks.ANCHORED_XOR if floats else chunks.ANCHORED
    assert enc.codec.tolist() == [codec]
    anchored = data.draw(st.booleans())
    good = bytearray(enc.data[0] if anchored else _packed(enc, ts, vals)[0])
    if not anchored:
        codec -= chunks.ANCHORED - chunks.PACKED
    bounds = (int(enc.min_ts[0]), int(enc.max_ts[0]))
    assert _decode_both(bytes(good), n, int(enc.scale[0]), codec, bounds)[0] != "ValueError"
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "random", "length", "bounds"]))
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
    elif kind == "length":
        claimed = data.draw(st.integers(0, 3 * n))
    else:  # a row whose min_ts or max_ts does not belong to the chunk
        delta = data.draw(st.integers(-(10**6), 10**6).filter(lambda d: d != 0))
        bounds = (bounds[0] + delta, bounds[1]) if data.draw(st.booleans()) else (bounds[0], bounds[1] + delta)
    native, reference = _decode_both(bytes(good), claimed, int(enc.scale[0]), codec, bounds)
    assert native == reference
    if kind == "extend":
        assert native == "ValueError"  # trailing bytes


def test_unknown_codec_is_refused() -> None:
    args = (np.asarray([1]), np.asarray([9]), np.asarray([0]), [b"\x00\x00\x00\x00"], 0, 1)
    rows = {"min_ts": np.asarray([0]), "max_ts": np.asarray([0])}
    with pytest.raises(ValueError):
        chunks.decode_range(*args, **rows)
    with pytest.raises(ValueError):
        chunks.decode_range_py(*args, **rows)


def test_decoded_chunk_cache_keys_on_the_length() -> None:
    # Exact scrapes of a steady counter: only headers, the same bytes for 6 and for 11 samples.
    ts = np.arange(11, dtype=np.int64) * 10_000
    vals = ts / 1000.0
    short = chunks.encode(np.ones(6, dtype=np.uint32), ts[:6], vals[:6])
    long = chunks.encode(np.ones(11, dtype=np.uint32), ts, vals)
    assert short.data == long.data
    cache = chunks.DecodedChunkCache(1_000)
    for enc in (short, long, short):
        got_ts, _got_v, kept = cache.decode_range(
            enc.n, enc.codec, enc.scale, enc.data, 0, 10**6, min_ts=enc.min_ts, max_ts=enc.max_ts
        )
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
        assert con.execute(f"SELECT count(*), sum(n) FROM {all_chunks(con)}").fetchall() == [(5, 250)]
        block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]
        assert block_size == 64 * 1024  # kernel.database.BLOCK_SIZE, for new files
    finally:
        con.close()
    assert list((tmp_path / "metrics.headlog").iterdir()) == []  # no segment left, not even an empty one
    store = EmbeddedMetricsStore(tmp_path, retention_ms=10**15, duckdb_threads=1)
    try:
        assert _all_samples(store) == _expected(50)
    finally:
        store.close()


@pytest.mark.parametrize("fixture", [FIXTURE, FIXTURE_PACKED], ids=["first-format", "packed"])
def test_older_chunks_merge_into_anchored(tmp_path: Path, fixture: Path) -> None:
    # The fixture's 200-sample chunks and the 37 samples compacted after them are below a target of
    # 230 and reach it together: the merge decodes the older format and writes ANCHORED (or _XOR).
    with gzip.open(fixture, "rb") as src, open(tmp_path / "metrics.duckdb", "wb") as dst:
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
    assert sorted({c for _, _, c in rows}) == [chunks.ANCHORED, chunks.ANCHORED_XOR]


def _series_values(kind: str, n: int, draw: st.DataObject) -> np.ndarray:
    if kind == "constant":
        return np.full(n, draw.draw(st.sampled_from([0.0, 1.0, 4096.0, 0.5, 1e300])))
    if kind == "counter":  # increments of a few decimals, resets to a small value
        inc = np.asarray(draw.draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n)), dtype=np.float64)
        v = np.cumsum(inc) / 100
        for r in draw.draw(st.lists(st.integers(1, n - 1), max_size=3)) if n >= 2 else []:
            v[r:] -= v[r] - draw.draw(st.integers(0, 10))
        return np.round(v, 2)
    if kind == "few":  # a gauge with a few distinct values
        return np.asarray(draw.draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.5]), min_size=n, max_size=n)))
    specials = [float("nan"), STALE_NAN, float("inf"), float("-inf"), -0.0, 0.1 + 0.2, 5e-324]
    v = np.asarray(draw.draw(st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n)), dtype=np.float64)
    for i in draw.draw(st.lists(st.integers(0, n - 1), max_size=4)):
        v[i] = draw.draw(st.sampled_from(specials))
    return v


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["constant", "counter", "few", "special"]), min_size=1, max_size=4), st.data())
def test_anchored_chunks_round_trip_realistic_series(kinds: list[str], draw: st.DataObject) -> None:
    # Regular scrapes with jitter and gaps, or irregular/huge steps; counters with resets, constants,
    # few-valued gauges, NaN, stale markers, infinities, -0.0: bit-exact, native equal to reference.
    sids, ts_all, vals_all = [], [], []
    for sid, kind in enumerate(kinds, start=1):
        n = draw.draw(st.integers(1, 60))
        if draw.draw(st.booleans()):
            step = draw.draw(st.sampled_from([1, 1000, 15_000, 60_000]))
            t = 1_764_000_000_000 + np.arange(n, dtype=np.int64) * step
            t += np.asarray(draw.draw(st.lists(st.integers(-2, 2), min_size=n, max_size=n)), dtype=np.int64) * (step > 4)
            for g in draw.draw(st.lists(st.integers(1, n - 1), max_size=2)) if n >= 2 else []:
                t[g:] += draw.draw(st.integers(1, 10**7))  # a gap
        else:
            t = np.cumsum(np.asarray(draw.draw(st.lists(st.integers(1, 2**40), min_size=n, max_size=n)), dtype=np.int64))
            t -= 2**42
        sids.append(np.full(n, sid, dtype=np.uint32))
        ts_all.append(t)
        vals_all.append(_series_values(kind, n, draw))
    sid, ts, vals = np.concatenate(sids), np.concatenate(ts_all), np.concatenate(vals_all)
    enc = chunks.encode(sid, ts, vals)
    assert set(enc.codec.tolist()) <= {chunks.ANCHORED, chunks.ANCHORED_XOR}
    bounds = {"min_ts": enc.min_ts, "max_ts": enc.max_ts}
    for decode in (chunks.decode, chunks.decode_py):
        got_ts, got_v = decode(enc.n, enc.codec, enc.scale, enc.data, **bounds)
        assert got_ts.tolist() == ts.tolist()
        assert got_v.view(np.uint64).tolist() == vals.view(np.uint64).tolist()
    lo = int(ts[len(ts) // 3])
    a = chunks.decode_range(enc.n, enc.codec, enc.scale, enc.data, lo, 2**62, **bounds)
    b = chunks.decode_range_py(enc.n, enc.codec, enc.scale, enc.data, lo, 2**62, **bounds)
    assert a[0].tolist() == b[0].tolist() and a[2].tolist() == b[2].tolist()
    assert a[1].view(np.uint64).tolist() == b[1].view(np.uint64).tolist()
