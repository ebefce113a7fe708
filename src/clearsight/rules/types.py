"""The narrow functions ``rules/`` is given instead of importing the engine, store or notifier."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from clearsight.model.labels import Labels


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector (a scalar result is one sample with empty labels)."""

    labels: Labels
    value: float


Vector = list[Sample]

# Evaluates a PromQL expression at ``time_ms`` (milliseconds) and returns its instant vector; a
# scalar result is returned as one sample with no labels. Raises ``QueryFailed`` (or any
# exception) on error; the message becomes the rule's ``lastError``.
QueryFunc = Callable[[str, int], Vector]

# Optional: opens a query function for a run of rules evaluated at ``time_ms`` (one group
# evaluation, up to a synchronous write). It may share work between the run's queries, such as one
# store read per selector over the widest window any of them needs. ``memo`` is a dict the group
# keeps across its evaluations, for hints (for example, those widest windows).
QueryScope = Callable[[int, dict[Any, Any]], QueryFunc]

# Writes samples ``(labels incl. __name__, time_ms, value)``; stale markers are STALE_NAN values.
# The flag ``sync`` is True when a later rule of the same evaluation reads them: return only once
# they are queryable. With False the function may return once they are queued (it logs failures).
WriteFunc = Callable[[Sequence[tuple[Labels, int, float]], bool], None]

# Hands alerts to the notifier, shaped as Alertmanager API v2 postable alerts:
# ``{"labels": {...}, "annotations": {...}, "startsAt": RFC3339, "endsAt": RFC3339,
# "generatorURL": str}``. Called from the evaluation thread; must not block for long.
NotifyFunc = Callable[[list[dict[str, Any]]], None]


class QueryFailed(Exception):
    """A query function's error (its message is shown as the rule's lastError)."""
