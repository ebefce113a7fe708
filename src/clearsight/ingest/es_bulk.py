"""Elasticsearch ``_bulk`` (NDJSON) -> ``LogBatch`` plus the bulk response items, and the small probe
answers (``GET /``, ``_license``, ``_template``) real shippers send first, as plain data.
Pure: no store or API imports.

Body: pairs of lines, an action line ``{"index":{"_index":"logs","_id":"1"}}`` or ``{"create":{...}}``
followed by the document; blank lines are skipped; the last line may lack its newline. ``_index``
falls back to the URL's index (``POST /<index>/_bulk``). ``delete`` and ``update`` are answered per
item with status 400 (logs are append-only; ``update``'s document line is consumed).

Document -> entry:

- ``@timestamp``: RFC 3339 / ISO 8601 text (no offset means UTC, as Elasticsearch reads it) or a
  number of epoch milliseconds (``strict_date_optional_time||epoch_millis``); absent: ``now_ns``.
- body: ``message`` when it is a string, else ``log``, else the document without ``@timestamp`` as
  compact JSON.
- severity: ``log.level`` (ECS), else ``level``, else ``severity`` (text, and its OTLP number).
- resource: the top-level fields ``host``, ``service``, ``container``, ``kubernetes``, ``cloud``,
  ``agent``, ``orchestrator`` and everything under them, flattened (ECS resource fields).
- attributes: every other field, flattened with ``.`` (``{"http":{"status":200}}`` -> ``http.status``
  = ``200``); strings as is, numbers in JSON form, booleans ``true``/``false``, arrays as compact
  JSON, ``null`` dropped.
- stream labels: ``{index="<_index>"}``.

A document that is not a JSON object, has a bad ``@timestamp``, an over-long body, or too many
attributes gets a per-item error (status 400, Elasticsearch's error ``type`` and a ``reason`` naming
the problem) and is not in the batch; the other items are. Whole-request errors (``EsBulkError``, 400):
a malformed action line, an unknown action, an action without its document, a missing index;
``LimitExceeded`` for entries/streams per request; ``PayloadTooLarge``/``UnsupportedMediaType`` for
the body.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from clearsight.ingest.log_common import (
    LogDecodeError,
    LogLimits,
    check_attributes,
    check_body_size,
    decompress_body,
    parse_rfc3339_ns,
    too_many_entries,
    too_many_streams,
)
from clearsight.model.logs import LogBatch, LogBatchBuilder, severity_number_of
from clearsight.pipeline.errors import LimitExceeded

ES_VERSION = "8.11.0"
LUCENE_VERSION = "9.8.0"
PRODUCT_HEADERS = {"X-Elastic-Product": "Elasticsearch"}
_RESOURCE_ROOTS = frozenset({"host", "service", "container", "kubernetes", "cloud", "agent", "orchestrator"})
_ACTIONS = ("index", "create", "update", "delete")
_BAD_INDEX = re.compile(r'[\\/*?"<>| ,#:A-Z]')
_MAX_DEPTH = 32
_SEVERITY_CACHE: dict[str, int] = {"": 0}
_SHARDS = {"total": 1, "successful": 1, "failed": 0}  # shared by every item (never mutated)


class EsBulkError(LogDecodeError):
    """A malformed ``_bulk`` body (the whole request fails with 400)."""

    def __init__(self, message: str, es_type: str = "illegal_argument_exception") -> None:
        super().__init__(message, reason="invalid_bulk")
        self.es_type = es_type

    def response(self) -> dict[str, Any]:
        """Elasticsearch's error body for this failure."""
        return error_response(self.es_type, self.message, 400)


@dataclass
class BulkResult:
    """The decoded entries and one response item per action, in request order.

    ``entry_items[j]`` is the index in ``items`` of the item entry ``j`` came from, so an API can
    turn items into errors if the write then fails."""

    batch: LogBatch
    items: list[dict[str, Any]]
    entry_items: list[int] = field(default_factory=list)

    @property
    def errors(self) -> bool:
        return any(next(iter(it.values()))["status"] >= 300 for it in self.items)

    def response(self, took_ms: int = 0) -> dict[str, Any]:
        return {"took": took_ms, "errors": self.errors, "items": self.items}


def _id_generator() -> Callable[[], str]:
    """Elasticsearch-like 20-character ids: 14 random characters per request, then a counter."""
    prefix = base64.urlsafe_b64encode(os.urandom(12)).decode()[:14]
    n = itertools.count()
    return lambda: f"{prefix}{next(n):06x}"


def error_response(es_type: str, reason: str, status: int) -> dict[str, Any]:
    cause = {"type": es_type, "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def _item_error(action: str, index: str, doc_id: str, status: int, es_type: str, reason: str) -> dict[str, Any]:
    return {action: {"_index": index, "_id": doc_id, "status": status, "error": {"type": es_type, "reason": reason}}}


def _item_ok(action: str, index: str, doc_id: str, seq: int) -> dict[str, Any]:
    return {action: {"_index": index, "_id": doc_id, "_version": 1, "result": "created",
                     "_shards": _SHARDS, "_seq_no": seq,
                     "_primary_term": 1, "status": 201}}


def _value_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is True:
        return "true"
    if v is False:
        return "false"
    return orjson.dumps(v).decode()


def _flatten(doc: dict[str, Any], prefix: str, out: dict[str, str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ValueError("document is nested too deeply")
    for k, v in doc.items():
        if type(v) is str:
            out[prefix + k] = v
        elif isinstance(v, dict):
            _flatten(v, prefix + k + ".", out, depth + 1)
        elif v is not None:
            out[prefix + k] = _value_text(v)


_MAX_EPOCH_MS = 9_223_372_036_854  # the int64 nanosecond range, in milliseconds


def _timestamp(v: Any) -> int:
    """``@timestamp`` in ns: RFC 3339 text, or epoch milliseconds as a number or a digit string."""
    if isinstance(v, str):
        if not (v.isascii() and v.isdigit()):
            return parse_rfc3339_ns(v, require_offset=False)
        ms: int | float = int(v)
    elif isinstance(v, int | float) and not isinstance(v, bool):
        ms = v
    else:
        raise ValueError(f"{str(v)[:40]!r} is not a date")
    if not -_MAX_EPOCH_MS <= ms <= _MAX_EPOCH_MS:
        raise ValueError(f"epoch milliseconds {str(ms)[:40]} out of range")
    # a float keeps microseconds (what a double holds exactly at today's epoch milliseconds)
    return ms * 1_000_000 if isinstance(ms, int) else round(ms * 1000) * 1000


def _check_index(name: str) -> str:
    """Elasticsearch's index name rules; returns a reason when invalid, "" otherwise."""
    if not name:
        return "index name must not be empty"
    if _BAD_INDEX.search(name):
        return f"invalid index name [{name[:100]}], must be lowercase and must not contain \\, /, *, ?, \", <, >, |, space, ',', #, :"
    if name[0] in "-_+" or name in (".", ".."):
        return f"invalid index name [{name[:100]}], must not start with '_', '-', or '+'"
    if len(name.encode()) > 255:
        return f"invalid index name [{name[:100]}...], index name is too long"
    return ""


def _parse_action(raw: bytes, lineno: int, default_index: str | None) -> tuple[str, str, str, str]:
    """(action, index, id, why the index name is invalid or "") of an action line."""
    try:
        action_doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise EsBulkError(f"Malformed action/metadata line [{lineno}], expected a JSON object: {e}",
                          "x_content_parse_exception") from None
    if not isinstance(action_doc, dict) or len(action_doc) != 1:
        raise EsBulkError(f"Malformed action/metadata line [{lineno}], expected START_OBJECT with "
                          "exactly one action")
    action, meta = next(iter(action_doc.items()))
    if action not in _ACTIONS:
        raise EsBulkError(f"Malformed action/metadata line [{lineno}], expected field [create, delete, "
                          f"index, update] but found [{str(action)[:50]}]")
    if not isinstance(meta, dict):
        raise EsBulkError(f"Malformed action/metadata line [{lineno}], expected an object after [{action}]")
    index = meta.get("_index", default_index)
    if not isinstance(index, str):
        raise EsBulkError(f"Validation Failed: 1: index is missing for the action on line [{lineno}];",
                          "action_request_validation_exception")
    raw_id = meta.get("_id")
    doc_id = raw_id if isinstance(raw_id, str) and raw_id else (str(raw_id) if raw_id else "")
    return action, index, doc_id, _check_index(index)


def decode_bulk(
    body: bytes,
    *,
    now_ns: int,
    default_index: str | None = None,
    content_encoding: str | None = None,
    limits: LogLimits | None = None,
    new_id: Callable[[], str] | None = None,
) -> BulkResult:
    """Decodes a ``_bulk`` body (see the module docstring)."""
    lim = limits or LogLimits()
    new_id = new_id or _id_generator()
    check_body_size(body, lim)
    body = decompress_body(body, content_encoding, lim, EsBulkError)
    lines = body.split(b"\n")
    b = LogBatchBuilder()
    items: list[dict[str, Any]] = []
    entry_items: list[int] = []
    actions: dict[bytes, tuple[str, str, str, str]] = {}
    st = _DocState()
    max_line = lim.max_line_bytes
    i = 0
    nlines = len(lines)
    while i < nlines:
        raw = lines[i]
        i += 1
        if not raw.strip():
            continue
        lineno = i
        cached = actions.get(raw)
        if cached is None:
            cached = actions[raw] = _parse_action(raw, lineno, default_index)
        action, index, doc_id, bad_index = cached
        if action == "delete":
            items.append(_item_error(action, index, doc_id, 400, "illegal_argument_exception",
                                     "Clearsight keeps logs append-only: delete is not supported"))
            continue
        # index, create, update: the next non-blank line is the document
        while i < nlines and not lines[i].strip():
            i += 1
        if i >= nlines:
            raise EsBulkError(f"The bulk request must be terminated by a newline: the [{action}] action on "
                              f"line [{lineno}] has no document line", "action_request_validation_exception")
        source = lines[i]
        i += 1
        if action == "update":
            items.append(_item_error(action, index, doc_id, 400, "illegal_argument_exception",
                                     "Clearsight keeps logs append-only: update is not supported"))
            continue
        doc_id = doc_id or new_id()
        if bad_index:
            items.append(_item_error(action, index, doc_id, 400, "invalid_index_name_exception", bad_index))
            continue
        try:
            doc = orjson.loads(source)
        except orjson.JSONDecodeError as e:
            items.append(_item_error(action, index, doc_id, 400, "document_parsing_exception",
                                     f"[{i}:1] failed to parse: {e}"))
            continue
        if not isinstance(doc, dict):
            items.append(_item_error(action, index, doc_id, 400, "document_parsing_exception",
                                     f"[{i}:1] failed to parse: the document must be a JSON object"))
            continue
        err = _add_doc(b, doc, index, now_ns, lim, max_line, st)
        if err:
            items.append(_item_error(action, index, doc_id, 400, err[0], err[1]))
            continue
        if b.num_streams > lim.max_streams_per_request:
            raise too_many_streams(lim)
        if len(b) > lim.max_entries_per_request:
            raise too_many_entries(lim)
        entry_items.append(len(items))
        items.append(_item_ok(action, index, doc_id, len(entry_items) - 1))
    return BulkResult(b.build(), items, entry_items)


class _DocState:
    """Per-request caches of ``_add_doc``: stream and resource indexes."""

    __slots__ = ("resources", "streams")

    def __init__(self) -> None:
        self.streams: dict[str, int] = {}
        self.resources: dict[tuple[tuple[str, str], ...], int] = {}


def _add_doc(b: LogBatchBuilder, doc: dict[str, Any], index: str, now_ns: int, lim: LogLimits,
             max_line: int, st: _DocState) -> tuple[str, str] | None:
    """Adds one document; returns (error type, reason) instead when it cannot be stored."""
    ts_raw = doc.pop("@timestamp", None)
    try:
        t = now_ns if ts_raw is None else _timestamp(ts_raw)
    except ValueError as e:
        return "document_parsing_exception", f"failed to parse field [@timestamp] of type [date]: {e}"
    msg = doc.get("message")
    if isinstance(msg, str):
        body = doc.pop("message")
    elif isinstance(doc.get("log"), str):
        body = doc.pop("log")
    else:
        body = orjson.dumps(doc).decode()
        doc = {}
    size = len(body)
    if size > max_line // 4:
        size = len(body.encode("utf-8", "surrogatepass"))
        if size > max_line:
            return ("illegal_argument_exception",
                    f"message of {size} bytes exceeds the limit of {max_line} bytes per line (max_line_bytes)")
    flat: dict[str, str] = {}
    res: dict[str, str] = {}
    try:
        for k, v in doc.items():
            target = res if k.partition(".")[0] in _RESOURCE_ROOTS else flat
            if type(v) is str:
                target[k] = v
            elif isinstance(v, dict):
                _flatten(v, k + ".", target, 1)
            elif v is not None:
                target[k] = _value_text(v)
    except ValueError as e:
        return "document_parsing_exception", str(e)
    level = flat.pop("log.level", None) or flat.pop("level", None) or flat.pop("severity", None) or ""
    keys = list(flat)
    values = list(flat.values())
    ridx = 0
    if res:
        rkey = tuple(res.items())
        got = st.resources.get(rkey)
        if got is None:
            try:
                check_attributes(list(res), list(res.values()), lim, "document resource fields")
            except LimitExceeded as e:
                return "illegal_argument_exception", e.message
            got = st.resources[rkey] = b.resource(tuple(sorted(p for p in rkey if p[1] != "")))
        ridx = got
    if len(keys) > lim.max_attributes_per_entry or (
            sum(map(len, keys)) + sum(map(len, values)) > lim.max_attribute_bytes_per_entry // 4):
        try:
            check_attributes(keys, values, lim, "document")
        except LimitExceeded as e:
            return "illegal_argument_exception", e.message
    sidx = st.streams.get(index)
    if sidx is None:
        sidx = st.streams[index] = b.stream((("index", index),))
    sev = _SEVERITY_CACHE.get(level)
    if sev is None:
        sev = severity_number_of(level)
        if len(_SEVERITY_CACHE) < 1024:
            _SEVERITY_CACHE[level] = sev
    b.add_kv(sidx, t, body, sev, b.severity_text_index(level), keys, values, ridx)
    return None


# --- probe answers -------------------------------------------------------------------------------


def root_info(cluster_name: str = "clearsight", node_name: str = "clearsight",
              version: str = ES_VERSION) -> dict[str, Any]:
    """The ``GET /`` answer (Beats, Fluent Bit, Vector and Logstash read ``version.number``)."""
    return {
        "name": node_name,
        "cluster_name": cluster_name,
        "cluster_uuid": "clearsight-0000000000000",
        "version": {
            "number": version,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "clearsight",
            "build_date": "2023-11-04T10:04:57.184859352Z",
            "build_snapshot": False,
            "lucene_version": LUCENE_VERSION,
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }


def license_info() -> dict[str, Any]:
    """The ``GET /_license`` answer: an active basic license (what Beats check before using ILM)."""
    return {
        "license": {
            "status": "active",
            "uid": "00000000-0000-0000-0000-000000000000",
            "type": "basic",
            "issue_date": "2024-01-01T00:00:00.000Z",
            "issue_date_in_millis": 1_704_067_200_000,
            "max_nodes": 1000,
            "max_resource_units": None,
            "issued_to": "clearsight",
            "issuer": "elasticsearch",
            "start_date_in_millis": -1,
        }
    }


def template_answer(name: str) -> dict[str, Any]:
    """The ``GET /_template/<name>`` (and ``_index_template``) answer: the template exists, so
    shippers do not try to install theirs; Clearsight's schema does not depend on mappings."""
    return {name: {"order": 0, "index_patterns": [f"{name}*"], "settings": {}, "mappings": {}, "aliases": {}}}

