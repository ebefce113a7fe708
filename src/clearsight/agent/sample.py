"""What a collector produces: named, labelled float samples (no timestamps: the agent stamps a cycle)."""

from __future__ import annotations

from typing import NamedTuple

LabelPairs = tuple[tuple[str, str], ...]


class Sample(NamedTuple):
    name: str
    labels: LabelPairs
    value: float


def sample(name: str, value: float, **labels: str) -> Sample:
    """A sample whose labels are sorted by name (the order remote-write expects)."""
    return Sample(name, tuple(sorted(labels.items())), float(value))
