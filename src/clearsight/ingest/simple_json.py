"""AegisGuard's simple JSON ingest shapes, decoded into the pipeline's batches (api/simple_ingest.py
serves them at ``/api/v1/ingest/{logs,metrics,rum,traces}``, beside OTLP's ``/v1/*``, never on them).

- ``{"logs": [{"timestamp"?, "service", "level"?, "message", "attributes"?, "trace_id"?,
  "span_id"?}], "resource"?: {"service_name"?, "host"?, "environment"?}}``: at most 1000 entries; one
  stream per ``{service, host?, environment?}``; ``level`` is the severity; ``attributes`` (values
  as text, objects as JSON) are structured metadata;
- ``{"metrics": [{"timestamp"?, "name", "value", "type"?, "labels"?, "unit"?}], "resource"?:
  {"service_name"?, "host"?}}``: at most 5000 samples, each a sample of series ``name{labels}`` (plus
  ``service``/``host`` from the resource when the sample's labels lack them);
- ``{"rum": [...]}`` (or AegisGuard's ``{"events": [...]}``): at most 1000 browser events
  (``session_id``, ``event_type`` pageview|click|error|performance|custom, ``page_url``, ...), kept
  as JSON log lines in the stream ``{source="rum", event_type=...}``;
- ``{"traces": [{"trace_id", "span_id", "parent_span_id"?, "name", "start_time", "end_time",
  "service"?, "kind"?, "status"?, "status_message"?, "attributes"?}], "resource"?: {"service_name"?,
  "host"?, "environment"?}}``: at most 500 spans, stored like OTLP spans. Ids are hex (32 and 16
  digits, not all zero); ``kind`` one of unspecified|internal|server|client|producer|consumer,
  ``status`` unset|ok|error; ``service`` defaults to the resource's ``service_name``, then
  ``unknown_service``; the resource becomes ``service.name``/``host.name``/``deployment.environment``.

``timestamp`` is RFC 3339 (default: now). Any bad entry refuses the whole request with a 400 naming
it (``logs[3].service: ...``); nothing of it is kept.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from clearsight.ingest.log_common import LogLimits, check_attributes, check_stream_labels, parse_rfc3339_ns
from clearsight.model.logs import LogBatch, LogBatchBuilder, severity_number_of
from clearsight.model.samples import SampleBatch
from clearsight.model.spans import (
    SPAN_ID_BYTES,
    SPAN_KINDS,
    STATUS_CODES,
    TRACE_ID_BYTES,
    UNKNOWN_SERVICE,
    Span,
    SpanBatch,
)
from clearsight.pipeline.errors import InvalidInput, PayloadTooLarge

MAX_LOGS, MAX_METRICS, MAX_SPANS, MAX_RUM = 1000, 5000, 500, 1000
LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")
METRIC_TYPES = ("counter", "gauge", "histogram", "summary")
RUM_TYPES = ("pageview", "click", "error", "performance", "custom")


def _doc(body: bytes, key: str, limit: int, alt: str = "") -> tuple[list[Any], dict[str, Any]]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"invalid JSON body: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidInput("the body must be a JSON object")
    if alt and key not in doc and alt in doc:
        key = alt
    items = doc.get(key)
    if not isinstance(items, list) or not items:
        raise InvalidInput(f'"{key}" must be a non-empty list')
    if len(items) > limit:
        raise PayloadTooLarge(f'{len(items)} entries in "{key}", over the limit of {limit} per request')
    resource = doc.get("resource", {})
    if not isinstance(resource, dict):
        raise InvalidInput('"resource" must be an object')
    return items, resource


def _str(obj: dict[str, Any], name: str, where: str, *, required: bool = False, max_len: int = 0) -> str:
    v = obj.get(name)
    if v is None:
        if required:
            raise InvalidInput(f"{where}.{name}: required")
        return ""
    if not isinstance(v, str) or (required and not v):
        raise InvalidInput(
            f"{where}.{name}: must be a non-empty string" if required else f"{where}.{name}: must be a string"
        )
    if max_len and len(v) > max_len:
        raise InvalidInput(f"{where}.{name}: longer than {max_len} characters")
    return v


def _time_ns(obj: dict[str, Any], name: str, where: str, now_ns: int, *, required: bool = False) -> int:
    text = _str(obj, name, where, required=required)
    if not text:
        return now_ns
    try:
        return parse_rfc3339_ns(text)
    except ValueError as e:
        raise InvalidInput(f"{where}.{name}: not an RFC 3339 time ({e})") from None


def _text(v: Any) -> str:
    return v if isinstance(v, str) else orjson.dumps(v).decode()


def _attributes(obj: dict[str, Any], name: str, where: str) -> list[tuple[str, str]]:
    raw = obj.get(name, {})
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}.{name}: must be an object")
    return [(str(k), _text(v)) for k, v in raw.items() if v is not None]


def _hex_id(obj: dict[str, Any], name: str, where: str, size: int) -> bytes:
    text = _str(obj, name, where)
    if not text:
        return b""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InvalidInput(f"{where}.{name}: must be {size * 2} hex digits") from None
    if len(raw) != size:
        raise InvalidInput(f"{where}.{name}: must be {size * 2} hex digits")
    return raw


def _stream(b: LogBatchBuilder, labels: dict[str, str], limits: LogLimits, where: str) -> int:
    key = tuple(sorted((k, v) for k, v in labels.items() if v))
    check_stream_labels(key, limits, where)
    return b.stream(key)


def _line(b: LogBatchBuilder, limits: LogLimits, where: str, attrs: list[tuple[str, str]], body: str) -> None:
    if len(body.encode("utf-8", "surrogatepass")) > limits.max_line_bytes:
        raise InvalidInput(f"{where}: longer than {limits.max_line_bytes} bytes (max_line_bytes)")
    if attrs:
        check_attributes([k for k, _ in attrs], [v for _, v in attrs], limits, where)


def decode_logs(body: bytes, limits: LogLimits, now_ns: int) -> LogBatch:
    items, resource = _doc(body, "logs", MAX_LOGS)
    res = {k: _str(resource, n, "resource") for k, n in (("host", "host"), ("environment", "environment"))}
    default_service = _str(resource, "service_name", "resource")
    b = LogBatchBuilder()
    for i, e in enumerate(items):
        where = f"logs[{i}]"
        if not isinstance(e, dict):
            raise InvalidInput(f"{where}: must be an object")
        service = _str(e, "service", where, max_len=100) or default_service
        if not service:
            raise InvalidInput(f"{where}.service: required")
        level = _str(e, "level", where)
        if level and level not in LEVELS:
            raise InvalidInput(f"{where}.level: one of {', '.join(LEVELS)}")
        message = _str(e, "message", where, max_len=10_000)
        if "message" not in e:
            raise InvalidInput(f"{where}.message: required")
        attrs = _attributes(e, "attributes", where)
        _line(b, limits, where, attrs, message)
        stream = _stream(b, {"service": service, **res}, limits, where)
        b.add(
            stream,
            _time_ns(e, "timestamp", where, now_ns),
            message,
            severity_number_of(level) if level else 0,
            level,
            attrs,
            _hex_id(e, "trace_id", where, 16),
            _hex_id(e, "span_id", where, 8),
        )
    return b.build()


def decode_rum(body: bytes, limits: LogLimits, now_ns: int) -> LogBatch:
    items, _ = _doc(body, "rum", MAX_RUM, alt="events")
    b = LogBatchBuilder()
    for i, e in enumerate(items):
        where = f"rum[{i}]"
        if not isinstance(e, dict):
            raise InvalidInput(f"{where}: must be an object")
        session = _str(e, "session_id", where, required=True, max_len=256)
        kind = _str(e, "event_type", where, required=True)
        if kind not in RUM_TYPES:
            raise InvalidInput(f"{where}.event_type: one of {', '.join(RUM_TYPES)}")
        url = _str(e, "page_url", where, required=True, max_len=4096)
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"{where}.page_url: must be an http(s) URL")
        for name in ("performance", "error", "custom_attributes"):
            if name in e and not isinstance(e[name], dict):
                raise InvalidInput(f"{where}.{name}: must be an object")
        perf = e.get("performance") or {}
        for k, v in perf.items():
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise InvalidInput(f"{where}.performance.{k}: must be a finite number")
        t = _time_ns(e, "timestamp", where, now_ns)
        line = orjson.dumps({k: v for k, v in e.items() if k != "timestamp"}).decode()
        attrs = [("session_id", session), ("page_url", url)]
        user = _str(e, "user_id", where)
        if user:
            attrs.append(("user_id", user))
        _line(b, limits, where, attrs, line)
        stream = _stream(b, {"source": "rum", "event_type": kind}, limits, where)
        b.add(stream, t, line, severity_number_of("error") if kind == "error" else 0, "", attrs)
    return b.build()


def decode_metrics(body: bytes, now_ms: int) -> SampleBatch:
    items, resource = _doc(body, "metrics", MAX_METRICS)
    extra = {k: _str(resource, n, "resource") for k, n in (("service", "service_name"), ("host", "host"))}
    series: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    for i, m in enumerate(items):
        where = f"metrics[{i}]"
        if not isinstance(m, dict):
            raise InvalidInput(f"{where}: must be an object")
        name = _str(m, "name", where, required=True, max_len=200)
        value = m.get("value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidInput(f"{where}.value: must be a number")
        kind = _str(m, "type", where)
        if kind and kind not in METRIC_TYPES:
            raise InvalidInput(f"{where}.type: one of {', '.join(METRIC_TYPES)}")
        _str(m, "unit", where)
        labels = m.get("labels", {})
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise InvalidInput(f"{where}.labels: must be an object of strings")
        if "__name__" in labels:
            raise InvalidInput(f"{where}.labels: __name__ comes from name")
        full = {**{k: v for k, v in extra.items() if v}, **labels, "__name__": name}
        t = _time_ns(m, "timestamp", where, now_ms * 1_000_000) // 1_000_000
        series.setdefault(tuple(sorted(full.items())), []).append((t, float(value)))
    return SampleBatch.from_series(list(series.items()))


def decode_traces(body: bytes, limits: LogLimits, now_ns: int) -> SpanBatch:
    """``{"traces": [...]}`` (at most 500 spans) -> SpanBatch; see the module docstring."""
    items, resource = _doc(body, "traces", MAX_SPANS)
    default_service = _str(resource, "service_name", "resource")
    res = [(k, v) for k, v in (("service.name", default_service), ("host.name", _str(resource, "host", "resource")),
                               ("deployment.environment", _str(resource, "environment", "resource"))) if v]
    spans: list[Span] = []
    for i, s in enumerate(items):
        where = f"traces[{i}]"
        if not isinstance(s, dict):
            raise InvalidInput(f"{where}: must be an object")
        for name in ("trace_id", "span_id", "name"):
            _str(s, name, where, required=True)
        trace_id = _hex_id(s, "trace_id", where, TRACE_ID_BYTES)
        span_id = _hex_id(s, "span_id", where, SPAN_ID_BYTES)
        for name, raw in (("trace_id", trace_id), ("span_id", span_id)):
            if raw == bytes(len(raw)):
                raise InvalidInput(f"{where}.{name}: must not be all zero")
        name = _str(s, "name", where, required=True, max_len=1000)
        start = _time_ns(s, "start_time", where, now_ns, required=True)
        end = _time_ns(s, "end_time", where, now_ns, required=True)
        if start <= 0:
            raise InvalidInput(f"{where}.start_time: must be after 1970-01-01")
        if end < start:
            raise InvalidInput(f"{where}.end_time: before start_time")
        kind = _str(s, "kind", where) or "unspecified"
        if kind not in SPAN_KINDS:
            raise InvalidInput(f"{where}.kind: one of {', '.join(SPAN_KINDS)}")
        status = _str(s, "status", where) or "unset"
        if status not in STATUS_CODES:
            raise InvalidInput(f"{where}.status: one of {', '.join(STATUS_CODES)}")
        service = _str(s, "service", where, max_len=100) or default_service or UNKNOWN_SERVICE
        attrs = _attributes(s, "attributes", where)
        if attrs:
            check_attributes([k for k, _ in attrs], [v for _, v in attrs], limits, where)
        rkeys = tuple(["service.name", *(k for k, _ in res if k != "service.name")])
        rvals = tuple([service, *(v for k, v in res if k != "service.name")])
        spans.append(Span(
            trace_id=trace_id, span_id=span_id,
            parent_span_id=_hex_id(s, "parent_span_id", where, SPAN_ID_BYTES),
            name=name, kind=SPAN_KINDS.index(kind), start_ns=start, end_ns=end,
            status_code=STATUS_CODES.index(status), status_message=_str(s, "status_message", where, max_len=10_000),
            service_name=service, attr_keys=tuple(k for k, _ in attrs), attr_values=tuple(v for _, v in attrs),
            resource_keys=rkeys, resource_values=rvals))
    return SpanBatch(spans)
