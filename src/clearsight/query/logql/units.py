"""Value conversions LogQL uses for label filters and ``unwrap``: Go durations (``1m30s``,
``250ms``, ``1.5h``: Go's ``time.ParseDuration``, as seconds) and byte sizes (``20MB`` = 20e6,
``1KiB`` = 1024, as go-humanize's ``ParseBytes``)."""

from __future__ import annotations

import re

_GO_DUR = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_BYTES = re.compile(r"\s*([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*")
_BYTE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "ki": 2**10, "kib": 2**10, "m": 10**6, "mb": 10**6,
               "mi": 2**20, "mib": 2**20, "g": 10**9, "gb": 10**9, "gi": 2**30, "gib": 2**30, "t": 10**12,
               "tb": 10**12, "ti": 2**40, "tib": 2**40, "p": 10**15, "pb": 10**15, "pi": 2**50, "pib": 2**50,
               "e": 10**18, "eb": 10**18, "ei": 2**60, "eib": 2**60}


def parse_go_duration(text: str) -> float | None:
    """Go ``time.ParseDuration`` in seconds, or None. ``0`` alone is allowed, as in Go."""
    s = text.strip()
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        return None
    pos = 0
    total = 0.0
    while pos < len(s):
        m = _GO_DUR.match(s, pos)
        if m is None:
            return None
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def parse_bytes(text: str) -> float | None:
    """go-humanize ``ParseBytes``: ``42``, ``42MB``, ``42 mib``, ``1.5GiB``; None when invalid."""
    m = _BYTES.fullmatch(text)
    if m is None:
        return None
    unit = _BYTE_UNITS.get(m.group(2).lower())
    if unit is None:
        return None
    return float(m.group(1)) * unit
