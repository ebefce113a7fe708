"""Loki push (``POST /loki/api/v1/push``) bodies -> ``LogBatch``. Pure: no store or API imports.

Two encodings, chosen by Content-Type:

- ``application/x-protobuf`` (Loki's default, also used when the header is absent): a snappy
  *block*-compressed ``PushRequest``. The schema is our own minimal one, written from the public
  wire description (field numbers and types only; Loki's .proto is AGPL and is not used):
  ``PushRequest{repeated Stream streams=1}``, ``Stream{string labels=1; repeated Entry entries=2}``,
  ``Entry{Timestamp timestamp=1; bytes line=2; repeated LabelPair structured_metadata=3}``,
  ``Timestamp{int64 seconds=1; int32 nanos=2}``, ``LabelPair{string name=1; string value=2}``;
  other fields (``format``, ``hash``, ``parsed``) are skipped. The compiled walk (``_lokipb``,
  GIL released) decodes canonical bodies straight into columns; anything else (groups, a known
  field with another wire type, invalid UTF-8 in a string field, out-of-range timestamps,
  truncation) is parsed by upb with the same schema, the reference (``decode_protobuf_upb``).
  Lines are read as bytes and decoded as UTF-8 with invalid sequences replaced (Loki does not
  reject them either); label text must be valid UTF-8.
- ``application/json``: ``{"streams":[{"stream":{"job":"x"},"values":[["<ns>","line"],
  ["<ns>","line",{"trace_id":"abc"}]]}]}``; the timestamp is a string of Unix epoch nanoseconds
  (an integer is accepted too), the optional third element is flat string -> string structured
  metadata. ``Content-Encoding: gzip``/``deflate`` is undone first (for either encoding).

Output: ``streams`` are the canonical stream label sets (label names checked, at least one label,
limits on count and lengths), structured metadata goes to the attribute columns in wire order,
``severity_text`` comes from the stream label ``level`` (or ``detected_level``, ``severity``,
``lvl``; else a ``level`` structured metadata entry) with its OTLP number. Timestamps are kept exact (int ns).

Errors: ``LokiPushError`` (400) naming the stream/entry and the problem, ``LimitExceeded`` (400)
for ``LogLimits`` (line size, entries, streams, labels, structured metadata), ``PayloadTooLarge``
(413) for the body or its declared/decompressed size, ``UnsupportedMediaType`` (415). Nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import cramjam
import numpy as np
import orjson
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from clearsight.ingest.log_common import (
    INT64_MAX,
    NS,
    LogDecodeError,
    LogLimits,
    check_attributes,
    check_body_size,
    check_stream_labels,
    decompress_body,
    line_too_long,
    parse_label_set,
    too_many_entries,
    too_many_streams,
)
from clearsight.model.labels import Labels
from clearsight.model.logs import (
    SPAN_ID_BYTES,
    TRACE_ID_BYTES,
    LogBatch,
    LogBatchBuilder,
    severity_number_of,
)
from clearsight.pipeline.decoded_bytes import grow_current
from clearsight.pipeline.errors import PayloadTooLarge, UnsupportedMediaType

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# stream labels read as the severity, first match wins (Loki's level detection looks at the same names)
_LEVEL_LABELS = ("level", "detected_level", "severity", "lvl", "LEVEL", "Level", "SEVERITY", "Severity")


class LokiPushError(LogDecodeError):
    """A malformed Loki push body."""


_native_split: Callable[[bytes, int], Any] | None
try:
    from clearsight.ingest import _lokipb  # type: ignore[attr-defined]

    _native_split = _lokipb.split_push
except ImportError as _e:  # pragma: no cover - depends on the build
    _native_split = None
    log.warning("clearsight.ingest._lokipb is not built (%s): Loki protobuf pushes are decoded by upb "
                "only; reinstall with a C compiler and Cython to build it", _e)

NATIVE_AVAILABLE = _native_split is not None


# --- our own minimal wire schema -----------------------------------------------------------------

_FILE = "clearsight/ingest/loki_push_min.proto"
_PKG = "clearsight.loki_push_min"
_F = descriptor_pb2.FieldDescriptorProto
_SCHEMA: list[tuple[str, list[tuple[str, int, int, bool, str]]]] = [
    ("PushRequest", [("streams", 1, _F.TYPE_MESSAGE, True, "Stream")]),
    ("Stream", [("labels", 1, _F.TYPE_STRING, False, ""), ("entries", 2, _F.TYPE_MESSAGE, True, "Entry")]),
    (
        "Entry",
        [
            ("timestamp", 1, _F.TYPE_MESSAGE, False, "Timestamp"),
            ("line", 2, _F.TYPE_BYTES, False, ""),
            ("structured_metadata", 3, _F.TYPE_MESSAGE, True, "LabelPair"),
        ],
    ),
    ("Timestamp", [("seconds", 1, _F.TYPE_INT64, False, ""), ("nanos", 2, _F.TYPE_INT32, False, "")]),
    ("LabelPair", [("name", 1, _F.TYPE_STRING, False, ""), ("value", 2, _F.TYPE_STRING, False, "")]),
]


@lru_cache(maxsize=1)
def push_request_class() -> type[Message]:
    """The ``PushRequest`` message class of our minimal schema (also used by tests and the bench
    to encode requests)."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_FILE)
    except KeyError:
        fdp = descriptor_pb2.FileDescriptorProto(name=_FILE, package=_PKG, syntax="proto3")
        for name, fields in _SCHEMA:
            m = fdp.message_type.add(name=name)
            for fname, num, ftype, repeated, tname in fields:
                f = m.field.add(name=fname, number=num, type=ftype)
                f.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
                if tname:
                    f.type_name = f".{_PKG}.{tname}"
        pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PKG}.PushRequest"))


def media_kind(content_type: str | None) -> str:
    """``protobuf`` or ``json``; a missing Content-Type means protobuf (as in Loki)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("", PROTOBUF, "application/protobuf"):
        return "protobuf"
    if media == JSON:
        return "json"
    raise UnsupportedMediaType(f"unsupported Content-Type {media}: Loki push accepts {PROTOBUF} and {JSON}")


def decode_push(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    limits: LogLimits | None = None,
) -> LogBatch:
    """Decodes one push request body (see the module docstring)."""
    lim = limits or LogLimits()
    check_body_size(body, lim)
    kind = media_kind(content_type)
    body = decompress_body(body, content_encoding, lim, lambda m: LokiPushError(m, reason="invalid_encoding"))
    if kind == "json":
        return decode_json(body, lim)
    return decode_protobuf(snappy_block_decompress(body, lim), lim)


def snappy_block_decompress(body: bytes, limits: LogLimits) -> bytes:
    """Snappy block format, with the declared length checked against the limit first."""
    n = 0
    shift = 0
    for i in range(min(len(body), 10)):
        b = body[i]
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    else:
        raise LokiPushError("invalid snappy body: missing or truncated length header", reason="invalid_snappy")
    if n > limits.max_decompressed_bytes:
        raise PayloadTooLarge(
            f"snappy body declares {n} decompressed bytes, over the limit of "
            f"{limits.max_decompressed_bytes} bytes"
        )
    grow_current(2 * n)  # the global cap on decompressed bytes: cramjam's buffer and its copy
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as e:
        raise LokiPushError(f"invalid snappy body: {e}", reason="invalid_snappy") from None


def _invalid_label(message: str) -> LokiPushError:
    return LokiPushError(message, reason="invalid_labels")


class _Streams:
    """Per-request stream bookkeeping shared by both encodings."""

    def __init__(self, b: LogBatchBuilder, limits: LogLimits) -> None:
        self.b = b
        self.limits = limits
        self.cache: dict[str, tuple[int, int, int]] = {}

    def stream(self, labels: dict[str, str], where: str) -> tuple[int, int, int]:
        """(stream index, severity number, severity text index) of a stream."""
        if not labels:
            raise LokiPushError(f"{where}: at least one label pair is required per stream", reason="invalid_labels")
        canon: Labels = tuple(sorted((n, v) for n, v in labels.items() if v != ""))
        check_stream_labels(canon, self.limits, where, _invalid_label)
        before = self.b.num_streams
        idx = self.b.stream(canon)
        if self.b.num_streams > before and self.b.num_streams > self.limits.max_streams_per_request:
            raise too_many_streams(self.limits)
        level = ""
        for name in _LEVEL_LABELS:
            level = labels.get(name, "")
            if level:
                break
        return idx, severity_number_of(level) if level else 0, self.b.severity_text_index(level)

    def from_text(self, text: str, where: str) -> tuple[int, int, int]:
        got = self.cache.get(text)
        if got is None:
            try:
                parsed = parse_label_set(text)
            except ValueError as e:
                raise LokiPushError(f"{where}: invalid stream labels {text[:128]!r}: {e}",
                                    reason="invalid_labels") from None
            got = self.cache[text] = self.stream(parsed, where)
        return got


def _meta_level(keys: list[str], values: list[str]) -> str:
    for k, v in zip(keys, values, strict=True):
        if k == "level":
            return v
    return ""


def decode_protobuf(data: bytes, limits: LogLimits) -> LogBatch:
    """Decodes an uncompressed ``PushRequest``: the compiled walk when it is built and the body is
    canonical, else upb."""
    if _native_split is not None:
        parts = _native_split(data, limits.max_entries_per_request)
        if parts == "too_many_entries":
            raise too_many_entries(limits)
        if parts is not None:
            return _from_split(parts, limits)
    return decode_protobuf_upb(data, limits)


def _from_split(parts: tuple[Any, ...], limits: LogLimits) -> LogBatch:
    """The batch from the compiled walk's columns (same checks and result as the upb path)."""
    labels, entry_stream, timestamps, line_bytes, md_counts, md_bytes, lines, md_offsets, md_keys, md_values = parts
    b = LogBatchBuilder()
    streams = _Streams(b, limits)
    occ = [streams.from_text(text, f"streams[{i}]") for i, text in enumerate(labels)]
    n = len(lines)

    def where(j: int) -> str:
        s = int(entry_stream[j])
        return f"streams[{s}].entries[{j - int(np.searchsorted(entry_stream, s))}]"

    over = np.flatnonzero(line_bytes > limits.max_line_bytes)
    if over.size:
        raise line_too_long(int(line_bytes[over[0]]), limits, where(int(over[0])))
    bad = np.flatnonzero((md_counts > limits.max_attributes_per_entry)
                         | (md_bytes > limits.max_attribute_bytes_per_entry))
    if bad.size:
        j = int(bad[0])
        a, z = int(md_offsets[j]), int(md_offsets[j + 1])
        check_attributes(md_keys[a:z], md_values[a:z], limits, where(j))
    occ_arr = np.array(occ, dtype=np.int64).reshape(len(occ), 3)
    sev = occ_arr[:, 1].astype(np.uint8)[entry_stream]
    sev_txt = occ_arr[:, 2].astype(np.int32)[entry_stream]
    for j in np.flatnonzero((md_counts > 0) & (sev == 0)).tolist():
        a, z = int(md_offsets[j]), int(md_offsets[j + 1])
        lvl = _meta_level(md_keys[a:z], md_values[a:z])
        if lvl:
            sev[j] = severity_number_of(lvl)
            sev_txt[j] = b.severity_text_index(lvl)
    shell = b.build()
    return LogBatch(
        streams=shell.streams,
        stream_idx=occ_arr[:, 0].astype(np.int32)[entry_stream],
        timestamps=timestamps,
        severity_number=sev,
        severity_texts=shell.severity_texts,
        severity_text_idx=sev_txt,
        body=lines,
        attr_offsets=md_offsets,
        attr_keys=md_keys,
        attr_values=md_values,
        trace_ids=np.zeros((n, TRACE_ID_BYTES), dtype=np.uint8),
        span_ids=np.zeros((n, SPAN_ID_BYTES), dtype=np.uint8),
        resources=shell.resources,
        resource_idx=np.zeros(n, dtype=np.int32),
    )


def decode_protobuf_upb(data: bytes, limits: LogLimits) -> LogBatch:
    """Decodes an uncompressed ``PushRequest`` with upb (the reference path)."""
    req = push_request_class()()
    try:
        req.ParseFromString(data)
    except Exception as e:
        raise LokiPushError(f"invalid PushRequest protobuf: {e}", reason="invalid_protobuf") from None
    b = LogBatchBuilder()
    streams = _Streams(b, limits)
    max_line = limits.max_line_bytes
    max_entries = limits.max_entries_per_request
    n = 0
    add = b.add_kv
    for si, s in enumerate(req.streams):
        where = f"streams[{si}]"
        sidx, sev, sev_txt = streams.from_text(s.labels, where)
        n += len(s.entries)
        if n > max_entries:
            raise too_many_entries(limits)
        for ei, ent in enumerate(s.entries):
            line = ent.line
            if len(line) > max_line:
                raise line_too_long(len(line), limits, f"{where}.entries[{ei}]")
            ts = ent.timestamp
            nanos = ts.nanos
            if not 0 <= nanos < NS:
                raise LokiPushError(f"{where}.entries[{ei}].timestamp: nanos {nanos} out of range [0, 1e9)",
                                    reason="invalid_timestamp")
            t = ts.seconds * NS + nanos
            if t > INT64_MAX or t < -INT64_MAX - 1:
                raise LokiPushError(f"{where}.entries[{ei}].timestamp: out of the int64 nanosecond range",
                                    reason="invalid_timestamp")
            md = ent.structured_metadata
            if md:
                keys = [p.name for p in md]
                values = [p.value for p in md]
                check_attributes(keys, values, limits, f"{where}.entries[{ei}]")
                if not sev:
                    lvl = _meta_level(keys, values)
                    if lvl:
                        add(sidx, t, line.decode("utf-8", "replace"), severity_number_of(lvl),
                            b.severity_text_index(lvl), keys, values, 0)
                        continue
                add(sidx, t, line.decode("utf-8", "replace"), sev, sev_txt, keys, values, 0)
            else:
                add(sidx, t, line.decode("utf-8", "replace"), sev, sev_txt, [], [], 0)
    return b.build()


def _json_ts(v: Any, where: str) -> int:
    if isinstance(v, str):
        if not v.isascii() or not v.isdigit() or len(v) > 19:
            if not (v.startswith("-") and v[1:].isdigit() and len(v) <= 20):
                raise LokiPushError(f"{where}: timestamp {v[:40]!r} is not a string of Unix epoch nanoseconds",
                                    reason="invalid_timestamp")
        t = int(v)
    elif isinstance(v, int) and not isinstance(v, bool):
        t = v
    else:
        raise LokiPushError(f"{where}: timestamp must be a string of Unix epoch nanoseconds",
                            reason="invalid_timestamp")
    if t > INT64_MAX or t < -INT64_MAX - 1:
        raise LokiPushError(f"{where}: timestamp {t} is out of the int64 nanosecond range",
                            reason="invalid_timestamp")
    return t


def decode_json(data: bytes, limits: LogLimits) -> LogBatch:
    """Decodes a JSON push body."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise LokiPushError(f"invalid JSON push body: {e}", reason="invalid_json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("streams"), list):
        raise LokiPushError("JSON push body must be an object with a \"streams\" array", reason="invalid_json")
    b = LogBatchBuilder()
    streams = _Streams(b, limits)
    max_line = limits.max_line_bytes
    max_entries = limits.max_entries_per_request
    quarter = max_line // 4
    n = 0
    add = b.add_kv
    for si, s in enumerate(doc["streams"]):
        where = f"streams[{si}]"
        if not isinstance(s, dict):
            raise LokiPushError(f"{where}: must be an object", reason="invalid_json")
        labels = s.get("stream")
        if labels is None:
            labels = s.get("labels")
        if isinstance(labels, str):
            sidx, sev, sev_txt = streams.from_text(labels, where)
        elif isinstance(labels, dict):
            if not all(isinstance(v, str) for v in labels.values()):
                raise LokiPushError(f"{where}.stream: label values must be strings", reason="invalid_labels")
            sidx, sev, sev_txt = streams.stream(labels, where)
        else:
            raise LokiPushError(f"{where}.stream: must be an object of label names to string values",
                                reason="invalid_labels")
        values = s.get("values")
        if not isinstance(values, list):
            raise LokiPushError(f"{where}.values: must be an array", reason="invalid_json")
        n += len(values)
        if n > max_entries:
            raise too_many_entries(limits)
        for ei, v in enumerate(values):
            if not isinstance(v, list) or not 2 <= len(v) <= 3:
                raise LokiPushError(f"{where}.values[{ei}]: must be [timestamp, line] or "
                                    "[timestamp, line, structured metadata]", reason="invalid_json")
            t = _json_ts(v[0], f"{where}.values[{ei}]")
            line = v[1]
            if not isinstance(line, str):
                raise LokiPushError(f"{where}.values[{ei}]: line must be a string", reason="invalid_json")
            if len(line) > quarter:
                size = len(line.encode("utf-8", "surrogatepass"))
                if size > max_line:
                    raise line_too_long(size, limits, f"{where}.values[{ei}]")
            if len(v) == 3:
                md = v[2]
                if not isinstance(md, dict) or not all(isinstance(x, str) for x in md.values()):
                    raise LokiPushError(f"{where}.values[{ei}]: structured metadata must be an object of "
                                        "string values", reason="invalid_json")
                keys = list(md.keys())
                vals = list(md.values())
                check_attributes(keys, vals, limits, f"{where}.values[{ei}]")
                if not sev and "level" in md:
                    lvl = md["level"]
                    add(sidx, t, line, severity_number_of(lvl), b.severity_text_index(lvl), keys, vals, 0)
                else:
                    add(sidx, t, line, sev, sev_txt, keys, vals, 0)
            else:
                add(sidx, t, line, sev, sev_txt, [], [], 0)
    return b.build()
