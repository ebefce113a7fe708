"""Pieces shared by the OTLP decoders (metrics, logs, traces): media types, bounded decompression,
counting a request's entries before it is parsed, parsing a request body into its protobuf message,
AnyValue to string.

Pure: no I/O, no imports from ``store/`` or ``api/``. Every failure is an ``IngestError``.
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

import numpy as np
import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.common.v1 import common_pb2

from clearsight.pipeline.decoded_bytes import grow_current
from clearsight.pipeline.errors import (
    IngestError,
    InvalidInput,
    LimitExceeded,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from clearsight.pipeline.limits import WriteLimits

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
Encoding = Literal["protobuf", "json"]

_PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
_JSON_TYPES = frozenset({"application/json"})

M = TypeVar("M", bound=Message)


class OtlpInvalidInput(InvalidInput):
    """Bad data, with the offending field's path (``resourceMetrics[0].scopeMetrics[1]...``).

    API surfaces put ``field`` into the ``google.rpc.BadRequest`` detail of their error answer.
    """

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}" if field else description)
        self.field = field
        self.description = description


def encoding_of(content_type: str | None) -> Encoding:
    """``protobuf`` or ``json`` from a Content-Type header (parameters such as charset ignored)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _PROTOBUF_TYPES:
        return "protobuf"
    if media in _JSON_TYPES:
        return "json"
    shown = media or "(none)"
    raise UnsupportedMediaType(f"unsupported Content-Type {shown}: OTLP/HTTP accepts {PROTOBUF} and {JSON}")


def media_type_of(encoding: Encoding) -> str:
    return PROTOBUF if encoding == "protobuf" else JSON


def decompress(body: bytes, content_encoding: str | None, limits: WriteLimits) -> bytes:
    """Undoes ``Content-Encoding`` (identity, gzip, deflate) without ever holding more than
    ``limits.max_decompressed_bytes`` of output (a gzip bomb fails with 413, not an OOM)."""
    if len(body) > limits.max_body_bytes:
        raise PayloadTooLarge(
            f"request body of {len(body)} bytes exceeds the limit of {limits.max_body_bytes} bytes"
        )
    enc = (content_encoding or "").strip().lower()
    if enc in ("", "identity"):
        if len(body) > limits.max_decompressed_bytes:
            raise PayloadTooLarge(
                f"request body of {len(body)} bytes exceeds the limit of "
                f"{limits.max_decompressed_bytes} bytes"
            )
        return body
    if enc in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif enc == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise UnsupportedMediaType(
            f"unsupported Content-Encoding {content_encoding!r}: use gzip, deflate or identity"
        )
    return _inflate(body, wbits, limits.max_decompressed_bytes, enc)


INFLATE_CHUNK = 16 << 20  # output inflated per step, held (decoded_bytes) before the next


def _inflate(data: bytes, wbits: int, limit: int, name: str) -> bytes:
    """Inflates ``data`` (one zlib/deflate stream, or gzip members one after another) in steps of at
    most ``INFLATE_CHUNK`` bytes of output, each held against the global cap on decompressed bytes
    (``decoded_bytes.grow_current``) once it exists and before the next is made."""
    out: list[bytes] = []
    size = 0
    rest = data
    while True:
        d = zlib.decompressobj(wbits)
        pending = rest
        while True:
            want = min(INFLATE_CHUNK, limit - size + 1)
            try:
                chunk = d.decompress(pending, want)
            except zlib.error as e:
                raise InvalidInput(f"cannot decompress {name} body: {e}") from None
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"decompressed request body exceeds the limit of {limit} bytes")
            grow_current(len(chunk))
            out.append(chunk)
            pending = d.unconsumed_tail
            # Output stopped at ``want`` with input (or inflater state) left: go on.
            if d.eof or (not pending and len(chunk) < want):
                break
        if not d.eof:
            raise InvalidInput(f"cannot decompress {name} body: truncated stream")
        rest = d.unused_data
        # gzip allows several concatenated members; anything else after the end is an error.
        if not rest or wbits != 16 + zlib.MAX_WBITS:
            if rest:
                raise InvalidInput(f"cannot decompress {name} body: trailing bytes after the stream")
            return b"".join(out)


def parse_message(data: bytes, encoding: Encoding, message_type: type[M]) -> M:
    """Parses the (decompressed) body into ``message_type``: binary protobuf (upb) or OTLP/JSON
    (lowerCamelCase keys, 64-bit integers as strings or numbers, enums as integers or names,
    unknown fields ignored as the OTLP spec requires)."""
    msg = message_type()
    if encoding == "protobuf":
        try:
            msg.ParseFromString(data)
        except Exception as e:
            raise InvalidInput(f"cannot parse protobuf {message_type.DESCRIPTOR.name}: {e}") from None
        return msg
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"JSON body is not valid UTF-8: {e}") from None
    try:
        json_format.Parse(text, msg, ignore_unknown_fields=True)
    except RecursionError:
        raise InvalidInput("JSON body is nested too deeply") from None
    except Exception as e:
        raise InvalidInput(f"cannot parse OTLP/JSON {message_type.DESCRIPTOR.name}: {e}") from None
    return msg


def message_from_bytes(data: bytes, message_type: type[M], error: Callable[[str], IngestError]) -> M:
    """Binary protobuf into ``message_type`` (upb); a failure raises ``error(message)``."""
    msg = message_type()
    try:
        msg.ParseFromString(data)
    except Exception as e:
        raise error(f"cannot parse protobuf {message_type.DESCRIPTOR.name}: {e}") from None
    return msg


def message_from_dict(doc: Any, message_type: type[M], error: Callable[[str], IngestError]) -> M:
    """A loaded OTLP/JSON document (hex ids already rewritten as base64) into ``message_type`` with
    ``json_format.ParseDict`` (unknown fields ignored); a failure raises ``error(message)``."""
    msg = message_type()
    try:
        json_format.ParseDict(doc, msg, ignore_unknown_fields=True)
    except RecursionError:
        raise error("JSON body is nested too deeply") from None
    except (json_format.ParseError, ValueError, TypeError, binascii.Error) as e:
        raise error(f"cannot parse OTLP/JSON {message_type.DESCRIPTOR.name}: {e}") from None
    return msg


def format_float(v: float) -> str:
    """Shortest round-trip positional form (Go's ``FormatFloat(v, 'f', -1, 64)``): 0.005, 1, 250,
    ``+Inf``/``-Inf``/``NaN``. Used for ``le`` and ``quantile`` label values."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return np.format_float_positional(v, unique=True, trim="-")


def any_value_to_str(v: common_pb2.AnyValue) -> str:
    """An attribute value as a label value, per the OpenTelemetry attribute rules for non-OTLP
    protocols: strings as-is, booleans ``true``/``false``, integers in decimal, doubles in their
    shortest round-trip form (``NaN``, ``Infinity``, ``-Infinity``), bytes base64, arrays and
    key/value lists as compact JSON. An empty value is ``""`` (the label is then absent)."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind is None:
        return ""
    if kind == "int_value":
        return str(v.int_value)
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    if kind == "double_value":
        return _double_str(v.double_value)
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    return orjson.dumps(_any_to_json(v, 0)).decode()


def _double_str(d: float) -> str:
    if math.isnan(d):
        return "NaN"
    if math.isinf(d):
        return "Infinity" if d > 0 else "-Infinity"
    if d == int(d) and abs(d) < 1e16:
        return str(int(d)) if d != 0 or math.copysign(1.0, d) > 0 else "-0"
    return repr(d)


_MAX_DEPTH = 32


def _any_to_json(v: common_pb2.AnyValue, depth: int) -> Any:
    kind = v.WhichOneof("value")
    if depth > _MAX_DEPTH:
        raise InvalidInput("attribute value is nested too deeply")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return v.int_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "double_value":
        d = v.double_value
        return d if math.isfinite(d) else _double_str(d)
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    if kind == "array_value":
        return [_any_to_json(x, depth + 1) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_to_json(kv.value, depth + 1) for kv in v.kvlist_value.values}
    return None


# --- counting before parsing ----------------------------------------------------------------------
#
# upb parses a repeated field in one call with the GIL held (25-100 ns an entry), and each entry
# then costs Python work: a few KB of gzip holding millions of empty resource attributes kept an
# ingest worker busy for 20 s and the event loop waiting up to 216 ms (metrics), 0.2-1.0 s (logs,
# traces; bench/hardening.py). So a body over ``COUNT_ABOVE`` bytes is walked first, in its wire
# format, skipping each entry's content: the three signals share their outer shape (request:
# resource_X = 1; resource_X: resource = 1, scope_X = 2; resource: attributes = 1; scope_X:
# scope = 1, entries = 2; scope: attributes = 3), and the walk stops counting past a limit.

# Bodies up to this many bytes are parsed without counting first (at most ~32k entries of 2 bytes).
COUNT_ABOVE = 64 * 1024
# A resource or scope may have at most this many attributes (the decoders' own limits apply after).
MAX_ATTRIBUTES = 10_000
_REQUEST_ENTRIES, _CONTAINER_ENTRIES, _SCOPE_ENTRIES = 1, 2, 2
_RESOURCE, _SCOPE = 1, 1
_RESOURCE_ATTRIBUTES, _SCOPE_ATTRIBUTES = 1, 3


class MalformedWire(Exception):
    """Bytes that are not the protobuf wire format a walk expected."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(the varint at ``pos``, the position after it)."""
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise MalformedWire
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def next_field(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(key, where its value starts, where the next field starts) of the field at ``pos``;
    MalformedWire for a wire type it cannot skip (groups)."""
    key, pos = read_varint(buf, pos)
    wire = key & 7
    if wire == 2:
        size, value = read_varint(buf, pos)
        return key, value, value + size
    if wire == 0:
        return key, pos, read_varint(buf, pos)[1]
    if wire == 1:
        return key, pos, pos + 8
    if wire == 5:
        return key, pos, pos + 4
    raise MalformedWire


def _messages(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of the length-delimited fields of the message in ``buf[start:end]``,
    skipping the others; stops (without error: the parser reports malformed data) at anything it
    cannot read."""
    pos = start
    while pos < end:
        try:
            key, value, after = next_field(buf, pos)
        except MalformedWire:
            return
        if after > end:
            return
        if key & 7 == 2:
            yield key >> 3, value, after
        pos = after


def check_counts(data: bytes, *, entries: str, max_entries: int, limit: str,
                 refuse: Callable[[bool, str], Exception]) -> None:
    """Raises ``refuse(attributes, message)`` for a request of more resources, scopes or
    ``entries`` (metrics, log records, spans) than ``max_entries`` (named ``limit`` in the message;
    ``attributes`` False), or a resource or scope of more than ``MAX_ATTRIBUTES`` attributes
    (``attributes`` True), before it is parsed. A body of at most ``COUNT_ABOVE`` bytes is not
    walked. Malformed bytes are left to the parser."""
    if len(data) <= COUNT_ABOVE:
        return
    counts = {"resources": 0, "scopes": 0, entries: 0}

    def count(what: str) -> None:
        counts[what] += 1
        if counts[what] > max_entries:
            raise refuse(False, f"request has more than {max_entries} {what} (limit {limit})")

    def attributes(a: int, b: int, field: int, what: str) -> None:
        n = 0
        for f, _, _ in _messages(data, a, b):
            if f == field:
                n += 1
                if n > MAX_ATTRIBUTES:
                    raise refuse(True, f"a {what} has more than {MAX_ATTRIBUTES} attributes")

    for f, a, b in _messages(data, 0, len(data)):
        if f != _REQUEST_ENTRIES:
            continue
        count("resources")
        for f2, a2, b2 in _messages(data, a, b):
            if f2 == _RESOURCE:
                attributes(a2, b2, _RESOURCE_ATTRIBUTES, "resource")
            elif f2 == _CONTAINER_ENTRIES:
                count("scopes")
                for f3, a3, b3 in _messages(data, a2, b2):
                    if f3 == _SCOPE:
                        attributes(a3, b3, _SCOPE_ATTRIBUTES, "scope")
                    elif f3 == _SCOPE_ENTRIES:
                        count(entries)


def refuse_entries(attributes: bool, message: str) -> LimitExceeded:
    """``check_counts``' refusal for logs and traces (their limits: entries per request, attributes
    per entry)."""
    return LimitExceeded("attributes_per_entry" if attributes else "entries_per_request", message)
