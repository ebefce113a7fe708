"""Events (the Vigilant design) from JSON -> ``Event`` objects. Pure: no store or API imports.

Body: one event object, an array of them, or ``{"events": [...]}``. Fields:

============  ========  =========================================================================
field         required  accepted
============  ========  =========================================================================
id            no        non-empty string up to 128 characters; assigned (a UUID) when absent/null
message       yes       string, at most ``max_line_bytes`` UTF-8 bytes
level         no        ``DEBUG``, ``INFO``, ``WARN``, ``ERROR`` (any case; ``WARNING`` reads as
                        ``WARN``); default ``INFO``
severity      no        ``low``, ``medium``, ``high``, ``critical`` (any case); default from the
                        level: DEBUG/INFO low, WARN medium, ERROR high
timestamp     no        RFC 3339 string (nanoseconds kept) or integer Unix nanoseconds; default
                        the receive time
origin        no        string up to 256 characters (also ``source``, ``type``, ``group``)
tags          no        array of strings (at most 64, each up to 256 characters)
data          no        any JSON object, kept as is (integers exact); at most
                        ``max_attribute_bytes_per_entry`` bytes as compact JSON
resource      no        object of string values (host, container, pod...)
============  ========  =========================================================================

``type`` is free text: the PulseSight types ``network_flow``, ``process_spawn``, ``file_access``
(and ``falco_alert``, see ``ingest/falco.py``) are ordinary values. Unknown fields are an error (a
typo would otherwise lose data silently). Every validation error is an ``EventValidationError``
whose ``field`` is the path (``events[2].level``); ``LimitExceeded`` for the number of events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson

from clearsight.ingest.log_common import (
    INT64_MAX,
    LogDecodeError,
    LogLimits,
    check_body_size,
    parse_rfc3339_ns,
    too_many_entries,
)
from clearsight.model.logs import EVENT_LEVELS, EVENT_SEVERITIES, Event

MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 256
MAX_TAGS = 64
_LEVEL_ALIASES = {"WARNING": "WARN"}
_DEFAULT_SEVERITY = {"DEBUG": "low", "INFO": "low", "WARN": "medium", "ERROR": "high"}
_FIELDS = frozenset({"id", "message", "level", "severity", "timestamp", "origin", "source", "type", "group",
                     "tags", "data", "resource"})


class EventValidationError(LogDecodeError):
    """An invalid event; ``field`` is the path of the offending field."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}" if field else description, reason="invalid_event")
        self.field = field
        self.description = description


def new_event_id() -> str:
    return str(uuid.uuid4())


def _text(d: dict[str, Any], key: str, where: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    v = d.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise EventValidationError(f"{where}.{key}", "must be a string")
    if len(v) > max_chars:
        raise EventValidationError(f"{where}.{key}", f"is {len(v)} characters, over the limit of {max_chars}")
    return v


def parse_timestamp(v: Any, field: str, now_ns: int) -> int:
    if v is None:
        return now_ns
    if isinstance(v, str):
        try:
            return parse_rfc3339_ns(v)
        except ValueError as e:
            raise EventValidationError(field, str(e)) from None
    if isinstance(v, int) and not isinstance(v, bool):
        if not -INT64_MAX - 1 <= v <= INT64_MAX:
            raise EventValidationError(field, f"{v} is out of the int64 nanosecond range")
        return v
    raise EventValidationError(field, "must be an RFC 3339 string or integer Unix nanoseconds")


def event_from_dict(
    d: Any, where: str, *, now_ns: int, limits: LogLimits, new_id: Callable[[], str] = new_event_id
) -> Event:
    """Validates one event object (also the entry for the gRPC surface's decoded messages)."""
    if not isinstance(d, dict):
        raise EventValidationError(where, "an event must be a JSON object")
    if not _FIELDS.issuperset(d):
        unknown = next(k for k in d if k not in _FIELDS)
        raise EventValidationError(f"{where}.{unknown}", "unknown field")
    msg = d.get("message")
    if not isinstance(msg, str):
        raise EventValidationError(f"{where}.message", "is required and must be a string")
    if len(msg) > limits.max_line_bytes // 4:
        size = len(msg.encode("utf-8", "surrogatepass"))
        if size > limits.max_line_bytes:
            raise EventValidationError(f"{where}.message", f"is {size} bytes, over the limit of "
                                       f"{limits.max_line_bytes} bytes (max_line_bytes)")
    eid = d.get("id")
    if eid is None:
        eid = new_id()
    elif not isinstance(eid, str) or not eid or len(eid) > MAX_ID_CHARS:
        raise EventValidationError(f"{where}.id", f"must be a non-empty string of at most {MAX_ID_CHARS} characters")
    level_raw = d.get("level")
    if level_raw is None:
        level = "INFO"
    else:
        level = _LEVEL_ALIASES.get(str(level_raw).upper(), str(level_raw).upper()) if isinstance(level_raw, str) else ""
        if level not in EVENT_LEVELS:
            raise EventValidationError(f"{where}.level", f"must be one of {', '.join(EVENT_LEVELS)}")
    sev_raw = d.get("severity")
    if sev_raw is None:
        severity = _DEFAULT_SEVERITY[level]
    else:
        severity = sev_raw.lower() if isinstance(sev_raw, str) else ""
        if severity not in EVENT_SEVERITIES:
            raise EventValidationError(f"{where}.severity", f"must be one of {', '.join(EVENT_SEVERITIES)}")
    tags_raw = d.get("tags")
    tags: tuple[str, ...] = ()
    if tags_raw is not None:
        if not isinstance(tags_raw, list):
            raise EventValidationError(f"{where}.tags", "must be an array of strings")
        if len(tags_raw) > MAX_TAGS:
            raise EventValidationError(f"{where}.tags", f"has {len(tags_raw)} tags, over the limit of {MAX_TAGS}")
        for i, t in enumerate(tags_raw):
            if not isinstance(t, str) or len(t) > MAX_TEXT_CHARS:
                raise EventValidationError(f"{where}.tags[{i}]", f"must be a string of at most {MAX_TEXT_CHARS} characters")
        tags = tuple(tags_raw)
    data = d.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise EventValidationError(f"{where}.data", "must be a JSON object")
    elif data:
        try:
            size = len(orjson.dumps(data))
        except TypeError as e:  # only reachable from callers passing Python objects (gRPC surface)
            raise EventValidationError(f"{where}.data", f"must hold JSON values only: {e}") from None
        if size > limits.max_attribute_bytes_per_entry:
            raise EventValidationError(f"{where}.data", f"is {size} bytes as JSON, over the limit of "
                                       f"{limits.max_attribute_bytes_per_entry} (max_attribute_bytes_per_entry)")
    res_raw = d.get("resource")
    resource: tuple[tuple[str, str], ...] = ()
    if res_raw is not None:
        if not isinstance(res_raw, dict) or not all(isinstance(v, str) for v in res_raw.values()):
            raise EventValidationError(f"{where}.resource", "must be an object of string values")
        resource = tuple(sorted((k, v) for k, v in res_raw.items() if v != ""))
    return Event(
        id=eid,
        message=msg,
        level=level,
        severity=severity,
        timestamp=parse_timestamp(d.get("timestamp"), f"{where}.timestamp", now_ns),
        type=_text(d, "type", where),
        origin=_text(d, "origin", where),
        source=_text(d, "source", where),
        group=_text(d, "group", where),
        tags=tags,
        data=data,
        resource=resource,
    )


def decode_events(
    body: bytes,
    *,
    now_ns: int,
    limits: LogLimits | None = None,
    new_id: Callable[[], str] = new_event_id,
) -> list[Event]:
    """Decodes ``POST /api/v1/events`` bodies (see the module docstring)."""
    lim = limits or LogLimits()
    check_body_size(body, lim)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise EventValidationError("", f"invalid JSON: {e}") from None
    if isinstance(doc, dict) and "events" in doc and "message" not in doc:
        items = doc["events"]
        prefix = "events"
        if not isinstance(items, list):
            raise EventValidationError("events", "must be an array of events")
    elif isinstance(doc, list):
        items, prefix = doc, "events"
    else:
        return [event_from_dict(doc, "event", now_ns=now_ns, limits=lim, new_id=new_id)]
    if len(items) > lim.max_entries_per_request:
        raise too_many_entries(lim)
    return [event_from_dict(d, f"{prefix}[{i}]", now_ns=now_ns, limits=lim, new_id=new_id)
            for i, d in enumerate(items)]
