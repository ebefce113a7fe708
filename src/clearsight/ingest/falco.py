"""Falco / falcosidekick JSON alerts -> ``Event`` objects (``type: falco_alert``). Pure.

Body: one alert object (falcosidekick's webhook output, Falco's ``http_output``), an array of them,
or newline-delimited alerts (Falco's ``json_output`` to a file or stdout). Alert fields (Falco's
``formats.cpp`` / falcosidekick's ``FalcoPayload``): ``output``, ``priority``, ``rule`` and ``time``
(RFC 3339 with nanoseconds) are required; ``output_fields`` (object), ``source``, ``tags`` (array
of strings), ``hostname``, ``uuid`` are optional.

Mapping to ``Event``:

- ``id``: ``uuid`` when present, else assigned; ``message``: ``output``; ``timestamp``: ``time``
  (exact ns); ``type``: ``falco_alert``; ``origin``: ``falco``; ``source``: ``source``
  (``syscall``, ``k8s_audit``...); ``group``: the rule name; ``tags``: ``tags``.
- ``priority`` (any case) -> ``severity``: Emergency, Alert, Critical -> critical; Error -> high;
  Warning -> medium; Notice, Informational/Info, Debug -> low. -> ``level``: Emergency..Error ->
  ERROR, Warning -> WARN, Notice/Informational/Info -> INFO, Debug -> DEBUG.
- ``resource``: ``host.name`` from ``hostname``; from ``output_fields``: ``container.id``,
  ``container.name``, ``container.image.repository`` (as ``container.image.name``),
  ``k8s.ns.name`` (as ``k8s.namespace.name``), ``k8s.pod.name``; Falco's ``<NA>`` and null values
  are left out.
- ``data``: ``{"rule", "priority", "output_fields"}`` with ``output_fields`` exactly as sent: field
  names with dots stay keys, ``evt.time`` stays an exact integer of nanoseconds (it may differ from
  ``time``), nulls are kept.

Errors: ``FalcoError`` (400) naming the alert and field (``alerts[1].priority``); integers outside
the 64-bit range are rejected by the JSON reader with the same error; ``LimitExceeded`` for
``max_entries_per_request``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from clearsight.ingest.events import EventValidationError, new_event_id, parse_timestamp
from clearsight.ingest.log_common import LogLimits, check_body_size, too_many_entries
from clearsight.model.logs import FALCO_ALERT, Event

# priority -> (level, severity)
PRIORITIES: dict[str, tuple[str, str]] = {
    "emergency": ("ERROR", "critical"),
    "alert": ("ERROR", "critical"),
    "critical": ("ERROR", "critical"),
    "error": ("ERROR", "high"),
    "warning": ("WARN", "medium"),
    "notice": ("INFO", "low"),
    "informational": ("INFO", "low"),
    "info": ("INFO", "low"),
    "debug": ("DEBUG", "low"),
}
RESOURCE_FIELDS: dict[str, str] = {
    "container.id": "container.id",
    "container.name": "container.name",
    "container.image.repository": "container.image.name",
    "k8s.ns.name": "k8s.namespace.name",
    "k8s.pod.name": "k8s.pod.name",
}


class FalcoError(EventValidationError):
    """An invalid Falco alert; ``field`` is the path of the offending field."""


def _req_str(d: dict[str, Any], key: str, where: str) -> str:
    v = d.get(key)
    if not isinstance(v, str):
        raise FalcoError(f"{where}.{key}", "is required and must be a string")
    return v


def alert_to_event(d: Any, where: str, *, limits: LogLimits, new_id: Callable[[], str] = new_event_id) -> Event:
    if not isinstance(d, dict):
        raise FalcoError(where, "an alert must be a JSON object")
    output = _req_str(d, "output", where)
    if len(output.encode("utf-8", "surrogatepass")) > limits.max_line_bytes:
        raise FalcoError(f"{where}.output", f"is over the limit of {limits.max_line_bytes} bytes (max_line_bytes)")
    priority = _req_str(d, "priority", where)
    mapped = PRIORITIES.get(priority.lower())
    if mapped is None:
        raise FalcoError(f"{where}.priority", f"unknown priority {priority[:40]!r}: expected one of Emergency, "
                         "Alert, Critical, Error, Warning, Notice, Informational, Debug")
    rule = _req_str(d, "rule", where)
    time_raw = d.get("time")
    if not isinstance(time_raw, str):
        raise FalcoError(f"{where}.time", "is required and must be an RFC 3339 string")
    try:
        ts = parse_timestamp(time_raw, f"{where}.time", 0)
    except EventValidationError as e:
        raise FalcoError(e.field, e.description) from None
    fields = d.get("output_fields")
    if fields is None:
        fields = {}
    elif not isinstance(fields, dict):
        raise FalcoError(f"{where}.output_fields", "must be an object")
    source = d.get("source")
    if source is not None and not isinstance(source, str):
        raise FalcoError(f"{where}.source", "must be a string")
    tags = d.get("tags")
    if tags is None:
        tags = []
    elif not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise FalcoError(f"{where}.tags", "must be an array of strings")
    host = d.get("hostname")
    if host is not None and not isinstance(host, str):
        raise FalcoError(f"{where}.hostname", "must be a string")
    uid = d.get("uuid")
    if uid is not None and (not isinstance(uid, str) or not uid):
        raise FalcoError(f"{where}.uuid", "must be a non-empty string")
    res: dict[str, str] = {}
    if host:
        res["host.name"] = host
    for src, dst in RESOURCE_FIELDS.items():
        v = fields.get(src)
        if v is not None and v != "<NA>" and v != "":
            res[dst] = v if isinstance(v, str) else orjson.dumps(v).decode()
    level, severity = mapped
    return Event(
        id=uid or new_id(),
        message=output,
        level=level,
        severity=severity,
        timestamp=ts,
        type=FALCO_ALERT,
        origin="falco",
        source=source or "",
        group=rule,
        tags=tuple(tags),
        data={"rule": rule, "priority": priority, "output_fields": fields},
        resource=tuple(sorted(res.items())),
    )


def decode_falco(
    body: bytes, *, limits: LogLimits | None = None, new_id: Callable[[], str] = new_event_id
) -> list[Event]:
    """Decodes one alert, an array of alerts, or NDJSON alerts."""
    lim = limits or LogLimits()
    check_body_size(body, lim)
    stripped = body.strip()
    docs: list[Any]
    try:
        doc = orjson.loads(stripped)
        docs = doc if isinstance(doc, list) else [doc]
    except orjson.JSONDecodeError as e:
        lines = [line for line in stripped.split(b"\n") if line.strip()]
        if len(lines) < 2:
            raise FalcoError("", f"invalid JSON: {e}") from None
        docs = []
        for i, line in enumerate(lines):
            try:
                docs.append(orjson.loads(line))
            except orjson.JSONDecodeError as le:
                raise FalcoError(f"alerts[{i}]", f"invalid JSON on line {i + 1}: {le}") from None
    if len(docs) > lim.max_entries_per_request:
        raise too_many_entries(lim)
    return [alert_to_event(d, f"alerts[{i}]", limits=lim, new_id=new_id) for i, d in enumerate(docs)]
