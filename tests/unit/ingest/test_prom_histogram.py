"""The native histogram decoder (ingest/prom_histogram.py) against an independent protobuf
implementation (upb, with the Histogram schema declared as descriptors here): random valid
histograms, integer and float, with positive and negative spans, zero buckets and custom bounds,
encoded by upb decode to the same FloatHistogram; invalid ones are refused with a precise error;
arbitrary bytes raise only HistogramDecodeError. Through remote-write 1.0, a bad histogram makes
the whole request a 400 (nothing decoded)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.ingest import prom_histogram as ph
from clearsight.ingest import remote_write as rw
from clearsight.ingest.prompb_encode import encode_labels, len_field
from clearsight.model.histogram import CounterResetHint, FloatHistogram
from clearsight.model.samples import STALE_NAN, stale_mask
from clearsight.pipeline.errors import InvalidInput

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
F = descriptor_pb2.FieldDescriptorProto


def _schema() -> Any:
    fd = descriptor_pb2.FileDescriptorProto(name="clearsight_test_hist.proto", package="csh", syntax="proto3")
    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    span = fd.message_type.add(name="BucketSpan")
    span.field.add(name="offset", number=1, type=F.TYPE_SINT32, label=opt)
    span.field.add(name="length", number=2, type=F.TYPE_UINT32, label=opt)
    h = fd.message_type.add(name="Histogram")
    for name, no, typ, label in [
        ("count_int", 1, F.TYPE_UINT64, opt),
        ("count_float", 2, F.TYPE_DOUBLE, opt),
        ("sum", 3, F.TYPE_DOUBLE, opt),
        ("schema", 4, F.TYPE_SINT32, opt),
        ("zero_threshold", 5, F.TYPE_DOUBLE, opt),
        ("zero_count_int", 6, F.TYPE_UINT64, opt),
        ("zero_count_float", 7, F.TYPE_DOUBLE, opt),
        ("negative_spans", 8, F.TYPE_MESSAGE, rep),
        ("negative_deltas", 9, F.TYPE_SINT64, rep),
        ("negative_counts", 10, F.TYPE_DOUBLE, rep),
        ("positive_spans", 11, F.TYPE_MESSAGE, rep),
        ("positive_deltas", 12, F.TYPE_SINT64, rep),
        ("positive_counts", 13, F.TYPE_DOUBLE, rep),
        ("reset_hint", 14, F.TYPE_INT32, opt),
        ("timestamp", 15, F.TYPE_INT64, opt),
        ("custom_values", 16, F.TYPE_DOUBLE, rep),
    ]:
        f = h.field.add(name=name, number=no, type=typ, label=label)
        if typ == F.TYPE_MESSAGE:
            f.type_name = ".csh.BucketSpan"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("csh.Histogram"))


Histogram = _schema()


def _side(draw: Any, n_max: int, lo: int) -> dict[int, int]:
    idx = sorted(draw(st.sets(st.integers(lo, 40), max_size=n_max)))
    return {i: draw(st.integers(0, 1000)) for i in idx}


@st.composite
def histograms(draw: Any) -> tuple[FloatHistogram, bool]:
    """(histogram, integer?) valid for Prometheus."""
    custom = draw(st.booleans())
    integer = draw(st.booleans())
    if custom:
        n_bounds = draw(st.integers(0, 6))
        bounds = sorted(
            draw(st.sets(st.floats(-100, 100, allow_nan=False), min_size=n_bounds, max_size=n_bounds))
        )
        pos = {i: c for i, c in _side(draw, 5, 0).items() if i <= len(bounds)}
        neg: dict[int, int] = {}
        zc, zt, schema = 0, 0.0, -53
    else:
        schema = draw(st.integers(-4, 8))
        pos, neg = _side(draw, 8, -40), _side(draw, 8, -40)
        zc, zt = draw(st.integers(0, 100)), draw(st.sampled_from([0.0, 1e-128, 0.001]))
        bounds = []
    scale = 1.0 if integer else draw(st.sampled_from([0.5, 0.1, 1.25]))
    total = (sum(pos.values()) + sum(neg.values()) + zc) + draw(st.integers(0, 3) if integer else st.just(0))
    h = FloatHistogram.build(
        schema=schema,
        count=total * scale,
        sum=draw(st.floats(-1e6, 1e6)),
        zero_threshold=zt,
        zero_count=zc * scale,
        positive={i: c * scale for i, c in pos.items()},
        negative={i: c * scale for i, c in neg.items()},
        custom_values=bounds if custom else None,
        counter_reset_hint=CounterResetHint(draw(st.integers(0, 3))),
    )
    return h, integer


def upb_encode(h: FloatHistogram, ts: int, integer: bool) -> bytes:
    m = Histogram()
    m.sum, m.schema, m.zero_threshold, m.timestamp, m.reset_hint = (
        h.sum,
        h.schema,
        h.zero_threshold,
        ts,
        int(h.counter_reset_hint),
    )
    if integer:
        m.count_int, m.zero_count_int = int(h.count), int(h.zero_count)
    else:
        m.count_float, m.zero_count_float = h.count, h.zero_count
    for spans_f, deltas_f, counts_f, spans, vals in (
        ("negative_spans", "negative_deltas", "negative_counts", h.negative_spans(), h.negative),
        ("positive_spans", "positive_deltas", "positive_counts", h.positive_spans(), h.positive),
    ):
        for off, ln in spans:
            getattr(m, spans_f).add(offset=off, length=ln)
        if integer:
            ints = [int(v) for v in vals.tolist()]
            getattr(m, deltas_f).extend([b - a for a, b in zip([0, *ints], ints, strict=False)])
        else:
            getattr(m, counts_f).extend(vals.tolist())
    if h.custom_values is not None:
        m.custom_values.extend(h.custom_values.tolist())
    out: bytes = m.SerializeToString()
    return out


def same(a: FloatHistogram, b: FloatHistogram) -> bool:
    return (
        a.equals(b)
        and a.counter_reset_hint == b.counter_reset_hint
        and a.zero_threshold == b.zero_threshold
        and math.copysign(1, a.sum) == math.copysign(1, b.sum)
    )


@FUZZ
@given(histograms(), st.integers(-(2**62), 2**62))
def test_upb_encoded_histograms_decode_exactly(hi: tuple[FloatHistogram, bool], ts: int) -> None:
    h, integer = hi
    for pb in (upb_encode(h, ts, integer), ph.encode(h, ts, integer=integer)):
        pre = b"\x0a\x03abc"  # decode reads a slice of a bigger buffer
        got_ts, got = ph.decode(pre + pb, len(pre), len(pre) + len(pb))
        assert got_ts == ts
        assert got is not None and same(got, h), (got, h)


def test_stale_marker_is_none() -> None:
    pb = ph.encode(FloatHistogram(schema=0, sum=STALE_NAN), 5, integer=True)
    assert ph.decode(pb, 0, len(pb)) == (5, None)


def _m(**kw: Any) -> bytes:
    m = Histogram(**{k: v for k, v in kw.items() if k not in ("positive_spans", "negative_spans")})
    for side in ("positive_spans", "negative_spans"):
        for off, ln in kw.get(side, []):
            getattr(m, side).add(offset=off, length=ln)
    out: bytes = m.SerializeToString()
    return out


@pytest.mark.parametrize(
    ("msg", "error"),
    [
        (_m(schema=9, count_int=1), r"invalid schema 9 .*between -4 and 8, or -53"),
        (_m(schema=-5), r"invalid schema -5"),
        (
            _m(count_int=3, positive_spans=[(0, 2)], positive_deltas=[1]),
            r"positive side: spans need 2 buckets, have 1",
        ),
        (
            _m(count_int=3, negative_spans=[(0, 1)], negative_deltas=[1, 1]),
            r"negative side: spans need 1 buckets, have 2",
        ),
        (_m(count_int=3, positive_spans=[(0, 1), (-2, 1)], positive_deltas=[1, 1]), r"offset is negative"),
        (
            _m(count_int=9, positive_spans=[(0, 2)], positive_deltas=[2, -3]),
            r"positive bucket with a negative count",
        ),
        (
            _m(count_int=1, positive_spans=[(0, 2)], positive_deltas=[1, 1]),
            r"count 1 is less than the 3 observations",
        ),
        (
            _m(count_float=1.0, positive_spans=[(0, 1)], positive_deltas=[1]),
            r"integer and float counts mixed",
        ),
        (_m(count_float=1.0, positive_spans=[(0, 1)], positive_counts=[-1.0]), r"negative"),
        (
            _m(
                schema=-53,
                count_int=1,
                custom_values=[2.0, 1.0],
                positive_spans=[(0, 1)],
                positive_deltas=[1],
            ),
            r"custom bounds must be in strictly increasing order",
        ),
        (
            _m(schema=-53, count_int=1, custom_values=[1.0], negative_spans=[(0, 1)], negative_deltas=[1]),
            r"must not have negative buckets",
        ),
        (
            _m(schema=-53, count_int=1, custom_values=[1.0], positive_spans=[(5, 1)], positive_deltas=[1]),
            r"custom bounds are insufficient",
        ),
        (
            _m(schema=2, count_int=1, custom_values=[1.0]),
            r"custom bounds given with the exponential schema 2",
        ),
        (_m(count_int=1)[:-1], r"truncated"),
        (b"\x0b", r"wire type 3"),
        (b"\x1a\x01", r"wrong wire type 2 for Histogram.sum"),
    ],
)
def test_invalid_histograms_are_refused(msg: bytes, error: str) -> None:
    with pytest.raises(ph.HistogramDecodeError, match=error):
        ph.decode(msg, 0, len(msg))


@FUZZ
@given(st.binary(max_size=120))
def test_garbage_raises_only_decode_errors(data: bytes) -> None:
    try:
        ph.decode(data, 0, len(data))
    except ph.HistogramDecodeError:
        pass


@FUZZ
@given(histograms(), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=3))
def test_mutated_histograms_decode_or_raise_precisely(
    hi: tuple[FloatHistogram, bool], ops: list[tuple[int, int]]
) -> None:
    buf = bytearray(ph.encode(hi[0], 1, integer=hi[1]))
    for pos, val in ops:
        buf[pos % len(buf)] = val
    try:
        _, h = ph.decode(bytes(buf), 0, len(buf))
    except ph.HistogramDecodeError:
        return
    if h is not None:
        h.validate()  # whatever is accepted is a valid histogram


def _request(*hist_bodies: bytes, samples: bool = True) -> bytes:
    out = b""
    for i, hb in enumerate(hist_bodies):
        body = encode_labels([("__name__", f"h{i}")])
        if samples:
            body += len_field(2, b"\x09" + b"\0" * 8 + b"\x10\x01")
        body += len_field(4, hb)
        out += len_field(1, body)
    return out


@pytest.mark.parametrize("native", [True, False])
def test_remote_write_carries_histograms_and_refuses_a_bad_one_whole(native: bool) -> None:
    good = FloatHistogram.build(
        schema=3, count=10, sum=2.5, zero_count=1, positive={-3: 4, -1: 2}, negative={2: 3}
    )
    stale = FloatHistogram(schema=3, sum=STALE_NAN)
    pb = _request(ph.encode(good, 1000), ph.encode(stale, 2000))
    b = rw.batch_from_protobuf(pb, native=native)
    assert b.num_series == 2 and b.histograms is not None
    assert b.histograms.series_idx.tolist() == [0] and b.histograms.timestamps.tolist() == [1000]
    assert same(b.histograms.histograms[0], good)
    # the stale marker is a float stale sample of series 1
    assert b.series_idx.tolist() == [0, 1, 1] and b.timestamps.tolist() == [1, 1, 2000]
    assert stale_mask(b.values).tolist() == [False, False, True]
    bad = _m(count_int=3, positive_spans=[(0, 2)], positive_deltas=[1])
    with pytest.raises(
        InvalidInput,
        match=r'invalid native histogram in series \{__name__="h1"\}: positive side: '
        r"spans need 2 buckets, have 1 buckets",
    ) as ei:
        rw.batch_from_protobuf(_request(ph.encode(good, 1000), bad), native=native)
    assert ei.value.status == 400 and ei.value.reason == "invalid_histogram"


def test_integer_counts_beyond_float_precision_stay_integers() -> None:
    h = FloatHistogram.build(schema=0, count=2.0**60, positive={1: 2.0**60})
    _, got = ph.decode(ph.encode(h, 0), 0, len(ph.encode(h, 0)))
    assert got is not None and got.count == 2.0**60 and np.array_equal(got.positive, h.positive)


def _rw2(*hist_bodies: bytes) -> bytes:
    syms = len_field(4, b"") + len_field(4, b"__name__") + len_field(4, b"lat")
    ts = len_field(1, b"\x01\x02") + b"".join(len_field(3, hb) for hb in hist_bodies)
    return syms + len_field(5, ts)


def test_remote_write2_carries_histograms_and_refuses_a_bad_one_whole() -> None:
    from clearsight.ingest.remote_write2 import batch_from_v2

    good = FloatHistogram.build(
        schema=-53, count=7.5, sum=2.5, positive={0: 4.5, 2: 3.0}, custom_values=[0.5, 1.0]
    )
    b = batch_from_v2(_rw2(ph.encode(good, 10), ph.encode(FloatHistogram(sum=STALE_NAN), 20)))
    assert b.keys == [b"__name__\xfelat"] and b.histograms is not None
    assert b.histograms.timestamps.tolist() == [10] and same(b.histograms.histograms[0], good)
    assert b.timestamps.tolist() == [20] and stale_mask(b.values).tolist() == [True]
    bad = _m(schema=-53, count_float=1.0, custom_values=[1.0, 1.0])
    with pytest.raises(
        InvalidInput,
        match=r"invalid native histogram in the TimeSeries at byte \d+: custom buckets: "
        r"custom bounds must be in strictly increasing order",
    ) as ei:
        batch_from_v2(_rw2(ph.encode(good, 10), bad))
    assert ei.value.status == 400
