"""PII scrubbing of log lines: each match of a sensitive value is replaced by a keyed deterministic
hash ``<kind:hhhhhhhh>`` (HMAC-SHA256 under a server secret, first 8 hex digits), so equal values
still correlate across lines and tenants of one server while the value itself is not stored.

Kinds: ``email``, ``ssn`` (US, ``ddd-dd-dddd`` standing alone, area not 000/666/9xx, group not
00, serial not 0000), ``card`` (13-19 digits, optionally grouped by single spaces or dashes,
standing alone, Luhn-valid), optionally ``ipv4``/``ipv6`` (valid addresses standing alone) and
custom RE2 patterns. All kinds are alternatives of one combined RE2 pattern, and the bodies of a
batch are joined and scanned in one call (split back afterwards; a batch where that is not safe is
scanned line by line), so a line without PII costs one DFA pass over its bytes.

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
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import re2

from clearsight.model.logs import LogBatch
from clearsight.pipeline.log_settings import PiiSettings

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
    "ipv6": r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}",
}
_JOIN = "\n"
_SEPS = re2.compile(r"[ \-]")
_DIGITS = re2.compile(r"[0-9]+")
_RE_OPTIONS = re2.Options()
_RE_OPTIONS.max_mem = 64 << 20


def _card_layout(text: str, groups: list[tuple[int, int]]) -> bool:
    lengths = [b - a for a, b in groups]
    if not 13 <= sum(lengths) <= 19:
        return False
    if len(groups) == 1:
        return True
    if len({text[groups[k][0] - 1] for k in range(1, len(groups))}) != 1:
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
        self._pattern = re2.compile("|".join(parts), _RE_OPTIONS) if parts else None
        self._group_of = [self._pattern.groupindex[k if k in _BUILTIN else f"c_{k}"] for k in self._kinds] \
            if self._pattern is not None else []
        self._card_pattern = re2.compile(_BUILTIN["card"], _RE_OPTIONS) if settings.card else None
        self._passes = [p for p in (self._pattern, self._card_pattern) if p is not None]
        self.token = lru_cache(maxsize=65536)(self._token)
        self.replacements = 0  # matches replaced since start (read by the caller's counter)

    def _token(self, kind: str, value: str) -> str:
        norm = value.lower() if kind == "email" else value
        if kind in ("card", "ssn"):
            norm = _SEPS.sub("", value)
        elif kind == "ipv6":
            norm = str(ipaddress.IPv6Address(value))
        mac = hmac.new(self._secret, f"{kind}\x00{norm}".encode(), hashlib.sha256).hexdigest()
        return f"<{kind}:{mac[:HASH_HEX]}>"

    def _card(self, text: str) -> str:
        """The digit run ``text`` with each Luhn-valid card in it replaced, longest first from the
        left. A card is one group of 13-19 digits, or groups joined by one kind of separator in a
        printed card layout: 4-4-...-(1..4) or 4-6-5 / 4-6-4 (so a run of unrelated numbers such
        as dates or ids next to each other is not searched for Luhn-valid combinations)."""
        bounds = [(m.start(), m.end()) for m in _DIGITS.finditer(text)]
        out: list[str] = []
        pos = 0
        i = 0
        while i < len(bounds):
            found = -1
            digits = ""
            for j in range(min(len(bounds), i + 5) - 1, i - 1, -1):
                if not _card_layout(text, bounds[i:j + 1]):
                    continue
                d = _SEPS.sub("", text[bounds[i][0]:bounds[j][1]])
                if luhn_valid(d):
                    found, digits = j, d
                    break
            if found < 0:
                i += 1
                continue
            out.append(text[pos:bounds[i][0]])
            out.append(self.token("card", digits))
            self.replacements += 1
            pos = bounds[found][1]
            i = found + 1
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    def _replace(self, m: re2._Match) -> str:
        for kind, g in zip(self._kinds, self._group_of, strict=True):
            if m.start(g) < 0:
                continue
            value: str = m.group(g)
            if kind == "ssn" and not _ssn_valid(value):
                return value
            if kind == "ipv6":
                try:
                    ipaddress.IPv6Address(value)
                except ValueError:
                    return value
            self.replacements += 1
            return self.token(kind, value)
        return str(m.group(0))

    def _sub(self, text: str) -> str:
        if self._pattern is not None:
            text = str(self._pattern.sub(self._replace, text))
        if self._card_pattern is not None:
            text = str(self._card_pattern.sub(self._replace_card, text))
        return text

    def _replace_card(self, m: re2._Match) -> str:
        return self._card(str(m.group(0)))

    def _any_match(self, text: str) -> bool:
        return any(p.search(text) is not None for p in self._passes)

    def scrub_text(self, text: str) -> str:
        return self._sub(text) if self._passes else text

    def scrub_many(self, texts: list[str]) -> list[str]:
        """``[scrub_text(t) for t in texts]``, scanning the joined texts in one call per pass when
        no text holds the separator and no match crossed one (else line by line)."""
        if not self._passes or not texts:
            return texts
        joined = _JOIN.join(texts)
        if not self._any_match(joined):
            return texts
        before = self.replacements
        if all(_JOIN not in t for t in texts):
            out = self._sub(joined).split(_JOIN)
            if len(out) == len(texts):
                return out
        self.replacements = before
        return [self._sub(t) for t in texts]

    def scrub_batch(self, batch: LogBatch) -> LogBatch:
        if not self._passes or not len(batch):
            return batch
        body = self.scrub_many(batch.body)
        values = self.scrub_many(batch.attr_values) if self.settings.attributes else batch.attr_values
        if body is batch.body and values is batch.attr_values:
            return batch
        return dataclasses.replace(batch, body=body, attr_values=values)


def make_pii_step(scrubber_for: Callable[[str], PiiScrubber | None]) -> Callable[[str, LogBatch], LogBatch]:
    """A ``LogStep`` scrubbing with the tenant's scrubber (``None``: scrubbing off for it)."""

    def step(tenant: str, batch: LogBatch) -> LogBatch:
        scrubber = scrubber_for(tenant)
        return batch if scrubber is None else scrubber.scrub_batch(batch)

    return step
