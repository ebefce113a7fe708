"""Label names and label values of a selection of series over a time range, without a pass over
every series of the selection (``/api/v1/labels``, ``/api/v1/label/<name>/values``: Grafana reads
them for every template variable on every dashboard load and in its label browser).

The answer is the names (or the values of one label) found on the series of a selection (all of
the tenant's series, or those matching ``match[]``) whose ``[min_ts, max_ts]`` meets the range. A
pass over those series' label sets costs ~0.1 us per label in Python: ~250 us for 2,500 series.
Instead the *full listing* of the selection is kept — its sorted keys, and for each key how many of
the selection's series hold it — and the series out of the range are taken off it:

- the whole tenant: the label index has both (its sorted names and values, and the length of a
  posting list), nothing to compute (index.py);
- a ``match[]`` selection: counted once (a pass over its label sets, or over the postings for a
  large one) and kept in a ``ListingCache`` while the tenant's index generation is unchanged (any
  added or removed series changes it);
- a range that leaves out some series: a key is dropped when every series of the selection
  holding it is out of the range (its count among them equals its count in the selection): a
  pass over the series left out only. Counting costs ~3x what the pass collecting a set costs per
  label, so while more than a quarter of the selection is out of the range the listing is made
  from the series in the range as before (``scan``, or the postings for more than 4,096 series);
- either way, the answer for a range that leaves out some series is kept with the ids it left out
  (a ``Subset``): the next read whose range leaves out the same series (a dashboard refreshed
  before a series started or stopped) is answered from it, after one pass over the selection's
  time bounds to find them.

Answers are exactly those of the pass over the series in range (tests/unit/store/test_label_listing.py).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clearsight.model.labels import Labels

IdArray = npt.NDArray[np.uint32]

# Kept listings over all tenants, and their size in keys (a key costs ~50-80 bytes with its count;
# a Subset's ids count 1 key per 16): past either bound the cache starts again empty.
MAX_ENTRIES = 1024
MAX_KEYS = 100_000


@dataclass(frozen=True)
class Listing:
    """A selection's sorted names (or values of one label), and how many of its series hold each."""

    keys: list[str]
    counts: dict[str, int]

    @staticmethod
    def of(counts: dict[str, int]) -> Listing:
        return Listing(sorted(counts), counts)

    @property
    def size(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class Subset:
    """The listing of a selection less its series ``gone`` (sorted)."""

    gone: IdArray
    keys: list[str]

    @property
    def size(self) -> int:
        return len(self.keys) + self.gone.shape[0] // 16


def scan(labels: Sequence[Labels], ids: IdArray, name: str | None) -> list[str]:
    """The names (``name`` None) or values of ``name`` on the series ``ids``, sorted: one pass over
    their label sets."""
    if name is None:
        return sorted({n for s in ids.tolist() for n, _ in labels[s]})
    return sorted({v for s in ids.tolist() for n, v in labels[s] if n == name})


def scan_counts(labels: Sequence[Labels], ids: IdArray, name: str | None) -> dict[str, int]:
    """``scan`` with how many of ``ids`` hold each key."""
    return dict(_counted(map(labels.__getitem__, ids.tolist()), name))


def _counted(label_sets: Iterable[Labels], name: str | None) -> Counter[str]:
    if name is None:
        return Counter(n for lbls in label_sets for n, _ in lbls)
    return Counter(v for lbls in label_sets for n, v in lbls if n == name)


def without(
    keys: list[str], gone: Iterable[Labels], name: str | None, count: Callable[[str], int], limit: int | None
) -> list[str]:
    """``keys`` (a selection's sorted listing, ``count`` giving how many of its series hold a key)
    less those held only by the series whose label sets are ``gone`` (part of the selection),
    at most ``limit`` of them."""
    dropped = {k for k, c in _counted(gone, name).items() if c >= count(k)}
    if not dropped:
        return keys[:limit] if limit is not None else list(keys)
    out: list[str] = []
    for k in keys:
        if k not in dropped:
            out.append(k)
            if limit is not None and len(out) >= limit:
                break
    return out


class ListingCache:
    """Full listings of selections, per tenant, for one generation of the tenant's index: an entry
    of an older generation is never returned, and a newer generation's first entry drops them.
    Thread-safe; callers may compute an entry outside any lock and put it with the generation they
    read its selection under (an entry older than the tenant's kept generation is refused)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_keys: int = MAX_KEYS) -> None:
        self.max_entries = max_entries
        self.max_keys = max_keys
        self._by_tenant: dict[str, tuple[int, dict[Hashable, Listing | Subset]]] = {}
        self._entries = 0
        self._keys = 0
        self._lock = threading.Lock()

    def _get(self, tenant: str, key: Hashable, generation: int) -> Listing | Subset | None:
        found = self._by_tenant.get(tenant)
        if found is None or found[0] != generation:
            return None
        return found[1].get(key)

    def get(self, tenant: str, key: Hashable, generation: int) -> Listing | None:
        """The full listing kept under ``key`` for the tenant's index generation ``generation``."""
        found = self._get(tenant, ("listing", key), generation)
        return found if isinstance(found, Listing) else None

    def get_subset(self, tenant: str, key: Hashable, generation: int, gone: IdArray) -> list[str] | None:
        """The listing kept under ``key`` less the series ``gone``, if that is what was kept."""
        found = self._get(tenant, ("subset", key), generation)
        if isinstance(found, Subset) and np.array_equal(found.gone, gone):
            return found.keys
        return None

    def put(self, tenant: str, key: Hashable, generation: int, listing: Listing) -> None:
        self._put_any(tenant, ("listing", key), generation, listing)

    def put_subset(self, tenant: str, key: Hashable, generation: int, gone: IdArray, keys: list[str]) -> None:
        self._put_any(tenant, ("subset", key), generation, Subset(gone, keys))

    def _put_any(self, tenant: str, key: Hashable, generation: int, entry: Listing | Subset) -> None:
        n = entry.size
        if n > self.max_keys:
            return
        with self._lock:
            self._put(tenant, key, generation, entry, n)

    def _put(self, tenant: str, key: Hashable, generation: int, listing: Listing | Subset, n: int) -> None:
        found = self._by_tenant.get(tenant)
        if found is not None and found[0] > generation:
            return  # computed from an older state than a kept one
        if found is None or found[0] != generation:
            self._drop(tenant)
            found = self._by_tenant[tenant] = (generation, {})
        if self._entries >= self.max_entries or self._keys + n > self.max_keys:
            self._clear()
            found = self._by_tenant[tenant] = (generation, {})
        old = found[1].get(key)
        if old is not None:
            self._entries -= 1
            self._keys -= old.size
        found[1][key] = listing
        self._entries += 1
        self._keys += n

    def _drop(self, tenant: str) -> None:
        found = self._by_tenant.pop(tenant, None)
        if found is not None:
            self._entries -= len(found[1])
            self._keys -= sum(x.size for x in found[1].values())

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._by_tenant.clear()
        self._entries = 0
        self._keys = 0

    @property
    def entries(self) -> int:
        return self._entries

    @property
    def keys(self) -> int:
        return self._keys


__all__ = ["Listing", "ListingCache", "Subset", "scan", "scan_counts", "without"]
