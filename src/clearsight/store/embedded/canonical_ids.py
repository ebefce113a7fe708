"""Label set -> series id of one tenant, without a dict keyed by label sets.

A ``dict[Labels, int]`` costs a dict slot plus an int object per series (~100 bytes). Here the
label set's 64-bit hash (Python's hash of the tuple, built from its strings' SipHash) is the key
of a ``FingerprintTable`` (20 bytes an entry plus slack), and every hit is verified against the
series' own label set (``labels_of(sid)``, the store's list of pooled label sets), so two label
sets that share a hash never get one id: the second one's entry goes to a small dict instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from clearsight.model.fingerprint_table import FingerprintTable, U64Array
from clearsight.model.labels import Labels

_MASK64 = (1 << 64) - 1


def _hashes(label_sets: Sequence[Labels]) -> U64Array:
    return np.fromiter((hash(ls) & _MASK64 for ls in label_sets), dtype=np.uint64, count=len(label_sets))


class CanonicalIds:
    """Not thread-safe: the store's writer thread (and its open) use it."""

    __slots__ = ("_clash", "_hash_of", "_labels_of", "_table")

    def __init__(self, labels_of: Callable[[int], Labels], hash_of: Callable[[Sequence[Labels]], U64Array] = _hashes):
        self._labels_of = labels_of
        self._hash_of = hash_of
        self._table = FingerprintTable()
        self._clash: dict[Labels, int] = {}  # label sets whose hash another one holds in the table

    def __len__(self) -> int:
        return len(self._table) + len(self._clash)

    @property
    def nbytes(self) -> int:
        return self._table.nbytes

    def get(self, label_sets: Sequence[Labels]) -> list[int]:
        """The series id of each label set, 0 for those without one."""
        h = self._hash_of(label_sets)
        labels_of, clash = self._labels_of, self._clash
        out = []
        for ls, sid in zip(label_sets, self._table.get(h, h).tolist(), strict=True):
            if not (sid and labels_of(sid) == ls):
                sid = clash.get(ls, 0) if clash else 0
            out.append(sid)
        return out

    def add(self, label_sets: Sequence[Labels], sids: Sequence[int]) -> None:
        """Adds label sets (none of them present, all distinct) with their (non-zero) ids."""
        if not label_sets:
            return
        h = self._hash_of(label_sets)
        taken = self._table.get(h, h) != 0
        _, first = np.unique(h, return_index=True)
        to_table = np.zeros(h.shape[0], dtype=np.bool_)
        to_table[first] = True
        to_table &= ~taken
        ids = np.asarray(sids, dtype=np.uint32)
        self._table.put(h[to_table], h[to_table], ids[to_table])
        for i in np.flatnonzero(~to_table).tolist():
            self._clash[label_sets[i]] = int(ids[i])

    def remove(self, sids: Sequence[int]) -> None:
        """Forgets the series ``sids``."""
        self._table.drop_values(np.asarray(sids, dtype=np.uint32))
        if self._clash:
            dead = set(sids)
            self._clash = {ls: sid for ls, sid in self._clash.items() if sid not in dead}
