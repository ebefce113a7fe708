"""Pieces shared by the log and event decoders: their limits, their error base class, RFC 3339
timestamps with nanoseconds, Prometheus-style label set text and label checks.

Pure: no I/O, no imports from ``store/`` or ``api/``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from clearsight.ingest.otlp_common import decompress
from clearsight.model.labels import Labels
from clearsight.pipeline.errors import IngestError, InvalidInput, LimitExceeded, PayloadTooLarge
from clearsight.pipeline.limits import WriteLimits


@dataclass(frozen=True)
class LogLimits:
    """Per-request limits every log decoder enforces while it decodes (precise errors, nothing
    kept from a request that breaks one). Defaults follow Loki's where Loki has one."""

    max_body_bytes: int = 32 * 1024 * 1024  # the request body as received (compressed)
    # orjson and upb parse a whole body in one call that holds the GIL (~4.5 ms per MB of JSON,
    # ~1.2 ms per MB of protobuf here): 64 MiB bounds that pause to ~0.3 s
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_line_bytes: int = 256 * 1024  # one log line / body / event message, UTF-8 bytes
    max_entries_per_request: int = 1_000_000
    max_streams_per_request: int = 10_000
    max_labels_per_stream: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    max_attributes_per_entry: int = 128  # structured metadata / attributes per entry
    max_attribute_bytes_per_entry: int = 64 * 1024  # their names + values, UTF-8 bytes


class LogDecodeError(InvalidInput):
    """Malformed log or event input (HTTP 400). Each decoder has its own subclass."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message, reason)


def check_body_size(body: bytes, limits: LogLimits) -> None:
    if len(body) > limits.max_body_bytes:
        raise PayloadTooLarge(
            f"request body of {len(body)} bytes exceeds the limit of {limits.max_body_bytes} bytes"
        )


def decompress_body(body: bytes, content_encoding: str | None, limits: LogLimits,
                    error: Callable[[str], IngestError]) -> bytes:
    """Undoes ``Content-Encoding`` (identity, gzip, deflate) within the limits; a corrupt stream
    raises ``error(message)`` (the decoder's own error), an oversize one ``PayloadTooLarge``, an
    unknown encoding ``UnsupportedMediaType``."""
    if not content_encoding or content_encoding.strip().lower() in ("", "identity"):
        return body
    wl = WriteLimits(max_body_bytes=limits.max_body_bytes, max_decompressed_bytes=limits.max_decompressed_bytes)
    try:
        return decompress(body, content_encoding, wl)
    except InvalidInput as e:
        raise error(e.message) from None


def line_too_long(size: int, limits: LogLimits, where: str) -> LimitExceeded:
    return LimitExceeded(
        "line_bytes",
        f"{where}: line of {size} bytes exceeds the limit of {limits.max_line_bytes} bytes per line "
        "(max_line_bytes)",
    )


def too_many_entries(limits: LogLimits) -> LimitExceeded:
    return LimitExceeded(
        "entries_per_request",
        f"request has more than {limits.max_entries_per_request} entries, over the limit of "
        f"{limits.max_entries_per_request} entries per request (max_entries_per_request)",
    )


def too_many_streams(limits: LogLimits) -> LimitExceeded:
    return LimitExceeded(
        "streams_per_request",
        f"request has more than {limits.max_streams_per_request} streams, over the limit of "
        f"{limits.max_streams_per_request} streams per request (max_streams_per_request)",
    )


def check_attributes(keys: list[str], values: list[str], limits: LogLimits, where: str) -> None:
    """Count and total size of one entry's attributes / structured metadata."""
    if len(keys) > limits.max_attributes_per_entry:
        raise LimitExceeded(
            "attributes_per_entry",
            f"{where}: {len(keys)} attributes exceed the limit of {limits.max_attributes_per_entry} "
            "per entry (max_attributes_per_entry)",
        )
    size = sum(map(len, keys)) + sum(map(len, values))
    if size * 4 > limits.max_attribute_bytes_per_entry:
        # len() counts code points (at most 4 UTF-8 bytes each): only encode when it could matter
        size = (sum(len(k.encode("utf-8", "surrogatepass")) for k in keys)
                + sum(len(v.encode("utf-8", "surrogatepass")) for v in values))
        if size > limits.max_attribute_bytes_per_entry:
            raise LimitExceeded(
                "attribute_bytes_per_entry",
                f"{where}: attributes of {size} bytes exceed the limit of "
                f"{limits.max_attribute_bytes_per_entry} bytes per entry (max_attribute_bytes_per_entry)",
            )


_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def _invalid_label(message: str) -> IngestError:
    return LogDecodeError(message, reason="invalid_label")


def check_stream_labels(labels: Labels, limits: LogLimits, where: str,
                        error: Callable[[str], IngestError] = _invalid_label) -> None:
    """Stream labels: valid Prometheus names (else ``error``), lengths and count within limits."""
    if len(labels) > limits.max_labels_per_stream:
        raise LimitExceeded(
            "labels_per_stream",
            f"{where}: stream has {len(labels)} labels, over the limit of {limits.max_labels_per_stream} "
            "(max_labels_per_stream)",
        )
    for n, v in labels:
        if not _LABEL_NAME.match(n):
            raise error(f"{where}: invalid label name {n!r}")
        if len(n) > limits.max_label_name_length:
            raise LimitExceeded(
                "label_name_length",
                f"{where}: label name {n[:64]!r}... is {len(n)} characters, over the limit of "
                f"{limits.max_label_name_length} (max_label_name_length)",
            )
        if len(v) > limits.max_label_value_length:
            raise LimitExceeded(
                "label_value_length",
                f"{where}: value of label {n!r} is {len(v)} characters, over the limit of "
                f"{limits.max_label_value_length} (max_label_value_length)",
            )


_SANITIZE = re.compile(r"[^a-zA-Z0-9_]")


def sanitize_label_name(name: str) -> str:
    """An attribute key as a label name: other characters become ``_``, a leading digit gets a
    ``_`` prefix (``service.name`` -> ``service_name``)."""
    out = _SANITIZE.sub("_", name)
    if not out or out[0].isdigit():
        out = "_" + out
    return out


def canonical(pairs: dict[str, str]) -> Labels:
    """A canonical label set from a name -> value dict (sorted, empty values dropped)."""
    return tuple(sorted((n, v) for n, v in pairs.items() if v != ""))


# --- Prometheus-style label set text: {a="b", c="d"} ---------------------------------------------

_LS_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})', re.S)
_UNESCAPE = re.compile(r'\\(.)', re.S)
_ESC = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "r": "\r"}


def _unescape(m: re.Match[str]) -> str:
    c = m.group(1)
    return _ESC.get(c, "\\" + c)


def parse_label_set(text: str) -> dict[str, str]:
    """Parses ``{a="b", c="d"}`` (Loki's stream label text) into a dict. Raises ``ValueError``
    naming the problem and its position."""
    s = text.strip()
    if not s.startswith("{"):
        raise ValueError("label set must start with '{'")
    out: dict[str, str] = {}
    pos = 1
    if s[1:].strip() == "}":
        return out
    n = len(s)
    while True:
        m = _LS_PAIR.match(s, pos)
        if m is None:
            raise ValueError(f"invalid label set syntax at character {pos}")
        name, value = m.group(1), m.group(2)
        if "\\" in value:
            value = _UNESCAPE.sub(_unescape, value)
        if name in out:
            raise ValueError(f"duplicate label name {name!r}")
        out[name] = value
        pos = m.end()
        if m.group(3) == "}":
            if s[pos:].strip():
                raise ValueError(f"unexpected text after '}}' at character {pos}")
            return out
        if pos >= n:
            raise ValueError("label set is not closed with '}'")


# --- timestamps ----------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?\Z"
)
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
NS = 1_000_000_000
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)


@lru_cache(maxsize=4096)
def _days(y: int, mo: int, d: int) -> int:
    return _dt.date(y, mo, d).toordinal() - _EPOCH_ORDINAL


_TAIL = re.compile(r"(?:\.(\d{1,30}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z")


@lru_cache(maxsize=8192)
def _prefix_seconds(prefix: str) -> int:
    """Seconds of a validated ``YYYY-MM-DDTHH:MM:SS`` prefix (UTC)."""
    return parse_rfc3339_slow(prefix + "Z") // NS


def parse_rfc3339_ns(text: str, *, require_offset: bool = True) -> int:
    """RFC 3339 / ISO 8601 date-time to int nanoseconds since the epoch, exact to the nanosecond
    (digits past the ninth are dropped). ``require_offset=False`` accepts a missing offset as UTC.
    Raises ``ValueError`` naming the problem.

    Fast path: ``YYYY-MM-DDTHH:MM:SS[.digits](Z|+HH:MM|-HH:MM)``, with the seconds of each distinct
    date-time prefix computed (and validated) once and cached; everything else, and every error,
    goes through ``parse_rfc3339_slow``."""
    if len(text) >= 20 and text[10] in "Tt" and text[4] == "-" and text[:19].isascii():
        m = _TAIL.match(text, 19)
        if m is not None:
            frac, z, sign, ohs, oms = m.groups()
            if z is not None or (int(ohs) <= 23 and int(oms) <= 59):
                try:
                    secs = _prefix_seconds(text[:19])
                except ValueError:
                    return parse_rfc3339_slow(text, require_offset=require_offset)
                if sign is not None:
                    off = int(ohs) * 3600 + int(oms) * 60
                    secs -= off if sign == "+" else -off
                ns = secs * NS + (int(frac[:9].ljust(9, "0")) if frac else 0)
                if INT64_MIN <= ns <= INT64_MAX:
                    return ns
    return parse_rfc3339_slow(text, require_offset=require_offset)


def parse_rfc3339_slow(text: str, *, require_offset: bool = True) -> int:
    """The reference parser behind ``parse_rfc3339_ns`` (one regex, no cache)."""
    m = _RFC3339.match(text.strip())
    if m is None:
        raise ValueError(f"invalid RFC 3339 timestamp {text[:64]!r}")
    ys, mos, ds, hhs, mis, sss, frac, z, sign, ohs, oms = m.groups()
    if z is None and sign is None and require_offset:
        raise ValueError(f"timestamp {text[:64]!r} has no time zone offset")
    try:
        days = _days(int(ys), int(mos), int(ds))
    except ValueError as e:
        raise ValueError(f"invalid date in timestamp {text[:64]!r}: {e}") from None
    hh, mi, ss = int(hhs), int(mis), int(sss)
    if hh > 23 or mi > 59 or ss > 60:
        raise ValueError(f"invalid time of day in timestamp {text[:64]!r}")
    secs = days * 86400 + hh * 3600 + mi * 60 + ss
    if sign is not None:
        oh, om = int(ohs), int(oms)
        if oh > 23 or om > 59:
            raise ValueError(f"invalid time zone offset in timestamp {text[:64]!r}")
        off = oh * 3600 + om * 60
        secs -= off if sign == "+" else -off
    ns = secs * NS + (int(frac[:9].ljust(9, "0")) if frac else 0)
    if not INT64_MIN <= ns <= INT64_MAX:
        raise ValueError(f"timestamp {text[:64]!r} is out of range")
    return ns
