"""Syslog messages (RFC 5424 and RFC 3164) -> ``LogBatch``, and the TCP stream framer (RFC 6587:
octet counting and newline framing). Pure: no sockets, no store or API imports.

``SyslogFramer`` splits a TCP byte stream into messages. Each frame picks its method by its first
byte: a digit means octet counting (``LEN SP MSG``), anything else newline framing (the message runs
to ``LF``; a ``CR`` before it and ``NUL`` bytes at the end are dropped). A frame over
``max_frame_bytes``, or an octet count that is not ``1*DIGIT SP`` or exceeds the limit, raises
``SyslogFramingError`` (the receiver then closes the connection: the stream cannot be resynced).
UDP needs no framer: one datagram is one message.

``parse_message`` reads one message:

- RFC 5424 (``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]``): nanosecond timestamps
  kept exact (``-`` means the receive time), structured data elements to attributes named
  ``<SD-ID>.<PARAM-NAME>`` (escapes ``\\" \\\\ \\]`` undone), ``procid``/``msgid`` attributes, a
  UTF-8 BOM before MSG dropped.
- RFC 3164 (``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG``): the timestamp has no year or zone;
  it is read as UTC in the receive time's year, or the previous year when that would put it more
  than 31 days in the future (a December line received in January). An RFC 3339 timestamp in the
  same place (rsyslog's high-precision legacy format) is accepted too. When the token after the
  timestamp ends with ``:`` or holds ``[``, it is the tag and the hostname is absent (local
  ``logger`` output). ``pid`` becomes the ``procid`` attribute.
- Anything else (no valid ``<PRI>``, or a header that fits neither) is kept, not dropped: the whole
  text is the body, priority 13 (user.notice, RFC 3164 4.3.3), timestamp the receive time.

Entry: stream labels ``host`` (the message's HOSTNAME, else the peer address given by the
receiver), ``app`` (APP-NAME or TAG) and ``facility`` (``kern``, ``user``, ... ``local7``);
``severity_text`` the keyword (``emerg`` ... ``debug``) and ``severity_number`` its OTLP number
(emerg 24, alert 23, crit 21, err 17, warning 13, notice 10, info 9, debug 5); resource
``host.name``. Invalid UTF-8 is replaced (U+FFFD), never rejected.

Errors: ``SyslogFramingError`` from the framer; ``LimitExceeded`` from ``decode_messages`` when a
message is over ``max_line_bytes`` or there are more than ``max_entries_per_request`` messages.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable
from typing import NamedTuple

from clearsight.ingest.log_common import (
    NS,
    LogDecodeError,
    LogLimits,
    check_attributes,
    check_stream_labels,
    line_too_long,
    parse_rfc3339_ns,
    too_many_entries,
)
from clearsight.model.logs import LogBatch, LogBatchBuilder

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
)
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
OTLP_SEVERITY = (24, 23, 21, 17, 13, 10, 9, 5)
DEFAULT_PRI = 13  # user.notice


class SyslogFramingError(LogDecodeError):
    """A TCP syslog stream that cannot be split into messages."""


class SyslogFramer:
    """Incremental RFC 6587 framer for one TCP connection."""

    def __init__(self, max_frame_bytes: int = LogLimits().max_line_bytes) -> None:
        self.max = max_frame_bytes
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Adds received bytes; returns the complete messages now available, in order."""
        self.buf += data
        out: list[bytes] = []
        buf = self.buf
        pos = 0
        n = len(buf)
        while pos < n:
            c = buf[pos]
            if 0x30 <= c <= 0x39:  # octet counting
                sp = buf.find(b" ", pos, min(n, pos + 11))
                if sp < 0:
                    if n - pos >= 11 or not buf[pos:n].isdigit():
                        raise SyslogFramingError("invalid octet count: expected digits then a space",
                                                 reason="invalid_framing")
                    break
                digits = bytes(buf[pos:sp])
                if not digits.isdigit():
                    raise SyslogFramingError(f"invalid octet count {digits[:11]!r}", reason="invalid_framing")
                size = int(digits)
                if size > self.max:
                    raise SyslogFramingError(
                        f"octet-counted frame of {size} bytes exceeds the limit of {self.max} bytes",
                        reason="frame_too_large")
                if n - (sp + 1) < size:
                    break
                out.append(bytes(buf[sp + 1 : sp + 1 + size]))
                pos = sp + 1 + size
            elif c in (0x0A, 0x00, 0x0D, 0x20):  # stray separators between frames
                pos += 1
            else:
                lf = buf.find(b"\n", pos)
                if lf < 0:
                    if n - pos > self.max:
                        raise SyslogFramingError(
                            f"message of more than {self.max} bytes without a newline exceeds the limit",
                            reason="frame_too_large")
                    break
                if lf - pos > self.max:
                    raise SyslogFramingError(
                        f"message of {lf - pos} bytes exceeds the limit of {self.max} bytes",
                        reason="frame_too_large")
                out.append(bytes(buf[pos:lf]).rstrip(b"\r\x00"))
                pos = lf + 1
        del buf[:pos]
        return out

    def close(self) -> list[bytes]:
        """At end of stream: a last newline-framed message without its LF is still a message; a
        partial octet-counted frame is an error."""
        rest = bytes(self.buf).strip(b"\r\n\x00 ")
        self.buf.clear()
        if not rest:
            return []
        if rest[:1].isdigit():
            raise SyslogFramingError("connection closed inside an octet-counted frame", reason="invalid_framing")
        return [rest]


class SyslogMessage(NamedTuple):
    pri: int
    timestamp: int
    hostname: str
    app: str
    procid: str
    msgid: str
    structured_data: tuple[tuple[str, str], ...]
    message: str
    format: str  # "rfc5424", "rfc3164" or "raw"


_PRI = re.compile(r"<(\d{1,3})>")
_R5424 = re.compile(r"1 (\S+) (\S+) (\S+) (\S+) (\S+) ")
_R5424_END = re.compile(r"1 (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\Z")
_SD_ELEMENT = re.compile(r"\[([^\s=\]\"]{1,32})((?:\s+[^\s=\]\"]{1,32}=\"(?:[^\"\\]|\\.)*\")*)\s*\]", re.S)
_SD_PARAM = re.compile(r"([^\s=\]\"]{1,32})=\"((?:[^\"\\]|\\.)*)\"", re.S)
_SD_UNESCAPE = re.compile(r"\\([\"\\\]])")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                        "Nov", "Dec"), start=1)}
_R3164_TS = re.compile(r"([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? ")
_TAG = re.compile(r"([^\s\[\]:]{1,48})(?:\[([^\]]{0,128})\])?:? ?")


def _nil(v: str) -> str:
    return "" if v == "-" else v


def _parse_sd(text: str) -> tuple[tuple[tuple[str, str], ...], str] | None:
    """Structured data at the start of ``text``: (params, rest) or None when malformed."""
    if text.startswith("-"):
        return (), text[2:] if text.startswith("- ") else text[1:]
    params: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text) and text[pos] == "[":
        m = _SD_ELEMENT.match(text, pos)
        if m is None:
            return None
        sdid = m.group(1)
        for p in _SD_PARAM.finditer(m.group(2)):
            v = p.group(2)
            if "\\" in v:
                v = _SD_UNESCAPE.sub(r"\1", v)
            params.append((f"{sdid}.{p.group(1)}", v))
        pos = m.end()
    if pos == 0:
        return None
    rest = text[pos:]
    if rest.startswith(" "):
        rest = rest[1:]
    elif rest:
        return None
    return tuple(params), rest


def _rfc3164_time(m: re.Match[str], now_ns: int) -> int | None:
    month = _MONTHS.get(m.group(1))
    day = int(m.group(2))
    hh, mi, ss = int(m.group(3)), int(m.group(4)), int(m.group(5))
    if month is None or not 1 <= day <= 31 or hh > 23 or mi > 59 or ss > 60:
        return None
    year = _year_of(now_ns)
    for y in (year, year - 1):
        if day > calendar.monthrange(y, month)[1]:
            continue
        t = calendar.timegm((y, month, day, hh, mi, ss, 0, 0, 0)) * NS
        frac = m.group(6)
        if frac:
            t += int(frac.ljust(9, "0"))
        if t <= now_ns + 31 * 86400 * NS:
            return t
    return None


def _year_of(ns: int) -> int:
    return time.gmtime(ns // NS).tm_year


def parse_message(raw: bytes, now_ns: int) -> SyslogMessage:
    """One syslog message (never raises: what fits no format is kept raw)."""
    text = raw.decode("utf-8", "replace").rstrip("\r\n\x00")
    m = _PRI.match(text)
    if m is None or int(m.group(1)) > 191 or (len(m.group(1)) > 1 and m.group(1)[0] == "0"):
        return SyslogMessage(DEFAULT_PRI, now_ns, "", "", "", "", (), text, "raw")
    pri = int(m.group(1))
    rest = text[m.end():]
    if rest.startswith("1 "):
        msg = _parse_5424(pri, rest, now_ns)
        if msg is not None:
            return msg
    msg = _parse_3164(pri, rest, now_ns)
    if msg is not None:
        return msg
    return SyslogMessage(pri, now_ns, "", "", "", "", (), rest, "raw")


def _parse_5424(pri: int, rest: str, now_ns: int) -> SyslogMessage | None:
    h = _R5424.match(rest)
    if h is None:
        h = _R5424_END.match(rest)  # header and SD with nothing after
        if h is None:
            return None
        sd_text = h.group(6)
    else:
        sd_text = rest[h.end():]
    ts_text, host, app, procid, msgid = h.groups()[:5]
    if ts_text == "-":
        t = now_ns
    else:
        try:
            t = parse_rfc3339_ns(ts_text)
        except ValueError:
            return None
    sd = _parse_sd(sd_text)
    if sd is None:
        return None
    params, msg = sd
    if msg.startswith("\ufeff"):
        msg = msg[1:]
    return SyslogMessage(pri, t, _nil(host), _nil(app), _nil(procid), _nil(msgid), params, msg, "rfc5424")


def _parse_3164(pri: int, rest: str, now_ns: int) -> SyslogMessage | None:
    m = _R3164_TS.match(rest)
    if m is not None:
        t = _rfc3164_time(m, now_ns)
        if t is None:
            return None
        after = rest[m.end():]
    else:
        sp = rest.find(" ")
        if sp < 10:
            return None
        try:
            t = parse_rfc3339_ns(rest[:sp])
        except ValueError:
            return None
        after = rest[sp + 1:]
    host = ""
    first, _, remainder = after.partition(" ")
    if first and not first.endswith(":") and "[" not in first and remainder:
        host, after = first, remainder
    tm = _TAG.match(after)
    if tm is None or not (tm.group(0).endswith(": ") or tm.group(0).endswith(":")):
        return SyslogMessage(pri, t, host, "", "", "", (), after, "rfc3164")
    return SyslogMessage(pri, t, host, tm.group(1), tm.group(2) or "", "", (), after[tm.end():], "rfc3164")


def decode_messages(
    messages: Iterable[bytes],
    *,
    now_ns: int,
    peer_host: str = "",
    limits: LogLimits | None = None,
) -> LogBatch:
    """Parses messages (UDP datagrams or framed TCP messages) into one batch."""
    lim = limits or LogLimits()
    b = LogBatchBuilder()
    sev_idx = [b.severity_text_index(s) for s in SEVERITIES]
    streams: dict[tuple[str, int, str], tuple[int, int]] = {}
    n = 0
    for i, raw in enumerate(messages):
        n += 1
        if n > lim.max_entries_per_request:
            raise too_many_entries(lim)
        if len(raw) > lim.max_line_bytes:
            raise line_too_long(len(raw), lim, f"message {i}")
        m = parse_message(raw, now_ns)
        host = m.hostname or peer_host
        fac, sev = divmod(m.pri, 8)
        skey = (m.app, fac, host)
        cached = streams.get(skey)
        if cached is None:
            stream = tuple(p for p in (("app", m.app), ("facility", FACILITIES[fac]), ("host", host)) if p[1])
            check_stream_labels(stream, lim, f"message {i}")
            cached = streams[skey] = (b.stream(stream), b.resource((("host.name", host),)) if host else 0)
        sidx, ridx = cached
        keys: list[str] = []
        values: list[str] = []
        if m.procid:
            keys.append("procid")
            values.append(m.procid)
        if m.msgid:
            keys.append("msgid")
            values.append(m.msgid)
        for k, v in m.structured_data:
            keys.append(k)
            values.append(v)
        if len(keys) > 2:
            check_attributes(keys, values, lim, f"message {i}")
        b.add_kv(sidx, m.timestamp, m.message, OTLP_SEVERITY[sev], sev_idx[sev], keys, values, ridx)
    return b.build()
