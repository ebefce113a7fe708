"""What a collector produces: named, labelled float samples (no timestamps: the agent stamps a cycle)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

LabelPairs = tuple[tuple[str, str], ...]


class Sample(NamedTuple):
    name: str
    labels: LabelPairs
    value: float


def sample(name: str, value: float, **labels: str) -> Sample:
    """A sample whose labels are sorted by name (the order remote-write expects)."""
    return Sample(name, tuple(sorted(labels.items())), float(value))


def merged_labels(host_labels: Mapping[str, str], labels: LabelPairs, own_labels_win: bool) -> dict[str, str]:
    """A sample's labels with the host labels (instance, job, tags), as every encoder merges them: the
    host's win, except for scraped series (``own_labels_win``), whose target's job/instance are kept and
    the host labels only fill the rest."""
    if own_labels_win:
        merged = dict(host_labels)
        merged.update(labels)
    else:
        merged = dict(labels)
        merged.update(host_labels)
    return merged
