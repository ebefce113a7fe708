"""Series selections remembered per tenant while its label index is unchanged.

A dashboard sends the same selectors at every refresh (``up{job="node"}``,
``node_cpu_seconds_total{instance="a:9100", mode="idle"}``): resolving their matchers against the
postings (dictionary lookups, array copies, intersections, regex scans over label values) is the
same work each time while no series is added or removed. The store keeps the ids a matcher set
resolved to here, per tenant, and forgets a tenant's selections whenever its index changes (a new
series, a removed one, a reload). Only the label part is cached: the time-range filter runs on
every read.

Bounded: at most ``max_entries`` selections per tenant and ``max_ids`` ids in all (4 bytes each;
``storage.selection_cache_ids``, 0 turns the cache off);
a selection larger than ``max_selection`` ids is not kept (resolving a selection that wide costs
little next to reading its samples). Past either bound a tenant's selections are dropped wholesale.
Callers hold the store's index lock around ``get``/``put``/``forget``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from clearsight.model.matchers import Matcher

IdArray = npt.NDArray[np.uint32]
Key = tuple[tuple[Matcher, ...], ...]

MAX_ENTRIES = 1024
MAX_IDS = 1024 * 1024  # 4 MiB of ids over all tenants (the default of storage.selection_cache_ids)
MAX_SELECTION = 65_536


class SelectionCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_ids: int = MAX_IDS,
                 max_selection: int = MAX_SELECTION) -> None:
        self.max_entries = max_entries
        self.max_ids = max_ids
        self.max_selection = max_selection
        self._by_tenant: dict[str, dict[Key, IdArray]] = {}
        self._ids = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(matcher_sets: Sequence[Sequence[Matcher]]) -> Key:
        if len(matcher_sets) == 1:  # a select's one set (no generator for it)
            return (tuple(matcher_sets[0]),)
        return tuple(tuple(ms) for ms in matcher_sets)

    def get(self, tenant: str, key: Key) -> IdArray | None:
        found = self._by_tenant.get(tenant, {}).get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, tenant: str, key: Key, ids: IdArray) -> None:
        n = int(ids.shape[0])
        if n > self.max_selection or n > self.max_ids or self.max_ids == 0:  # 0: the cache is off
            return
        entries = self._by_tenant.setdefault(tenant, {})
        if len(entries) >= self.max_entries or self._ids + n > self.max_ids:
            self.forget(tenant)
            if self._ids + n > self.max_ids:
                self.clear()
            entries = self._by_tenant.setdefault(tenant, {})
        ids.setflags(write=False)  # shared by every read that hits it
        entries[key] = ids
        self._ids += n

    def forget(self, tenant: str) -> None:
        """The tenant's index changed: its selections are stale."""
        entries = self._by_tenant.pop(tenant, None)
        if entries:
            self._ids -= sum(int(a.shape[0]) for a in entries.values())

    def clear(self) -> None:
        self._by_tenant.clear()
        self._ids = 0

    @property
    def cached_ids(self) -> int:
        return self._ids


__all__ = ["SelectionCache"]
