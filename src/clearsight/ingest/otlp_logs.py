"""OTLP logs (``ExportLogsServiceRequest``, protobuf or OTLP/JSON) -> ``LogBatch``.

Pure: no store or API imports. Protobuf is parsed by upb (the opentelemetry-proto messages). OTLP/JSON
is read with orjson and walked directly (``convert_json``) when it has the canonical OTLP/JSON shape
(lowerCamelCase keys, hex ``traceId``/``spanId``, integers as numbers or strings, severityNumber as a
number); any other shape (snake_case keys, enum names, unknown fields...) is loaded into the message
with ``json_format.ParseDict`` (hex ids converted first) and goes through the protobuf path's
converter, so both encodings have one semantics (a property test checks the walk against it).
``MessageToDict`` is never used.

Mapping, per log record:

- ``timestamps``: ``timeUnixNano``, or ``observedTimeUnixNano`` when it is 0, or the decoder's
  ``now_ns`` when both are 0 (OTLP: "use the observed time when the time is unknown"). Exact int ns.
- ``severity_number`` (0-24; other values are an error) and ``severity_text`` as sent.
- ``body``: a string body as is; other ``AnyValue`` kinds rendered like attributes (``true``,
  ``42``, shortest double, base64 bytes, compact JSON for arrays and maps); an empty body is ``""``.
- attributes: the record's attributes in wire order (values rendered as above), then
  ``event.name`` when the record has an ``eventName``; the instrumentation scope's name and
  version become ``otel.scope.name``/``otel.scope.version`` attributes.
- ``trace_id`` (16 bytes) / ``span_id`` (8 bytes); any other non-empty length is an error.
- resource: all resource attributes (keys as sent, values rendered as above).
- stream labels: Loki's default OTLP index labels: these resource attributes with ``.``/``-``
  replaced by ``_`` (``service.name`` -> ``service_name``); ``service_name`` is ``unknown_service``
  when the resource has none (as Loki does).

Errors: ``OtlpLogsError`` (400) with the field path (``resourceLogs[0].scopeLogs[1].logRecords[2].
traceId``), ``LimitExceeded`` (400) for ``LogLimits``, ``PayloadTooLarge`` (413),
``UnsupportedMediaType`` (415). Nothing else escapes.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from clearsight.ingest.log_common import (
    INT64_MAX,
    LogLimits,
    check_attributes,
    check_body_size,
    check_stream_labels,
    decompress_body,
    line_too_long,
    too_many_entries,
    too_many_streams,
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
from clearsight.model.labels import Labels
from clearsight.model.logs import LogBatch, LogBatchBuilder
from clearsight.pipeline.errors import InvalidInput

ExportLogsServiceRequest = logs_service_pb2.ExportLogsServiceRequest

# Loki's default OTLP resource attributes promoted to stream (index) labels.
STREAM_RESOURCE_ATTRIBUTES: tuple[str, ...] = (
    "cloud.availability_zone",
    "cloud.region",
    "container.name",
    "deployment.environment",
    "k8s.cluster.name",
    "k8s.container.name",
    "k8s.cronjob.name",
    "k8s.daemonset.name",
    "k8s.deployment.name",
    "k8s.job.name",
    "k8s.namespace.name",
    "k8s.replicaset.name",
    "k8s.statefulset.name",
    "service.instance.id",
    "service.name",
    "service.namespace",
)
_STREAM_NAMES = {a: a.replace(".", "_").replace("-", "_") for a in STREAM_RESOURCE_ATTRIBUTES}
UNKNOWN_SERVICE = "unknown_service"


class OtlpLogsError(OtlpInvalidInput):
    """Malformed OTLP logs, with the offending field's path."""


def decode_logs(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    *,
    now_ns: int,
    limits: LogLimits | None = None,
) -> LogBatch:
    """An OTLP/HTTP ``/v1/logs`` body (protobuf or JSON, optionally gzip/deflate) -> LogBatch."""
    lim = limits or LogLimits()
    check_body_size(body, lim)
    enc = encoding_of(content_type)
    data = decompress_body(body, content_encoding, lim, lambda m: OtlpLogsError("", m))
    if enc == "json":
        return convert_json(data, now_ns=now_ns, limits=lim)
    return convert_request(parse_protobuf(data, lim), now_ns=now_ns, limits=lim)


def parse_protobuf(data: bytes, limits: LogLimits | None = None) -> Any:
    """The request's message; a body over ``COUNT_ABOVE`` bytes has its resources, scopes and
    log records counted first (``otlp_common.check_counts``: at most ``max_entries_per_request``)."""
    lim = limits or LogLimits()
    check_counts(data, entries="log records", max_entries=lim.max_entries_per_request,
                 limit="max_entries_per_request", refuse=refuse_entries)
    return message_from_bytes(data, ExportLogsServiceRequest, lambda m: OtlpLogsError("", m))


def _hex_ids(doc: Any) -> None:
    """OTLP/JSON ids are hex: rewrite them as base64 for ParseDict (in place)."""
    if not isinstance(doc, dict):
        raise OtlpLogsError("", "OTLP/JSON body must be an object")
    rls = doc.get("resourceLogs", doc.get("resource_logs"))
    if not isinstance(rls, list):
        return
    for ri, rl in enumerate(rls):
        sls = rl.get("scopeLogs", rl.get("scope_logs")) if isinstance(rl, dict) else None
        if not isinstance(sls, list):
            continue
        for si, sl in enumerate(sls):
            recs = sl.get("logRecords", sl.get("log_records")) if isinstance(sl, dict) else None
            if not isinstance(recs, list):
                continue
            for li, rec in enumerate(recs):
                if not isinstance(rec, dict):
                    continue
                for key in ("traceId", "trace_id", "spanId", "span_id"):
                    v = rec.get(key)
                    if isinstance(v, str) and v:
                        try:
                            rec[key] = base64.b64encode(bytes.fromhex(v)).decode()
                        except ValueError:
                            path = f"resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}].{key}"
                            raise OtlpLogsError(path, f"{v[:40]!r} is not hex") from None


def parse_json(data: bytes) -> Any:
    """OTLP/JSON bytes into the message (the reference path; ``convert_json`` is the fast one)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise OtlpLogsError("", f"cannot parse OTLP/JSON ExportLogsServiceRequest: {e}") from None
    return _message_from_doc(doc)


def _message_from_doc(doc: Any) -> Any:
    _hex_ids(doc)
    return message_from_dict(doc, ExportLogsServiceRequest, lambda m: OtlpLogsError("", m))


def _invalid_label(message: str) -> OtlpLogsError:
    field, _, description = message.partition(": ")
    return OtlpLogsError(field, description)


def _path(rpath: str, si: int, li: int) -> str:
    return f"{rpath}.scopeLogs[{si}].logRecords[{li}]"


def _str(v: Any, rpath: str, si: int = -1, li: int = -1, suffix: str = "") -> str:
    """An AnyValue as text; errors name ``rpath`` (plus the record and ``suffix`` when given)."""
    try:
        return any_value_to_str(v)
    except InvalidInput as e:
        raise OtlpLogsError((_path(rpath, si, li) if li >= 0 else rpath) + suffix, e.message) from None


def _resource_indexes(b: LogBatchBuilder, res: dict[str, str], lim: LogLimits, rpath: str) -> tuple[int, int]:
    """(stream index, resource index) of a resource's attributes."""
    if res:
        check_attributes(list(res), list(res.values()), lim, f"{rpath}.resource")
    stream: dict[str, str] = {_STREAM_NAMES[k]: v for k, v in res.items() if k in _STREAM_NAMES and v}
    stream.setdefault("service_name", UNKNOWN_SERVICE)
    slabels: Labels = tuple(sorted(stream.items()))
    check_stream_labels(slabels, lim, f"{rpath}.resource", _invalid_label)
    before = b.num_streams
    sidx = b.stream(slabels)
    if b.num_streams > before and b.num_streams > lim.max_streams_per_request:
        raise too_many_streams(lim)
    return sidx, b.resource(tuple(sorted((k, v) for k, v in res.items() if v != "")))


def convert_request(req: Any, *, now_ns: int, limits: LogLimits | None = None) -> LogBatch:
    """Maps a parsed ``ExportLogsServiceRequest`` (also the gRPC entry point)."""
    lim = limits or LogLimits()
    b = LogBatchBuilder()
    max_line = lim.max_line_bytes
    quarter = max_line // 4
    max_attrs = lim.max_attributes_per_entry
    max_attr_chars = lim.max_attribute_bytes_per_entry // 4  # characters: at most 4 UTF-8 bytes each
    add = b.add_kv
    sev_text = b.severity_text_index
    n = 0
    for ri, rl in enumerate(req.resource_logs):
        rpath = f"resourceLogs[{ri}]"
        res: dict[str, str] = {}
        for ai, kv in enumerate(rl.resource.attributes):
            res[kv.key] = _str(kv.value, f"{rpath}.resource.attributes[{ai}]")
        sidx, ridx = _resource_indexes(b, res, lim, rpath)
        for si, sl in enumerate(rl.scope_logs):
            scope_keys: list[str] = []
            scope_vals: list[str] = []
            if sl.scope.name:
                scope_keys.append("otel.scope.name")
                scope_vals.append(sl.scope.name)
            if sl.scope.version:
                scope_keys.append("otel.scope.version")
                scope_vals.append(sl.scope.version)
            records = sl.log_records
            n += len(records)
            if n > lim.max_entries_per_request:
                raise too_many_entries(lim)
            for li, lr in enumerate(records):
                t = lr.time_unix_nano or lr.observed_time_unix_nano or now_ns
                if t > INT64_MAX:
                    raise OtlpLogsError(f"{_path(rpath, si, li)}.timeUnixNano",
                                        f"{t} is past the int64 nanosecond range")
                sev = lr.severity_number
                if sev > 24 or sev < 0:
                    raise OtlpLogsError(f"{_path(rpath, si, li)}.severityNumber",
                                        f"{sev} is not a severity number (0-24)")
                bv = lr.body
                if bv.WhichOneof("value") == "string_value":
                    body = bv.string_value
                    if len(body) > quarter:
                        size = len(body.encode("utf-8", "surrogatepass"))
                        if size > max_line:
                            raise line_too_long(size, lim, _path(rpath, si, li))
                else:
                    body = _str(bv, rpath, si, li, ".body")
                    size = len(body.encode("utf-8", "surrogatepass"))
                    if size > max_line:
                        raise line_too_long(size, lim, _path(rpath, si, li))
                keys: list[str] = []
                vals: list[str] = []
                for ai, kv in enumerate(lr.attributes):
                    v = kv.value
                    keys.append(kv.key)
                    vals.append(v.string_value if v.WhichOneof("value") == "string_value"
                                else _str(v, rpath, si, li, f".attributes[{ai}]"))
                if lr.event_name:
                    keys.append("event.name")
                    vals.append(lr.event_name)
                if scope_keys:
                    keys += scope_keys
                    vals += scope_vals
                if keys and (len(keys) > max_attrs
                             or sum(map(len, keys)) + sum(map(len, vals)) > max_attr_chars):
                    check_attributes(keys, vals, lim, _path(rpath, si, li))
                tid = lr.trace_id
                if tid and len(tid) != 16:
                    raise OtlpLogsError(f"{_path(rpath, si, li)}.traceId", f"must be 16 bytes, got {len(tid)}")
                sid = lr.span_id
                if sid and len(sid) != 8:
                    raise OtlpLogsError(f"{_path(rpath, si, li)}.spanId", f"must be 8 bytes, got {len(sid)}")
                txt = lr.severity_text
                add(sidx, t, body, sev, sev_text(txt), keys, vals, ridx, tid, sid)
    return b.build()


# --- OTLP/JSON without a message in between ------------------------------------------------------
#
# ``convert_json`` walks the orjson document directly (about 10x faster than ParseDict). It takes
# the fast path only for the canonical OTLP/JSON shapes (lowerCamelCase keys, integers as numbers or
# digit strings, severityNumber as a number, AnyValue with one member); on anything else (snake_case
# or unknown keys, enum names, nulls, wrong types) it starts over through ParseDict, so odd input
# gets exactly the message semantics and errors of the protobuf path.


class _Fallback(Exception):
    pass


_RL_KEYS = frozenset({"resource", "scopeLogs", "schemaUrl"})
_RES_KEYS = frozenset({"attributes", "droppedAttributesCount"})
_SL_KEYS = frozenset({"scope", "logRecords", "schemaUrl"})
_SCOPE_KEYS = frozenset({"name", "version", "attributes", "droppedAttributesCount"})
_LR_KEYS = frozenset({"timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText", "body",
                      "attributes", "droppedAttributesCount", "flags", "traceId", "spanId", "eventName"})
_U64_MAX = (1 << 64) - 1


def _obj(v: Any, known: frozenset[str]) -> dict[str, Any]:
    if not isinstance(v, dict) or not known.issuperset(v):
        raise _Fallback
    return v


def _list(v: Any) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise _Fallback
    return v


def _uint(v: Any, limit: int = _U64_MAX) -> int:
    if v is None:
        return 0
    if type(v) is int:
        n = v
    elif type(v) is str and v.isascii() and v.isdigit():
        n = int(v)
    else:
        raise _Fallback
    if not 0 <= n <= limit:
        raise _Fallback
    return n


def _text_field(v: Any) -> str:
    if v is None:
        return ""
    if type(v) is not str:
        raise _Fallback
    return v


_INT64_MIN = -(1 << 63)


def _any_text(v: Any) -> str:
    """An AnyValue's JSON as text, rendered like ``any_value_to_str``."""
    if v is None:
        return ""
    if type(v) is not dict or len(v) > 1:
        raise _Fallback
    if not v:
        return ""
    kind, x = next(iter(v.items()))
    if kind == "stringValue" and type(x) is str:
        return x
    if kind == "boolValue" and type(x) is bool:
        return "true" if x else "false"
    if kind == "intValue":
        if type(x) is int:
            n = x
        elif type(x) is str and x.isascii() and (x.isdigit() or (x[:1] == "-" and x[1:].isdigit())):
            n = int(x)
        else:
            raise _Fallback
        if not _INT64_MIN <= n <= INT64_MAX:
            raise _Fallback
        return str(n)
    if kind in ("doubleValue", "bytesValue", "arrayValue", "kvlistValue"):
        av = common_pb2.AnyValue()
        try:
            json_format.ParseDict(v, av)
            return any_value_to_str(av)
        except Exception:
            raise _Fallback from None
    raise _Fallback


def _kv_lists(attrs: Any) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    vals: list[str] = []
    for kv in _list(attrs):
        if type(kv) is not dict or not _KV_KEYS.issuperset(kv):
            raise _Fallback
        k = kv.get("key", "")
        if type(k) is not str:
            raise _Fallback
        keys.append(k)
        vals.append(_any_text(kv.get("value")))
    return keys, vals


_KV_KEYS = frozenset({"key", "value"})


def _hex_id(v: Any, size: int) -> bytes:
    if v is None or v == "":
        return b""
    if type(v) is not str:
        raise _Fallback
    try:
        raw = bytes.fromhex(v)
    except ValueError:
        raise _Fallback from None
    if len(raw) != size:
        raise _Fallback
    return raw


def convert_json(data: bytes, *, now_ns: int, limits: LogLimits | None = None) -> LogBatch:
    """An OTLP/JSON ``ExportLogsServiceRequest`` body (decompressed) -> LogBatch."""
    lim = limits or LogLimits()
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise OtlpLogsError("", f"cannot parse OTLP/JSON ExportLogsServiceRequest: {e}") from None
    try:
        return _convert_json_fast(doc, now_ns, lim)
    except _Fallback:
        pass
    return convert_request(_message_from_doc(doc), now_ns=now_ns, limits=lim)


def _convert_json_fast(doc: Any, now_ns: int, lim: LogLimits) -> LogBatch:
    if not isinstance(doc, dict) or not doc.keys() <= {"resourceLogs"}:
        raise _Fallback
    b = LogBatchBuilder()
    max_line = lim.max_line_bytes
    max_attrs = lim.max_attributes_per_entry
    max_attr_chars = lim.max_attribute_bytes_per_entry // 4
    add = b.add_kv
    sev_text = b.severity_text_index
    n = 0
    for ri, rl_raw in enumerate(_list(doc.get("resourceLogs"))):
        rl = _obj(rl_raw, _RL_KEYS)
        rpath = f"resourceLogs[{ri}]"
        resource = rl.get("resource")
        res: dict[str, str] = {}
        if resource is not None:
            rkeys, rvals = _kv_lists(_obj(resource, _RES_KEYS).get("attributes"))
            res = dict(zip(rkeys, rvals, strict=True))
        _uint((resource or {}).get("droppedAttributesCount"), 0xFFFFFFFF)
        _text_field(rl.get("schemaUrl"))
        sidx, ridx = _resource_indexes(b, res, lim, rpath)
        for si, sl_raw in enumerate(_list(rl.get("scopeLogs"))):
            sl = _obj(sl_raw, _SL_KEYS)
            _text_field(sl.get("schemaUrl"))
            scope_keys: list[str] = []
            scope_vals: list[str] = []
            scope = sl.get("scope")
            if scope is not None:
                sc = _obj(scope, _SCOPE_KEYS)
                _kv_lists(sc.get("attributes"))
                _uint(sc.get("droppedAttributesCount"), 0xFFFFFFFF)
                name, version = _text_field(sc.get("name")), _text_field(sc.get("version"))
                if name:
                    scope_keys.append("otel.scope.name")
                    scope_vals.append(name)
                if version:
                    scope_keys.append("otel.scope.version")
                    scope_vals.append(version)
            records = _list(sl.get("logRecords"))
            n += len(records)
            if n > lim.max_entries_per_request:
                raise too_many_entries(lim)
            for li, lr_raw in enumerate(records):
                lr = _obj(lr_raw, _LR_KEYS)
                t = _uint(lr.get("timeUnixNano")) or _uint(lr.get("observedTimeUnixNano")) or now_ns
                if t > INT64_MAX:
                    raise OtlpLogsError(f"{_path(rpath, si, li)}.timeUnixNano",
                                        f"{t} is past the int64 nanosecond range")
                sev_raw = lr.get("severityNumber")
                sev = 0 if sev_raw is None else sev_raw
                if type(sev) is not int:
                    raise _Fallback
                if sev > 24 or sev < 0:
                    raise _Fallback  # the message path names the field (and reads enum ranges)
                _uint(lr.get("flags"), 0xFFFFFFFF)
                _uint(lr.get("droppedAttributesCount"), 0xFFFFFFFF)
                body = _any_text(lr.get("body"))
                if len(body) > max_line // 4:
                    size = len(body.encode("utf-8", "surrogatepass"))
                    if size > max_line:
                        raise line_too_long(size, lim, _path(rpath, si, li))
                keys, vals = _kv_lists(lr.get("attributes"))
                event_name = _text_field(lr.get("eventName"))
                if event_name:
                    keys.append("event.name")
                    vals.append(event_name)
                if scope_keys:
                    keys += scope_keys
                    vals += scope_vals
                if keys and (len(keys) > max_attrs
                             or sum(map(len, keys)) + sum(map(len, vals)) > max_attr_chars):
                    check_attributes(keys, vals, lim, _path(rpath, si, li))
                tid = _hex_id(lr.get("traceId"), 16)
                sid = _hex_id(lr.get("spanId"), 8)
                add(sidx, t, body, sev, sev_text(_text_field(lr.get("severityText"))), keys, vals, ridx, tid, sid)
    return b.build()
