"""Label sets.

A label set is a tuple of ``(name, value)`` pairs sorted by name, with unique names and no empty
values (Prometheus semantics: a label with an empty value does not exist). The metric name is the
``__name__`` label.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

Labels = tuple[tuple[str, str], ...]

METRIC_NAME = "__name__"
EMPTY: Labels = ()


def make_labels(pairs: Iterable[tuple[str, str]] | Mapping[str, str]) -> Labels:
    """Builds a canonical label set: sorted by name, empty values dropped.

    Raises ValueError on a duplicate label name.
    """
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    out = sorted((n, v) for n, v in items if v != "")
    for i in range(1, len(out)):
        if out[i][0] == out[i - 1][0]:
            raise ValueError(f"duplicate label name {out[i][0]!r}")
    return tuple(out)


def get(labels: Labels, name: str) -> str:
    """The value of label ``name``, or "" when absent."""
    for n, v in labels:
        if n == name:
            return v
    return ""


def metric_name(labels: Labels) -> str:
    return get(labels, METRIC_NAME)


def without(labels: Labels, names: Iterable[str]) -> Labels:
    drop = set(names)
    return tuple(p for p in labels if p[0] not in drop)


def only(labels: Labels, names: Iterable[str]) -> Labels:
    keep = set(names)
    return tuple(p for p in labels if p[0] in keep)


def with_label(labels: Labels, name: str, value: str) -> Labels:
    """Returns labels with ``name`` set to ``value`` (removed when value is empty)."""
    rest = [p for p in labels if p[0] != name]
    if value != "":
        rest.append((name, value))
        rest.sort()
    return tuple(rest)


def canonical_bytes(labels: Labels) -> bytes:
    """A stable byte encoding of a label set (used for fingerprints and cache keys)."""
    return b"\xff".join(n.encode() + b"\xfe" + v.encode() for n, v in labels)


def fingerprint(labels: Labels) -> int:
    """A stable signed 64-bit fingerprint of a label set."""
    digest = hashlib.blake2b(canonical_bytes(labels), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def to_dict(labels: Labels) -> dict[str, str]:
    return dict(labels)


def format_labels(labels: Labels) -> str:
    """Prometheus-style rendering: ``name{a="1", b="2"}``."""
    name = metric_name(labels)
    rest = [(n, v) for n, v in labels if n != METRIC_NAME]
    if not rest:
        return name if name else "{}"
    body = ", ".join(f'{n}="{_escape(v)}"' for n, v in rest)
    return f"{name}{{{body}}}"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
