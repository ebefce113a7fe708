"""Property tests: random WriteRequests decode to what was encoded, the compiled and the pure walk
agree on every input (including mutated bytes), and garbage only ever raises the documented errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cramjam
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.ingest import remote_write as rw
from clearsight.ingest.prompb_encode import (
    Exemplar,
    Histogram,
    Metadata,
    encode_exemplar,
    encode_histogram,
    encode_labels,
    encode_metadata,
    encode_sample_bits,
    len_field,
    snappy,
)
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.errors import InvalidInput, LimitExceeded, PayloadTooLarge
from clearsight.pipeline.limits import WriteLimits

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.one_of(st.text(max_size=12), st.binary(max_size=12))
labels = st.lists(st.tuples(text, text), max_size=6)
bits = st.one_of(
    st.integers(0, (1 << 64) - 1),
    st.sampled_from([0x7FF0000000000002, 0x7FF8000000000000, 0x7FF0000000000000, 0xFFF0000000000000, 0]),
)
timestamps = st.one_of(st.integers(-(1 << 63), (1 << 63) - 1), st.integers(0, 2_000_000_000_000))


@dataclass
class Series:
    labels: list[tuple[str | bytes, str | bytes]]
    samples: list[tuple[int, int]]  # (timestamp, value bits)
    exemplars: int
    histograms: int


def _b(t: str | bytes) -> bytes:
    return t if isinstance(t, bytes) else t.encode()


series_st = st.builds(
    Series, labels, st.lists(st.tuples(timestamps, bits), max_size=5), st.integers(0, 2), st.integers(0, 2)
)
metadata_st = st.builds(Metadata, st.integers(-3, 9), text, text, text)


def encode(series: list[Series], metadata: list[Metadata]) -> bytes:
    out = b""
    for s in series:
        body = encode_labels(s.labels)
        body += b"".join(len_field(2, encode_sample_bits(t, v)) for t, v in s.samples)
        body += b"".join(
            len_field(3, encode_exemplar(Exemplar([("a", "b")], 1.0, 2))) for _ in range(s.exemplars)
        )
        body += b"".join(
            len_field(4, encode_histogram(Histogram(1, 2.0, -1, 3))) for _ in range(s.histograms)
        )
        out += len_field(1, body)
    return out + b"".join(len_field(3, encode_metadata(m)) for m in metadata)


def outcome(pb: bytes, native: bool) -> tuple[str, Any]:
    """A comparable summary of decoding ``pb``: the error (class, message) or the batch content."""
    try:
        b = rw.batch_from_protobuf(pb, native=native)
    except InvalidInput as e:
        return ("error", (type(e).__name__, e.message, e.reason))
    return ("ok", summary(b))


def summary(b: SampleBatch) -> object:
    decoded: list[tuple[str, object]] = []
    for k in b.keys:
        try:
            decoded.append(("ok", b.decode_labels(k)))
        except InvalidInput as e:
            decoded.append(("error", e.message))
    return (
        b.keys,
        decoded,
        b.series_idx.tolist(),
        b.timestamps.tolist(),
        b.values.view(np.uint64).tolist(),
        [(m.metric, m.type, m.help, m.unit) for m in b.metadata],
        b.exemplars_dropped,
        b.num_histograms,
    )


@FUZZ
@given(st.lists(series_st, max_size=8), st.lists(metadata_st, max_size=3))
def test_random_requests_roundtrip_and_both_walks_agree(
    series: list[Series], metadata: list[Metadata]
) -> None:
    pb = encode(series, metadata)
    native, pure = outcome(pb, True), outcome(pb, False)
    assert native == pure
    kept = [s for s in series if s.samples or s.histograms]
    utf8_meta = all(_is_utf8(_b(x)) for m in metadata for x in (m.metric_family_name, m.help, m.unit))
    if not utf8_meta:
        assert native[0] == "error" and "MetricMetadata" in str(native[1])
        return
    assert native[0] == "ok"
    b = rw.batch_from_protobuf(pb, native=True)
    assert b.keys == [encode_labels(s.labels) for s in kept]
    assert b.series_idx.tolist() == [i for i, s in enumerate(kept) for _ in s.samples]
    assert b.timestamps.tolist() == [t for s in kept for t, _ in s.samples]
    assert b.values.view(np.uint64).tolist() == [v for s in kept for _, v in s.samples]
    assert b.exemplars_dropped + len(b.exemplars) == sum(s.exemplars for s in series)
    assert b.num_histograms == sum(s.histograms for s in series)  # Histogram(1, 2.0, -1, 3): valid
    assert [m.type for m in b.metadata] == [rw.METRIC_TYPES.get(m.type, "unknown") for m in metadata]
    for key, s in zip(b.keys, kept, strict=True):
        if all(_is_utf8(_b(n)) and _is_utf8(_b(v)) for n, v in s.labels):
            assert b.decode_labels(key) == tuple((_b(n).decode(), _b(v).decode()) for n, v in s.labels)
        else:
            try:
                b.decode_labels(key)
            except InvalidInput as e:
                assert "is not valid UTF-8" in e.message and e.reason == "invalid_utf8"
            else:
                raise AssertionError("invalid UTF-8 was accepted")


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
)


def mutate(pb: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(pb)
    for op, pos, val in ops:
        if not buf and op != "insert":
            continue
        i = pos % (len(buf) + (1 if op == "insert" else 0))
        if op == "set":
            buf[i] = val
        elif op == "insert":
            buf.insert(i, val)
        elif op == "delete":
            del buf[i]
        else:
            del buf[i:]
    return bytes(buf)


@FUZZ
@given(
    st.lists(series_st, min_size=1, max_size=4),
    st.lists(metadata_st, max_size=2),
    st.lists(mutation, min_size=1, max_size=4),
)
def test_mutated_requests_give_the_same_outcome_in_both_walks(
    series: list[Series], metadata: list[Metadata], ops: list[tuple[str, int, int]]
) -> None:
    pb = mutate(encode(series, metadata), ops)
    assert outcome(pb, True) == outcome(pb, False)


@FUZZ
@given(st.binary(max_size=300))
def test_garbage_protobuf_gives_the_same_outcome_in_both_walks(pb: bytes) -> None:
    native = outcome(pb, True)
    assert native == outcome(pb, False)
    if native[0] == "error":
        assert str(native[1][1]).startswith(
            ("invalid WriteRequest protobuf: ", "invalid UTF-8 in MetricMetadata")
        )


LIMITS = WriteLimits(max_decompressed_bytes=1 << 20)


def full_decode(body: bytes) -> SampleBatch:
    return rw.decode_write_request(
        body, content_encoding="snappy", content_type="application/x-protobuf", limits=LIMITS
    )


@FUZZ
@given(st.binary(max_size=400))
def test_garbage_bodies_raise_only_ingest_errors(body: bytes) -> None:
    try:
        b = full_decode(body)
    except (InvalidInput, PayloadTooLarge, LimitExceeded) as e:
        assert e.status in (400, 413)
        return
    summary(b)  # decode_labels raises only InvalidInput


@FUZZ
@given(st.lists(series_st, min_size=1, max_size=4), st.lists(mutation, min_size=1, max_size=3))
def test_corrupt_snappy_raises_only_ingest_errors(
    series: list[Series], ops: list[tuple[str, int, int]]
) -> None:
    body = mutate(snappy(encode(series, [])), ops)
    try:
        b = full_decode(body)
    except InvalidInput as e:
        assert e.reason in ("invalid_snappy", "invalid_protobuf", "invalid_histogram")
        return
    except PayloadTooLarge as e:
        assert "max_decompressed_bytes" in e.message
        return
    summary(b)


@FUZZ
@given(st.binary(max_size=200))
def test_valid_snappy_of_garbage_is_a_protobuf_error_or_a_batch(pb: bytes) -> None:
    body = bytes(cramjam.snappy.compress_raw(pb))
    try:
        full_decode(body)
    except InvalidInput as e:
        assert e.reason in ("invalid_protobuf", "invalid_utf8", "invalid_histogram")


def test_truncation_at_every_byte() -> None:
    series = [
        Series([("__name__", "m"), ("a", "ü")], [(1, 0x3FF0000000000000), (-1, 0x7FF0000000000002)], 1, 1),
        Series([("__name__", "n")], [(5, 0)], 0, 0),
    ]
    pb = encode(series, [Metadata(1, "m", "help", "")])
    full = outcome(pb, True)
    assert full[0] == "ok"
    for cut in range(len(pb)):
        got = outcome(pb[:cut], True)
        assert got == outcome(pb[:cut], False)
        if got[0] == "error":
            assert "at byte" in str(got[1][1])


@FUZZ
@given(st.lists(series_st, max_size=8), st.integers(0, 10), st.integers(0, 20))
def test_limits_stop_both_walks_alike(series: list[Series], max_series: int, max_samples: int) -> None:
    pb = encode(series, [])
    limits = WriteLimits(max_series_per_request=max_series, max_samples_per_request=max_samples)
    got: list[tuple[object, ...]] = []
    for native in (True, False):
        try:
            b = rw.batch_from_protobuf(pb, native=native, limits=limits)
            got.append(("ok", b.keys, b.values.view(np.uint64).tolist()))
        except LimitExceeded as e:
            got.append(("limit", e.limit, e.message))
    assert got[0] == got[1]
    kept = [s for s in series if s.samples or s.histograms]
    samples = sum(len(s.samples) + s.histograms for s in series)  # histograms count as samples
    assert (got[0][0] == "ok") == (len(kept) <= max_series and samples <= max_samples)
