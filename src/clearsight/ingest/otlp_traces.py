"""OTLP traces (``ExportTraceServiceRequest``, protobuf or OTLP/JSON) -> ``SpanBatch``.

Pure: no store or API imports. Protobuf is parsed by upb (the opentelemetry-proto messages); OTLP/JSON
is loaded with orjson, its hex ids (``traceId``, ``spanId``, ``parentSpanId``, and the links' ids)
turned into the base64 ``json_format`` expects, then read into the same message with
``json_format.ParseDict`` (unknown fields ignored, 64-bit integers as numbers or strings, enums as
numbers or names), so both encodings have one semantics. Bodies are decompressed (gzip/deflate) within
``LogLimits`` like ``/v1/logs`` bodies.

Mapping, per span (``model.spans.Span``): ids as bytes; ``name``; ``kind`` and status code as their
wire numbers; start/end as int ns; the resource's attributes (values rendered like log attributes,
``otlp_common.any_value_to_str``) and ``service.name`` (``unknown_service`` when absent); the span's
attributes in wire order; the scope's name and version; ``traceState``; how many events and links it
carried (their contents are not kept).

Validation (``OtlpTracesError``, 400, naming the field as ``resourceSpans[0].scopeSpans[1].spans[2].
spanId``): ``traceId`` must be 16 bytes and ``spanId`` 8 bytes, neither all zero; ``parentSpanId``
empty or 8 bytes; ``startTimeUnixNano`` non-zero and ``endTimeUnixNano`` not before it, both within
int64; ``kind`` 0-5 and ``status.code`` 0-2. Limits (``LimitExceeded``, 400): at most
``max_entries_per_request`` spans, ``max_attributes_per_entry`` / ``max_attribute_bytes_per_entry``
per span and per resource, ``max_line_bytes`` per span name, status message, trace state and scope
name and version; every span keeps a copy of its resource's attributes and its scope's name and
version, so those copies together (UTF-8 bytes) may come to at most ``max_decompressed_bytes`` per
request (a large resource over many small spans would otherwise be stored many times over).
``PayloadTooLarge`` (413) and ``UnsupportedMediaType`` (415) as for logs. Nothing else escapes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from clearsight.ingest.log_common import (
    INT64_MAX,
    LogLimits,
    check_attributes,
    check_body_size,
    decompress_body,
    line_too_long,
    too_many_entries,
)
from clearsight.ingest.otlp_common import (
    OtlpInvalidInput,
    any_value_to_str,
    check_counts,
    encoding_of,
    message_from_bytes,
    message_from_dict,
    refuse_entries,
)
from clearsight.model.spans import (
    SPAN_ID_BYTES,
    SPAN_KINDS,
    STATUS_CODES,
    TRACE_ID_BYTES,
    UNKNOWN_SERVICE,
    Span,
    SpanBatch,
)
from clearsight.pipeline.errors import InvalidInput, LimitExceeded

ExportTraceServiceRequest = trace_service_pb2.ExportTraceServiceRequest


class OtlpTracesError(OtlpInvalidInput):
    """Malformed OTLP traces, with the offending field's path."""


def decode_traces(body: bytes, content_type: str | None, content_encoding: str | None = None, *,
                  limits: LogLimits | None = None) -> SpanBatch:
    """An OTLP/HTTP ``/v1/traces`` body (protobuf or JSON, optionally gzip/deflate) -> SpanBatch."""
    lim = limits or LogLimits()
    check_body_size(body, lim)
    enc = encoding_of(content_type)
    data = decompress_body(body, content_encoding, lim, lambda m: OtlpTracesError("", m))
    req = parse_json(data) if enc == "json" else parse_protobuf(data, lim)
    return convert_request(req, limits=lim)


def parse_protobuf(data: bytes, limits: LogLimits | None = None) -> Any:
    """The request's message; a body over ``COUNT_ABOVE`` bytes has its resources, scopes and
    spans counted first (``otlp_common.check_counts``: at most ``max_entries_per_request``)."""
    lim = limits or LogLimits()
    check_counts(data, entries="spans", max_entries=lim.max_entries_per_request,
                 limit="max_entries_per_request", refuse=refuse_entries)
    return message_from_bytes(data, ExportTraceServiceRequest, lambda m: OtlpTracesError("", m))


def _rehex(obj: dict[str, Any], keys: tuple[str, ...], path: str) -> None:
    for key in keys:
        v = obj.get(key)
        if isinstance(v, str) and v:
            try:
                obj[key] = base64.b64encode(bytes.fromhex(v)).decode()
            except ValueError:
                raise OtlpTracesError(f"{path}.{key}", f"{v[:40]!r} is not hex") from None


def _items(obj: Any, *keys: str) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    for k in keys:
        v = obj.get(k)
        if isinstance(v, list):
            return v
    return []


_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


def _hex_ids(doc: Any) -> None:
    """OTLP/JSON ids are hex: rewrite them as base64 for ParseDict (in place)."""
    if not isinstance(doc, dict):
        raise OtlpTracesError("", "OTLP/JSON body must be an object")
    for ri, rs in enumerate(_items(doc, "resourceSpans", "resource_spans")):
        for si, ss in enumerate(_items(rs, "scopeSpans", "scope_spans")):
            for pi, span in enumerate(_items(ss, "spans")):
                if not isinstance(span, dict):
                    continue
                path = _path(f"resourceSpans[{ri}]", si, pi)
                _rehex(span, _ID_KEYS, path)
                for li, link in enumerate(_items(span, "links")):
                    if isinstance(link, dict):
                        _rehex(link, _ID_KEYS, f"{path}.links[{li}]")


def parse_json(data: bytes) -> Any:
    """OTLP/JSON bytes into the message."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise OtlpTracesError("", f"cannot parse OTLP/JSON ExportTraceServiceRequest: {e}") from None
    _hex_ids(doc)
    return message_from_dict(doc, ExportTraceServiceRequest, lambda m: OtlpTracesError("", m))


def _path(rpath: str, si: int, pi: int) -> str:
    return f"{rpath}.scopeSpans[{si}].spans[{pi}]"


def _str(v: Any, where: str) -> str:
    try:
        return any_value_to_str(v)
    except InvalidInput as e:
        raise OtlpTracesError(where, e.message) from None


def _attrs(kvs: Any, where: str, lim: LogLimits) -> tuple[tuple[str, ...], tuple[str, ...]]:
    keys: list[str] = []
    vals: list[str] = []
    for ai, kv in enumerate(kvs):
        v = kv.value
        keys.append(kv.key)
        vals.append(v.string_value if v.WhichOneof("value") == "string_value"
                    else _str(v, f"{where}.attributes[{ai}]"))
    if keys:
        check_attributes(keys, vals, lim, where)
    return tuple(keys), tuple(vals)


def _text(s: str, lim: LogLimits, where: str) -> str:
    if len(s) * 4 > lim.max_line_bytes:
        size = len(s.encode("utf-8", "surrogatepass"))
        if size > lim.max_line_bytes:
            raise line_too_long(size, lim, where)
    return s


def _id(raw: bytes, size: int, where: str, *, required: bool) -> bytes:
    if not raw:
        if required:
            raise OtlpTracesError(where, f"required ({size} bytes, {size * 2} hex digits)")
        return b""
    if len(raw) != size:
        raise OtlpTracesError(where, f"must be {size} bytes, got {len(raw)}")
    if raw == bytes(size):
        raise OtlpTracesError(where, "must not be all zero")
    return bytes(raw)


def _utf8_size(texts: Iterable[str]) -> int:
    return sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)


def convert_request(req: Any, *, limits: LogLimits | None = None) -> SpanBatch:
    """Maps a parsed ``ExportTraceServiceRequest`` (also the gRPC entry point)."""
    lim = limits or LogLimits()
    spans: list[Span] = []
    copied = 0  # bytes of resource and scope text the spans so far keep a copy of
    for ri, rs in enumerate(req.resource_spans):
        rpath = f"resourceSpans[{ri}]"
        rkeys, rvals = _attrs(rs.resource.attributes, f"{rpath}.resource", lim)
        rsize = _utf8_size(rkeys) + _utf8_size(rvals)
        res = dict(zip(rkeys, rvals, strict=True))
        service = res.get("service.name") or UNKNOWN_SERVICE
        for si, ss in enumerate(rs.scope_spans):
            spath = f"{rpath}.scopeSpans[{si}]"
            scope_name = _text(ss.scope.name, lim, f"{spath}.scope.name")
            scope_version = _text(ss.scope.version, lim, f"{spath}.scope.version")
            if len(spans) + len(ss.spans) > lim.max_entries_per_request:
                raise too_many_entries(lim)
            copied += (rsize + _utf8_size((scope_name, scope_version))) * len(ss.spans)
            if copied > lim.max_decompressed_bytes:
                raise LimitExceeded("copied_bytes_per_request", (
                    f"{spath}: the resource's attributes and the scope's name and version that each span "
                    f"keeps a copy of come to more than {lim.max_decompressed_bytes} bytes in this request "
                    "(max_decompressed_bytes); send fewer spans per request"))
            for pi, sp in enumerate(ss.spans):
                where = _path(rpath, si, pi)
                start, end = sp.start_time_unix_nano, sp.end_time_unix_nano
                if start == 0:
                    raise OtlpTracesError(f"{where}.startTimeUnixNano", "required (non-zero)")
                if start > INT64_MAX:
                    raise OtlpTracesError(f"{where}.startTimeUnixNano", f"{start} is past the int64 nanosecond range")
                if end > INT64_MAX:
                    raise OtlpTracesError(f"{where}.endTimeUnixNano", f"{end} is past the int64 nanosecond range")
                if end < start:
                    raise OtlpTracesError(f"{where}.endTimeUnixNano",
                                          f"{end} is before startTimeUnixNano {start}")
                kind = int(sp.kind)
                if not 0 <= kind < len(SPAN_KINDS):
                    raise OtlpTracesError(f"{where}.kind", f"{kind} is not a span kind (0-5)")
                code = int(sp.status.code)
                if not 0 <= code < len(STATUS_CODES):
                    raise OtlpTracesError(f"{where}.status.code", f"{code} is not a status code (0-2)")
                keys, vals = _attrs(sp.attributes, where, lim)
                spans.append(Span(
                    trace_id=_id(sp.trace_id, TRACE_ID_BYTES, f"{where}.traceId", required=True),
                    span_id=_id(sp.span_id, SPAN_ID_BYTES, f"{where}.spanId", required=True),
                    parent_span_id=_id(sp.parent_span_id, SPAN_ID_BYTES, f"{where}.parentSpanId", required=False),
                    name=_text(sp.name, lim, f"{where}.name"),
                    kind=kind, start_ns=start, end_ns=end, status_code=code,
                    status_message=_text(sp.status.message, lim, f"{where}.status.message"),
                    service_name=service, attr_keys=keys, attr_values=vals,
                    resource_keys=rkeys, resource_values=rvals,
                    scope_name=scope_name, scope_version=scope_version,
                    trace_state=_text(sp.trace_state, lim, f"{where}.traceState"),
                    events=len(sp.events), links=len(sp.links),
                ))
    return SpanBatch(spans)
