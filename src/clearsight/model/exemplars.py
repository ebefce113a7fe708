"""Exemplars: a sample of a series annotated with labels of its own (usually a trace id).

Prometheus keeps exemplars beside the series they belong to, in a bounded circular buffer, and serves
them from ``/api/v1/query_exemplars``. Decoders (remote-write 1.0 and 2.0, OTLP) produce ``Exemplar``
records; ``exemplar_problem`` applies Prometheus' validation (the exemplar's own label set is at most
128 UTF-8 characters, names and values counted together).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clearsight.model.labels import Labels

# Prometheus' exemplar.ExemplarMaxLabelSetLength: runes of all label names and values together.
MAX_LABEL_SET_LENGTH = 128
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One exemplar of the series ``series`` (sorted labels, ``__name__`` included)."""

    series: Labels
    labels: Labels
    value: float
    ts: int  # milliseconds since the Unix epoch


def exemplar_problem(e: Exemplar) -> str | None:
    """Why Prometheus would refuse this exemplar, or None."""
    if not e.series:
        return "exemplar of a series without labels"
    length = sum(len(n) + len(v) for n, v in e.labels)
    if length > MAX_LABEL_SET_LENGTH:
        return (f"exemplar label set is {length} characters long, more than the limit of "
                f"{MAX_LABEL_SET_LENGTH}")
    for n, _ in e.labels:
        if not _LABEL_NAME.fullmatch(n):
            return f"invalid exemplar label name {n!r}"
    return None
