"""Agent heartbeats (``POST /api/v1/resources/heartbeat``) from JSON to resources. Pure.

Body (one JSON object, at most ``MAX_BODY_BYTES``)::

    {"id": "host:<hostname>", "kind": "host", "name": "...", "hostname": "...", "os": "...",
     "kernel": "...", "machine_id": "...", "agent_version": "...", "tags": {"k": "v"},
     "containers": [{"id": "...", "name": "...", "image": "...", "state": "..."}]}

``id``, ``kind`` (``host``) and ``hostname`` are required; ``id`` must be ``host:<hostname>``;
``name`` is the agent's ``instance`` label (its series are attributed to the host by it).
Other strings are optional (at most 256 characters); ``tags`` maps label-like names (at most 64)
to strings; ``containers`` holds at most ``MAX_CONTAINERS`` objects with a required ``id``
(``[A-Za-z0-9_.-]``, at most 128 characters). Unknown fields are an error, so a typo or a
contract drift shows at once instead of losing data. Every error is a ``HeartbeatError`` whose
``field`` is the path (``containers[3].id``).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from clearsight.resources.model import SOURCE_AGENT, Resource, make_id

MAX_BODY_BYTES = 256 * 1024
MAX_CONTAINERS = 1000
MAX_TAGS = 64
MAX_TEXT = 256
_FIELDS = frozenset({"id", "kind", "name", "hostname", "os", "kernel", "machine_id", "agent_version", "tags",
                     "containers"})
_CONTAINER_FIELDS = frozenset({"id", "name", "image", "state"})
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}$")
_CONTAINER_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_TAG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


class HeartbeatError(ValueError):
    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


def _text(d: dict[str, Any], key: str, where: str, required: bool = False) -> str:
    v = d.get(key)
    if v is None:
        if required:
            raise HeartbeatError(f"{where}{key}", "is required")
        return ""
    if not isinstance(v, str):
        raise HeartbeatError(f"{where}{key}", "must be a string")
    if len(v) > MAX_TEXT:
        raise HeartbeatError(f"{where}{key}", f"is {len(v)} characters, over the limit of {MAX_TEXT}")
    return v


def _unknown(d: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for k in d:
        if k not in allowed:
            raise HeartbeatError(f"{where}{k}", f"unknown field (known: {', '.join(sorted(allowed))})")


def _tags(v: Any) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise HeartbeatError("tags", "must be an object of strings")
    if len(v) > MAX_TAGS:
        raise HeartbeatError("tags", f"has {len(v)} entries, over the limit of {MAX_TAGS}")
    out: dict[str, str] = {}
    for k, val in v.items():
        if not _TAG_RE.fullmatch(k):
            raise HeartbeatError(f"tags.{k}", "invalid tag name (letters, digits, _ . -; at most 128)")
        if not isinstance(val, str) or len(val) > MAX_TEXT:
            raise HeartbeatError(f"tags.{k}", f"must be a string of at most {MAX_TEXT} characters")
        out[k] = val
    return out


def parse_heartbeat(body: bytes, now_ms: int, interval_ms: int) -> list[Resource]:
    """The host and its containers, seen at ``now_ms`` (raises ``HeartbeatError``)."""
    if len(body) > MAX_BODY_BYTES:
        raise HeartbeatError("", f"body of {len(body)} bytes exceeds the limit of {MAX_BODY_BYTES} bytes")
    try:
        d = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise HeartbeatError("", f"invalid JSON: {e}") from None
    if not isinstance(d, dict):
        raise HeartbeatError("", "a heartbeat must be a JSON object")
    _unknown(d, _FIELDS, "")
    kind = _text(d, "kind", "", required=True)
    if kind != "host":
        raise HeartbeatError("kind", f'must be "host", got {kind!r}')
    hostname = _text(d, "hostname", "", required=True)
    if not _HOSTNAME_RE.fullmatch(hostname):
        raise HeartbeatError("hostname", "invalid hostname (letters, digits, _ . : -)")
    rid = _text(d, "id", "", required=True)
    if rid != make_id("host", hostname):
        raise HeartbeatError("id", f'must be "host:<hostname>" ({make_id("host", hostname)!r}), got {rid!r}')
    tags = _tags(d.get("tags"))
    name = _text(d, "name", "") or hostname  # the agent's `instance` label (default: the hostname)
    host = Resource(
        id=rid, kind="host", name=name, first_seen_ms=now_ms, last_seen_ms=now_ms,
        interval_ms=interval_ms, sources=(SOURCE_AGENT,), hostname=hostname, os=_text(d, "os", ""),
        kernel=_text(d, "kernel", ""), machine_id=_text(d, "machine_id", ""),
        agent_version=_text(d, "agent_version", ""), tags=tags,
        instances=tuple(sorted({hostname, name})))
    out = [host]
    containers = d.get("containers")
    if containers is None:
        return out
    if not isinstance(containers, list):
        raise HeartbeatError("containers", "must be an array")
    if len(containers) > MAX_CONTAINERS:
        raise HeartbeatError("containers", f"has {len(containers)} entries, over the limit of {MAX_CONTAINERS}")
    seen: set[str] = set()
    for i, c in enumerate(containers):
        where = f"containers[{i}]."
        if not isinstance(c, dict):
            raise HeartbeatError(f"containers[{i}]", "must be an object")
        _unknown(c, _CONTAINER_FIELDS, where)
        cid = _text(c, "id", where, required=True)
        if not _CONTAINER_ID_RE.fullmatch(cid):
            raise HeartbeatError(f"{where}id", "invalid container id (letters, digits, _ . -; at most 128)")
        if cid in seen:
            raise HeartbeatError(f"{where}id", f"duplicate container id {cid!r}")
        seen.add(cid)
        out.append(Resource(
            id=make_id("container", cid), kind="container", name=_text(c, "name", where) or cid,
            first_seen_ms=now_ms, last_seen_ms=now_ms, interval_ms=interval_ms, sources=(SOURCE_AGENT,),
            hostname=hostname, image=_text(c, "image", where), state=_text(c, "state", where), parent=rid,
            tags=tags))
    return out
