"""PII scrubbing of log lines: each match of a sensitive value is replaced by a keyed deterministic
hash ``<kind:hhhhhhhh>`` (HMAC-SHA256 under a server secret, first 8 hex digits), so equal values
still correlate across lines and tenants of one server while the value itself is not stored.

Kinds: ``email``, ``ssn`` (US, ``ddd-dd-dddd`` standing alone, area not 000/666/9xx, group not
00, serial not 0000), ``card`` (13-19 digits, optionally grouped by single spaces or dashes,
standing alone, Luhn-valid), optionally ``ipv4``/``ipv6`` (valid addresses standing alone) and
custom RE2 patterns. All kinds but cards are alternatives of one combined RE2 pattern (cards are a
second pass over its output). The texts of a batch are joined and scanned once per pass, which
finds the texts holding a match; only those are rewritten, one by one (the same result as scanning
each alone). A line without PII costs a DFA pass over its bytes.

"Standing alone" means not glued to letters or digits (``\\b``): ``id4111111111111111`` is not
recognised as a card, ``x 4111 1111 1111 1111.`` is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np
import re2

from clearsight.model.logs import LogBatch
from clearsight.pipeline.log_settings import PiiSettings

_T = TypeVar("_T")
SECRET_FILE = "logs_pii.key"
HASH_HEX = 8

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_BUILTIN: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    "ssn": r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b",
    # Any run of >= 13 digits with single separators; the card inside is found by group windows.
    "card": r"\b[0-9](?:[ \-]?[0-9]){12,}\b",
    "ipv4": rf"\b{_OCTET}(?:\.{_OCTET}){{3}}\b",
    # Candidates (validated with ipaddress; no embedded IPv4 form, no zone ids).
    # Full 8 groups or a :: form standing alone; times such as 12:30:45 are not candidates.
    "ipv6": r"\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}\b|(?:\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::"
            r"(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}\b)?",
}
_JOIN = "\n"
_RE_OPTIONS = re2.Options()
_RE_OPTIONS.max_mem = 64 << 20
_SCAN_OPTIONS = re2.Options()
_SCAN_OPTIONS.max_mem = 64 << 20
_SCAN_OPTIONS.never_capture = True


def _card_layout(text: str, groups: list[str], offsets: list[int], i: int, j: int) -> bool:
    lengths = [len(g) for g in groups[i:j + 1]]
    if not 13 <= sum(lengths) <= 19:
        return False
    if i == j:
        return True
    if len({text[offsets[k] - 1] for k in range(i + 1, j + 1)}) != 1:
        return False  # mixed separators
    return (all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4) or lengths in ([4, 6, 5], [4, 6, 4])


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _ssn_valid(text: str) -> bool:
    area, group, serial = text[:3], text[4:6], text[7:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def load_or_create_secret(configured: str, data_dir: Path) -> bytes:
    """The HMAC key: ``logs.pii_secret`` when set, else ``<data_dir>/logs_pii.key`` (created once,
    32 random bytes hex, mode 0600)."""
    if configured:
        if len(configured.encode()) < 16:
            raise ValueError("logs.pii_secret: must be at least 16 bytes (a guessable key lets hashes be reversed)")
        return configured.encode()
    path = data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        if len(key) < 32:
            raise ValueError(f"{path}: PII hashing key is shorter than 32 bytes; remove it to generate one") from None
        return key
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
        f.flush()
        os.fsync(f.fileno())
    return path.read_bytes().strip()


class PiiScrubber:
    """Replaces the kinds enabled in ``settings`` by ``<kind:hash>`` in bodies (and attribute
    values when ``settings.attributes``). ``scrub_batch`` is a pipeline step body."""

    def __init__(self, settings: PiiSettings, secret: bytes) -> None:
        self.settings = settings
        self._secret = secret
        first = [k for k in _BUILTIN if k != "card" and getattr(settings, k)]
        parts = [f"(?P<{k}>{_BUILTIN[k]})" for k in first]
        parts += [f"(?P<c_{name}>{pattern})" for name, pattern in settings.custom]
        self._kinds = [*first, *(name for name, _ in settings.custom)]
        # Pass 1: every kind but cards; pass 2: cards, over pass 1's output (so a digit run next
        # to an email or SSN is not taken for a card candidate that hides them).
        sources = ["|".join(parts)] if parts else []
        self._pattern = re2.compile(sources[0], _RE_OPTIONS) if parts else None
        self._group_of = [self._pattern.groupindex[k if k in _BUILTIN else f"c_{k}"] for k in self._kinds] \
            if self._pattern is not None else []
        self._card_pattern = re2.compile(_BUILTIN["card"], _RE_OPTIONS) if settings.card else None
        self._pattern_b = re2.compile(sources[0].encode(), _RE_OPTIONS) if parts else None
        self._card_pattern_b = re2.compile(_BUILTIN["card"].encode(), _RE_OPTIONS) if settings.card else None
        self._passes = [p for p in (self._pattern, self._card_pattern) if p is not None]
        if settings.card:
            sources.append(_BUILTIN["card"])
        # The batch scan: the same patterns over the UTF-8 of all texts joined by newlines, ^/$ at
        # every newline, so every text that has a match on its own is inside some match found.
        self._scans = [re2.compile(f"(?m:{src})".encode(), _SCAN_OPTIONS) for src in sources]
        self.token = lru_cache(maxsize=65536)(self._token)
        self._tls = threading.local()  # matches replaced by this thread's current call
        self._lock = threading.Lock()
        self.replacements = 0  # matches replaced since start

    def _token(self, kind: str, value: str) -> str:
        norm = value.lower() if kind == "email" else value
        if kind in ("card", "ssn"):
            norm = value.replace(" ", "").replace("-", "")
        elif kind == "ipv6":
            norm = str(ipaddress.IPv6Address(value))
        mac = hmac.new(self._secret, f"{kind}\x00{norm}".encode(), hashlib.sha256).hexdigest()
        return f"<{kind}:{mac[:HASH_HEX]}>"

    def _card(self, text: str) -> str:
        """The digit run ``text`` (digits and single spaces/dashes, from the card pattern) with each
        Luhn-valid card in it replaced, longest first from the left. A card is one group of 13-19
        digits, or groups joined by one kind of separator in a printed card layout: 4-4-...-(1..4)
        or 4-6-5 / 4-6-4 (so a run of unrelated numbers such as dates or ids next to each other is
        not searched for Luhn-valid combinations). Plain string operations: this runs per match."""
        groups = text.replace("-", " ").split(" ")
        offsets = []
        pos = 0
        for g in groups:
            offsets.append(pos)
            pos += len(g) + 1
        out: list[str] = []
        done = 0
        i = 0
        while i < len(groups):
            found = -1
            for j in range(min(len(groups), i + 5) - 1, i - 1, -1):
                digits = "".join(groups[i:j + 1])
                if _card_layout(text, groups, offsets, i, j) and luhn_valid(digits):
                    found = j
                    break
            if found < 0:
                i += 1
                continue
            out.append(text[done:offsets[i]])
            out.append(self.token("card", digits))
            self._tls.n += 1
            done = offsets[found] + len(groups[found])
            i = found + 1
        if not out:
            return text
        out.append(text[done:])
        return "".join(out)

    def _replace(self, m: re2._Match) -> bytes:
        for kind, g in zip(self._kinds, self._group_of, strict=True):
            if m.start(g) < 0:
                continue
            raw: bytes = m.group(g)
            value = raw.decode()
            if kind == "ssn" and not _ssn_valid(value):
                return raw
            if kind == "ipv6":
                if sum(1 for g in value.split(":") if g) < 2:
                    return raw  # "::", "std::" and the like: not worth hashing as an address
                try:
                    ipaddress.IPv6Address(value)
                except ValueError:
                    return raw
            self._tls.n += 1
            return self.token(kind, value).encode()
        return bytes(m.group(0))

    def _sub(self, text: str) -> str:
        """Both passes over one text, on its UTF-8 (the re2 wrapper's per-match cost is several
        times lower on bytes than on str, where it converts offsets)."""
        data = text.encode()
        if self._pattern_b is not None:
            data = self._pattern_b.sub(self._replace, data)
        if self._card_pattern_b is not None:
            data = self._card_pattern_b.sub(self._replace_card, data)
        return data.decode()

    def _replace_card(self, m: re2._Match) -> bytes:
        return self._card(bytes(m.group(0)).decode()).encode()

    def _counted(self, fn: Callable[[], _T]) -> tuple[_T, int]:
        self._tls.n = 0
        out = fn()
        n: int = self._tls.n
        if n:
            with self._lock:
                self.replacements += n
        return out, n

    def scrub_text(self, text: str) -> str:
        return self._counted(lambda: self._sub(text))[0] if self._passes else text

    def scrub_many(self, texts: list[str]) -> list[str]:
        return self._counted(lambda: self._scrub_many(texts))[0]

    def _scrub_many(self, texts: list[str]) -> list[str]:
        """``[scrub_text(t) for t in texts]`` (the list itself when nothing matched). One scan per
        pass over the joined texts finds the texts holding a match; only those are rewritten."""
        if not self._passes or not texts:
            return texts
        joined = _JOIN.join(texts)
        data = joined.encode()
        starts: list[int] = []
        ends: list[int] = []
        for scan in self._scans:
            for m in scan.finditer(data):
                starts.append(m.start())
                ends.append(m.end())
        if not starts:
            return texts
        sizes = np.fromiter(map(len, texts) if len(data) == len(joined) else (len(t.encode()) for t in texts),
                            dtype=np.int64, count=len(texts))
        bounds = np.cumsum(sizes + 1)  # byte offset just past each text's separator
        first = np.searchsorted(bounds, np.asarray(starts), side="right")
        last = np.searchsorted(bounds, np.maximum(np.asarray(ends) - 1, np.asarray(starts)), side="right")
        out = list(texts)
        for i in sorted({int(k) for a, b in zip(first.tolist(), last.tolist(), strict=True) for k in range(a, b + 1)}):
            if i < len(out):
                out[i] = self._sub(texts[i])
        return out

    def scrub_batch(self, batch: LogBatch) -> LogBatch:
        return self.scrub_batch_counted(batch)[0]

    def scrub_batch_counted(self, batch: LogBatch) -> tuple[LogBatch, int]:
        """The scrubbed batch (``batch`` itself when nothing matched) and the matches replaced."""
        if not self._passes or not len(batch):
            return batch, 0

        def run() -> LogBatch:
            body = self._scrub_many(batch.body)
            values = self._scrub_many(batch.attr_values) if self.settings.attributes else batch.attr_values
            if body is batch.body and values is batch.attr_values:
                return batch
            return dataclasses.replace(batch, body=body, attr_values=values)

        return self._counted(run)


def make_pii_step(scrubber_for: Callable[[str], PiiScrubber | None],
                  on_replaced: Callable[[str, int], None] = lambda _t, _n: None) -> Callable[[str, LogBatch], LogBatch]:
    """A ``LogStep`` scrubbing with the tenant's scrubber (``None``: scrubbing off for it);
    ``on_replaced(tenant, n)`` counts the matches replaced."""

    def step(tenant: str, batch: LogBatch) -> LogBatch:
        scrubber = scrubber_for(tenant)
        if scrubber is None:
            return batch
        out, n = scrubber.scrub_batch_counted(batch)
        if n:
            on_replaced(tenant, n)
        return out

    return step
