"""The writer's decoded window: the samples of every chunk overlapping a time range, decoded once
into one sorted key column, so that checking whether re-sent or late samples are already stored in
chunks costs one ``searchsorted`` per group commit instead of a Python step per chunk.

A re-send (a remote-write retry, an HA pair, a replayed buffer) arrives as many small requests
covering the same chunks; the first group commit that needs chunk samples builds the window over
all chunks overlapping its time range (bounded by ``max_samples``), and later groups reuse it while
every chunk they need is in it. The window belongs to one catalogue snapshot: any change of the
chunks table (a publication) makes the store drop it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clearsight.model.samples import F64Array, I64Array
from clearsight.store.embedded.catalog import ChunkRows

U64Array = npt.NDArray[np.uint64]
_SPAN = 1 << 32


@dataclass(frozen=True)
class DecodedWindow:
    """Samples of the chunks ``uids`` (sorted), keyed ``(series id << 32) | (ts - base)``,
    sorted by key; ``vals`` aligned with ``keys``."""

    snapshot: ChunkRows  # the catalogue snapshot it was built from
    uids: I64Array
    base: int
    keys: U64Array
    vals: F64Array

    @staticmethod
    def build(snapshot: ChunkRows, sel: ChunkRows, ts: I64Array, vals: F64Array) -> DecodedWindow | None:
        """From whole decoded chunks ``sel`` (``ts``/``vals`` chunk after chunk); None when their
        timestamps span 2**32 ms or more."""
        if ts.shape[0] == 0:
            return None
        base = int(ts.min())
        if int(ts.max()) - base >= _SPAN:
            return None
        keys = np.repeat(sel.series_id, sel.n).astype(np.uint64) << np.uint64(32)
        keys |= (ts - base).view(np.uint64)
        if not bool(np.all(keys[1:] > keys[:-1])):  # chunks of a series overlap in time
            order = np.argsort(keys, kind="stable")
            keys, vals = keys[order], vals[order]
        return DecodedWindow(snapshot, np.sort(sel.uid), base, keys, np.ascontiguousarray(vals))

    def covers(self, snapshot: ChunkRows, uids: I64Array) -> bool:
        """True when built from ``snapshot`` and holding every chunk in ``uids``."""
        if snapshot is not self.snapshot:
            return False
        pos = np.searchsorted(self.uids, uids)
        pos = np.minimum(pos, self.uids.shape[0] - 1)
        return bool(np.all(self.uids[pos] == uids))

    def lookup(self, sid: npt.NDArray[np.uint32], ts: I64Array) -> tuple[npt.NDArray[np.bool_], F64Array]:
        """Whether each (series, ts) pair is in the window, and its value (0.0 where absent)."""
        off = ts - self.base
        inside = (off >= 0) & (off < _SPAN)
        qk = sid.astype(np.uint64) << np.uint64(32)
        qk |= np.where(inside, off, 0).view(np.uint64)
        pos = np.searchsorted(self.keys, qk)
        pos_c = np.minimum(pos, self.keys.shape[0] - 1)
        found = inside & (pos < self.keys.shape[0]) & (self.keys[pos_c] == qk)
        out = np.where(found, self.vals[pos_c], 0.0)
        return found, out
