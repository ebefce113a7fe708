"""A body's resources, scopes, entries (metrics, log records, spans) and attributes are counted
before it is parsed (``otlp_common.check_counts``, bodies over ``COUNT_ABOVE`` bytes): a few KB of
gzip holding millions of empty resource attributes or entries is refused with 400 before upb parses
it (issue 8: one such body took an ingest worker 20 s and held the event loop up to 216 ms for
metrics, 0.2-1.0 s for logs and traces). Requests within the limits decode exactly as before."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from clearsight.ingest import otlp_common, otlp_logs, otlp_traces
from clearsight.ingest.log_common import LogLimits
from clearsight.ingest.otlp_common import COUNT_ABOVE, MAX_ATTRIBUTES
from clearsight.ingest.otlp_metrics import convert_protobuf
from clearsight.ingest.prompb_encode import len_field
from clearsight.pipeline.errors import IngestError, LimitExceeded
from clearsight.pipeline.limits import WriteLimits
from tests.unit.ingest.test_otlp_sliced import request, same

LIMITS = WriteLimits()
GAUGE = len_field(1, b"g") + len_field(5, len_field(1, b"\x31" + b"\x00" * 8))  # one point, as_double 0


def _body(resource: bytes = b"", scopes: bytes = b"") -> bytes:
    """ExportMetricsServiceRequest{resource_metrics: [{resource, scope_metrics...}]}, wire format."""
    return len_field(1, (len_field(1, resource) if resource else b"") + scopes)


def test_millions_of_empty_resource_attributes_are_refused_before_the_parse() -> None:
    body = _body(resource=len_field(1, b"") * 3_000_000, scopes=len_field(2, len_field(2, GAUGE)))
    with pytest.raises(LimitExceeded, match=f"a resource has more than {MAX_ATTRIBUTES} attributes") as e:
        convert_protobuf(body, limits=LIMITS, now_ms=1000)
    assert e.value.status == 400


def test_scope_attributes_are_counted_too() -> None:
    scope = len_field(1, len_field(3, b"") * (MAX_ATTRIBUTES + 1)) + len_field(2, GAUGE) * 3000
    body = _body(scopes=len_field(2, scope))
    assert len(body) > COUNT_ABOVE
    with pytest.raises(LimitExceeded, match=f"a scope has more than {MAX_ATTRIBUTES} attributes"):
        convert_protobuf(body, limits=LIMITS, now_ms=1000)


@pytest.mark.parametrize(("what", "body"), [
    ("metrics", _body(scopes=len_field(2, len_field(2, b"") * 101 + len_field(2, GAUGE) * 4000))),
    ("scopes", _body(scopes=len_field(2, b"") * 101 + len_field(2, len_field(2, GAUGE)) * 4000)),
    ("resources", len_field(1, b"") * 101 + _body(scopes=len_field(2, len_field(2, GAUGE))) * 4000),
])
def test_more_entries_than_series_per_request_are_refused(what: str, body: bytes) -> None:
    assert len(body) > COUNT_ABOVE
    limits = WriteLimits(max_series_per_request=100)
    with pytest.raises(LimitExceeded, match=f"request has more than 100 {what} "):
        convert_protobuf(body, limits=limits, now_ms=1000)


def test_a_request_within_the_limits_decodes_as_without_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    data = request(["gauge", "sum", "histogram"] * 40, 200)
    assert len(data) > COUNT_ABOVE
    counted = convert_protobuf(data, limits=LIMITS, now_ms=1000)
    monkeypatch.setattr(otlp_common, "COUNT_ABOVE", 1 << 40)
    same(counted, convert_protobuf(data, limits=LIMITS, now_ms=1000))


def test_only_a_body_over_the_threshold_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    walk = otlp_common._messages

    def spy(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
        if start == 0:  # the walk of a whole request
            calls.append(len(buf))
        return walk(buf, start, end)

    monkeypatch.setattr(otlp_common, "_messages", spy)
    small = _body(scopes=len_field(2, len_field(2, GAUGE) * 100))
    large = _body(scopes=len_field(2, len_field(2, GAUGE) * 4000))
    assert len(small) <= COUNT_ABOVE < len(large)
    for body in (ExportMetricsServiceRequest().SerializeToString(), small, large):
        convert_protobuf(body, limits=LIMITS, now_ms=1000)
    assert calls == [len(large)]


@settings(max_examples=300)
@given(st.binary(max_size=4096))
def test_the_count_walk_never_fails_on_malformed_bytes(data: bytes) -> None:
    """Malformed input is the parser's to report: the walk only refuses counts over the limits."""
    try:
        otlp_common.check_counts(data, entries="metrics", max_entries=3, limit="max_series_per_request",
                                 refuse=otlp_common.refuse_entries)
    except LimitExceeded:
        pass


@settings(max_examples=100)
@given(st.binary(max_size=2048))
def test_malformed_large_bodies_fail_as_before(tail: bytes) -> None:
    """A garbled body over the threshold gets the parser's own error, as without the count."""
    body = _body(scopes=len_field(2, len_field(2, GAUGE)) * 3000) + tail

    def outcome(count_above: int) -> str:
        old = otlp_common.COUNT_ABOVE
        otlp_common.COUNT_ABOVE = count_above
        try:
            convert_protobuf(body, limits=LIMITS, now_ms=1000)
            return "ok"
        except IngestError as e:
            return f"{e.status} {type(e).__name__}"
        finally:
            otlp_common.COUNT_ABOVE = old
    assert outcome(COUNT_ABOVE) == outcome(1 << 40)


@pytest.mark.parametrize("parse", [otlp_logs.parse_protobuf, otlp_traces.parse_protobuf], ids=["logs", "traces"])
def test_logs_and_traces_are_counted_too(parse: Callable[..., object]) -> None:
    """Their requests have the same outer shape (resource_X, scope_X, entries at field 2 of a scope)."""
    attrs = _body(resource=len_field(1, b"") * 3_000_000, scopes=len_field(2, b""))
    with pytest.raises(LimitExceeded, match=f"a resource has more than {MAX_ATTRIBUTES} attributes") as e:
        parse(attrs)
    assert e.value.status == 400 and e.value.reason == "limit_attributes_per_entry"
    entries = _body(scopes=len_field(2, len_field(2, b"") * 3_000_000))
    what = "log records" if parse is otlp_logs.parse_protobuf else "spans"
    with pytest.raises(LimitExceeded, match=f"request has more than 1000000 {what} "
                                            r"\(limit max_entries_per_request\)"):
        parse(entries)
    with pytest.raises(LimitExceeded, match=f"more than 100 {what}"):
        parse(_body(scopes=len_field(2, len_field(2, b"") * 40_000)), LogLimits(max_entries_per_request=100))
