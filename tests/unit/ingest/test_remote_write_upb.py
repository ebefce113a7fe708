"""Cross-check against an independent protobuf implementation (upb, via the protobuf package).

The WriteRequest schema (a subset of prompb/types.proto and remote.proto: the fields we decode) is
declared here as descriptors, so upb encodes and parses real messages without protoc. Random
requests encoded by upb decode to the same content with our walk, and on arbitrary bytes, whenever
upb and our walk both accept the input, they agree on every label, sample and metadata field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.ingest import remote_write as rw
from clearsight.pipeline.errors import InvalidInput

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
F = descriptor_pb2.FieldDescriptorProto


def _schema() -> dict[str, Any]:
    fd = descriptor_pb2.FileDescriptorProto(
        name="clearsight_test_prompb.proto", package="cstest", syntax="proto3"
    )

    def msg(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        m = fd.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    msg("Label", ("name", 1, F.TYPE_STRING, opt, ""), ("value", 2, F.TYPE_STRING, opt, ""))
    msg("Sample", ("value", 1, F.TYPE_DOUBLE, opt, ""), ("timestamp", 2, F.TYPE_INT64, opt, ""))
    msg(
        "Exemplar",
        ("labels", 1, F.TYPE_MESSAGE, rep, ".cstest.Label"),
        ("value", 2, F.TYPE_DOUBLE, opt, ""),
        ("timestamp", 3, F.TYPE_INT64, opt, ""),
    )
    msg(
        "Histogram",
        ("count_int", 1, F.TYPE_UINT64, opt, ""),
        ("sum", 3, F.TYPE_DOUBLE, opt, ""),
        ("schema", 4, F.TYPE_SINT32, opt, ""),
        ("timestamp", 15, F.TYPE_INT64, opt, ""),
    )
    msg(
        "TimeSeries",
        ("labels", 1, F.TYPE_MESSAGE, rep, ".cstest.Label"),
        ("samples", 2, F.TYPE_MESSAGE, rep, ".cstest.Sample"),
        ("exemplars", 3, F.TYPE_MESSAGE, rep, ".cstest.Exemplar"),
        ("histograms", 4, F.TYPE_MESSAGE, rep, ".cstest.Histogram"),
    )
    msg(
        "MetricMetadata",
        ("type", 1, F.TYPE_INT32, opt, ""),
        ("metric_family_name", 2, F.TYPE_STRING, opt, ""),
        ("help", 4, F.TYPE_STRING, opt, ""),
        ("unit", 5, F.TYPE_STRING, opt, ""),
    )
    msg(
        "WriteRequest",
        ("timeseries", 1, F.TYPE_MESSAGE, rep, ".cstest.TimeSeries"),
        ("metadata", 3, F.TYPE_MESSAGE, rep, ".cstest.MetricMetadata"),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"cstest.{name}"))
        for name in ("WriteRequest", "TimeSeries", "Label", "Sample", "MetricMetadata")
    }


SCHEMA = _schema()
WriteRequest = SCHEMA["WriteRequest"]

text = st.text(max_size=10)
sample = st.tuples(st.floats(allow_nan=False), st.integers(-(1 << 63), (1 << 63) - 1))
series = st.tuples(
    st.lists(st.tuples(text, text), max_size=5),
    st.lists(sample, max_size=4),
    st.integers(0, 2),
    st.integers(0, 2),
)
metadata = st.tuples(st.integers(-2, 8), text, text, text)


def build(ts_list: list[Any], meta: list[Any]) -> Any:
    req = WriteRequest()
    for labels, samples, n_ex, n_h in ts_list:
        ts = req.timeseries.add()
        for n, v in labels:
            ts.labels.add(name=n, value=v)
        for v, t in samples:
            ts.samples.add(value=v, timestamp=t)
        for _ in range(n_ex):
            ts.exemplars.add(value=1.0, timestamp=2).labels.add(name="trace_id", value="x")
        for _ in range(n_h):
            ts.histograms.add(count_int=3, sum=1.5, schema=-1, timestamp=4)
    for mtype, name, help_, unit in meta:
        req.metadata.add(type=mtype, metric_family_name=name, help=help_, unit=unit)
    return req


def upb_view(req: Any) -> tuple[Any, ...]:
    """What our decoder should produce, computed from upb's parsed message."""
    kept = [ts for ts in req.timeseries if len(ts.samples) or len(ts.histograms)]
    return (
        [tuple((lb.name, lb.value) for lb in ts.labels) for ts in kept],
        [i for i, ts in enumerate(kept) for _ in ts.samples],
        [s.timestamp for ts in kept for s in ts.samples],
        np.array([s.value for ts in kept for s in ts.samples], dtype=np.float64).view(np.uint64).tolist(),
        [
            (m.metric_family_name, rw.METRIC_TYPES.get(m.type, "unknown"), m.help, m.unit)
            for m in req.metadata
        ],
        [(tuple((lb.name, lb.value) for lb in ts.labels), tuple((lb.name, lb.value) for lb in ex.labels),
          ex.value, ex.timestamp) for ts in req.timeseries for ex in ts.exemplars],
        0,
        sum(len(ts.histograms) for ts in req.timeseries),
    )


def our_view(pb: bytes, native: bool) -> tuple[Any, ...]:
    b = rw.batch_from_protobuf(pb, native=native)
    return (
        [b.decode_labels(k) for k in b.keys],
        b.series_idx.tolist(),
        b.timestamps.tolist(),
        b.values.view(np.uint64).tolist(),
        [(m.metric, m.type, m.help, m.unit) for m in b.metadata],
        [(e.series, e.labels, e.value, e.ts) for e in b.exemplars],
        b.exemplars_dropped,
        b.num_histograms,
    )


@FUZZ
@given(st.lists(series, max_size=6), st.lists(metadata, max_size=3))
def test_requests_encoded_by_upb_decode_identically(ts_list: list[Any], meta: list[Any]) -> None:
    req = build(ts_list, meta)
    pb = req.SerializeToString()
    want = upb_view(req)
    assert our_view(pb, True) == want
    assert our_view(pb, False) == want


def _mutate(pb: bytes, ops: list[tuple[int, int]]) -> bytes:
    buf = bytearray(pb)
    for pos, val in ops:
        if buf:
            buf[pos % len(buf)] = val
    return bytes(buf)


@FUZZ
@given(
    st.lists(series, min_size=1, max_size=4),
    st.lists(metadata, max_size=2),
    st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_where_upb_and_our_walk_both_accept_they_agree(
    ts_list: list[Any], meta: list[Any], ops: list[tuple[int, int]]
) -> None:
    pb = _mutate(build(ts_list, meta).SerializeToString(), ops)
    req = WriteRequest()
    try:
        req.ParseFromString(pb)
    except DecodeError:
        return
    try:
        ours = our_view(pb, True)
    except InvalidInput:
        return  # stricter than upb: wrong wire types of known fields (gogo semantics)
    # upb keeps fields with a wrong wire type as unknown fields; so do we only for unknown numbers,
    # so when both accepted, the known fields must match exactly
    assert ours == upb_view(req)
