"""One shared copy of every label pair the store holds.

The store keeps each series' label set in memory (for the index, the label API and result
labels). Built pair by pair from the wire, two series with ``job="node"`` would hold two tuples and
four strings for it; node_exporter-like series share almost every pair (job, instance, metric
name, mode, cpu), so most of a series' label memory was copies. ``LabelPool.intern`` returns the
label set made of the pool's pair tuples (whose strings are shared with them), so a series costs
one tuple of pointers plus the pairs that only it has.

``keep_only`` rebuilds the pool from the label sets still live (after series were deleted), so it
never holds more pairs than were live then plus those added since.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from clearsight.model.labels import Labels

Pair = tuple[str, str]


class LabelPool:
    """Not thread-safe: used by the store's writer thread (and at open, before it starts)."""

    def __init__(self) -> None:
        self._pairs: dict[Pair, Pair] = {}

    def __len__(self) -> int:
        return len(self._pairs)

    def intern(self, labels: Labels) -> Labels:
        """``labels`` (a canonical label set) made of the pool's pairs; equal to ``labels``."""
        pairs = self._pairs
        out = []
        for pair in labels:
            shared = pairs.get(pair)
            if shared is None:
                name, value = pair
                shared = (sys.intern(name), value)
                pairs[shared] = shared
            out.append(shared)
        return tuple(out)

    def keep_only(self, live: Iterable[Labels]) -> int:
        """Forgets every pair that none of ``live`` (label sets made by ``intern``) holds; returns
        how many were forgotten."""
        before = len(self._pairs)
        self._pairs = {pair: pair for labels in live for pair in labels}
        return before - len(self._pairs)
