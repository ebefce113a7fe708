"""Events stored as log entries, and back: one ``Event`` is one entry of the log store.

- stream labels: ``event_type`` (the event's ``type``, ``event`` when empty), ``level``, and
  ``origin`` when set: what ``GET /api/v1/events`` filters on through the stream index; an event
  stream is recognised by its ``event_type`` label. A tag of the form ``name=value`` whose name is a
  label name (not ``__``-prefixed, not one of those three) is also a stream label (the first of
  several tags with one name wins; at most ``MAX_TAG_LABELS`` per event): what ``label=name=value``
  filters and label-narrowed roles (``{team="payments"}``, auth/label_scope.py) select on;
- body: ``message``; timestamp: ``timestamp`` (ns); severity: the level's OTLP number, text the level;
- attributes: ``event.id``, ``event.severity``, and when set ``event.source``, ``event.group``,
  ``event.tags`` (JSON array) and ``event.data`` (JSON object, integers exact);
- resource: the event's resource.
"""

from __future__ import annotations

import json
import re

from clearsight.model.labels import make_labels
from clearsight.model.logs import Event, LogBatch, LogBatchBuilder, LogEntry, severity_number_of

EVENT_TYPE_LABEL = "event_type"
DEFAULT_TYPE = "event"
MAX_TAG_LABELS = 8  # name=value tags that become stream labels, per event (bounds the streams an event adds)
_RESERVED = frozenset({EVENT_TYPE_LABEL, "level", "origin"})
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tag_labels(tags: tuple[str, ...]) -> dict[str, str]:
    """The stream labels an event's ``name=value`` tags give (see the module docstring)."""
    out: dict[str, str] = {}
    for t in tags:
        name, sep, value = t.partition("=")
        if (sep and value and name not in out and name not in _RESERVED and not name.startswith("__")
                and _LABEL_NAME.fullmatch(name)):
            out[name] = value
            if len(out) == MAX_TAG_LABELS:
                break
    return out


def events_batch(events: list[Event]) -> LogBatch:
    b = LogBatchBuilder()
    for ev in events:
        labels = {**tag_labels(ev.tags), EVENT_TYPE_LABEL: ev.type or DEFAULT_TYPE, "level": ev.level}
        if ev.origin:
            labels["origin"] = ev.origin
        attrs = [("event.id", ev.id), ("event.severity", ev.severity)]
        if ev.source:
            attrs.append(("event.source", ev.source))
        if ev.group:
            attrs.append(("event.group", ev.group))
        if ev.tags:
            attrs.append(("event.tags", json.dumps(list(ev.tags), separators=(",", ":"))))
        if ev.data:
            attrs.append(("event.data", json.dumps(ev.data, separators=(",", ":"), ensure_ascii=False)))
        b.add(b.stream(make_labels(labels)), ev.timestamp, ev.message, severity_number_of(ev.level), ev.level,
              attrs, resource=b.resource(ev.resource))
    return b.build()


def event_of(e: LogEntry) -> Event:
    """The event an entry written by ``events_batch`` holds."""
    labels = dict(e.stream)
    attrs = dict(e.attributes)
    typ = labels.get(EVENT_TYPE_LABEL, DEFAULT_TYPE)
    return Event(
        id=attrs.get("event.id", ""), message=e.body, level=labels.get("level", e.severity_text),
        severity=attrs.get("event.severity", ""), timestamp=e.timestamp,
        type="" if typ == DEFAULT_TYPE else typ, origin=labels.get("origin", ""),
        source=attrs.get("event.source", ""), group=attrs.get("event.group", ""),
        tags=tuple(json.loads(attrs["event.tags"])) if "event.tags" in attrs else (),
        data=json.loads(attrs["event.data"]) if "event.data" in attrs else {},
        resource=e.resource)


def event_json(ev: Event) -> dict[str, object]:
    """The JSON shape ``GET /api/v1/events`` answers with (timestamp as RFC 3339 with ns and as
    integer ns)."""
    return {"id": ev.id, "message": ev.message, "level": ev.level, "severity": ev.severity,
            "timestamp_ns": str(ev.timestamp), "type": ev.type, "origin": ev.origin, "source": ev.source,
            "group": ev.group, "tags": list(ev.tags), "data": ev.data, "resource": dict(ev.resource)}
