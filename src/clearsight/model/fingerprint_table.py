"""Series keys remembered as 128-bit fingerprints in one flat hash table, instead of as dict keys.

A remote-write series key (the raw protobuf bytes of its labels, ~150 bytes for node_exporter-like
series) kept as a dict key costs the bytes object plus a dict slot, and the ingest path held such
keys twice (the validator's cache of checked keys and the store's key -> series id cache). Here a
key is remembered by its fingerprint ``(hi, lo)``: ``hi`` is Python's hash of the bytes (SipHash
with the interpreter's random per-process key), ``lo`` MurmurHash64A of the bytes with a random
per-process seed. An entry is 20 bytes (two uint64 and a uint32 value) in open-addressing arrays
filled to at most 7/8 (the size doubles past that): 23-46 bytes per entry with the slack.

Two different keys share a fingerprint with probability ~2^-128 per pair; as ``hi`` is keyed by a
secret, a sender cannot construct such a pair. Fingerprints live only in memory (they differ from
one process to the next). The store's label set -> series id table (``store/embedded/
canonical_ids.py``) uses the same table with 64-bit hashes and verifies every hit instead.

Lookups and inserts run in ``_fptable.pyx``, holding the GIL (so each call is atomic for other
Python threads); without the compiled extension the Python equivalents below run (also the
reference ``tests/unit/model/test_fingerprint_table.py`` compares the extension with).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

try:
    from clearsight.model import _fptable  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without Cython or a C compiler
    _fptable = None

U64Array = npt.NDArray[np.uint64]
U32Array = npt.NDArray[np.uint32]
Fingerprints = tuple[U64Array, U64Array]
_Arrays = tuple[U64Array, U64Array, U32Array]

_MASK64 = (1 << 64) - 1
_M = 0xC6A4A7935BD1E995
SEED = secrets.randbits(64)  # per process: fingerprints are never stored
MIN_SLOTS = 64
ENTRY_BYTES = 20  # hi, lo, value


def murmur64a(data: bytes, seed: int) -> int:
    """MurmurHash64A (Austin Appleby, public domain), the reference of ``_fptable``'s."""
    n = len(data)
    h = (seed ^ (n * _M)) & _MASK64
    blocks = n // 8
    for i in range(blocks):
        k = int.from_bytes(data[8 * i:8 * i + 8], "little")
        k = (k * _M) & _MASK64
        k ^= k >> 47
        k = (k * _M) & _MASK64
        h ^= k
        h = (h * _M) & _MASK64
    tail = data[8 * blocks:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _M) & _MASK64
    h ^= h >> 47
    h = (h * _M) & _MASK64
    h ^= h >> 47
    return h


def fingerprints_py(keys: Sequence[bytes], seed: int = SEED) -> Fingerprints:
    hi = np.fromiter((hash(k) & _MASK64 for k in keys), dtype=np.uint64, count=len(keys))
    lo = np.fromiter((murmur64a(k, seed) for k in keys), dtype=np.uint64, count=len(keys))
    return hi, lo


def fingerprints(keys: list[bytes], seed: int = SEED) -> Fingerprints:
    """The fingerprints ``(hi, lo)`` of ``keys`` (bytes)."""
    if _fptable is None:
        return fingerprints_py(keys, seed)
    hi, lo = _fptable.fingerprints(keys, seed)
    return hi, lo


def _get_py(t: _Arrays, hi: U64Array, lo: U64Array) -> U32Array:
    """Vectorised linear probing: every key advances one slot per round until it meets its entry
    or an empty slot."""
    thi, tlo, tval = t
    mask = np.uint64(tval.shape[0] - 1)
    out = np.zeros(hi.shape[0], dtype=np.uint32)
    pending = np.arange(hi.shape[0])
    pos = lo & mask
    while pending.size:
        v = tval[pos]
        hit = (v != 0) & (tlo[pos] == lo[pending]) & (thi[pos] == hi[pending])
        out[pending[hit]] = v[hit]
        more = (v != 0) & ~hit
        pending, pos = pending[more], (pos[more] + np.uint64(1)) & mask
    return out


def _put_py(t: _Arrays, hi: U64Array, lo: U64Array, val: U32Array) -> int:
    thi, tlo, tval = t
    mask = tval.shape[0] - 1
    added = 0
    for h, low, v in zip(hi.tolist(), lo.tolist(), val.tolist(), strict=True):
        pos = low & mask
        while tval[pos] != 0 and not (tlo[pos] == low and thi[pos] == h):
            pos = (pos + 1) & mask
        added += int(tval[pos] == 0)
        thi[pos], tlo[pos], tval[pos] = h, low, v
    return added


def _full(entries: int, slots: int) -> bool:
    return entries * 8 > slots * 7  # linear probing at 7/8: ~4.5 probes a hit, ~32 a miss


def _slots_for(entries: int) -> int:
    slots = MIN_SLOTS
    while _full(entries, slots):
        slots *= 2
    return slots


def _empty(slots: int) -> _Arrays:
    return (np.zeros(slots, dtype=np.uint64), np.zeros(slots, dtype=np.uint64), np.zeros(slots, dtype=np.uint32))


class FingerprintTable:
    """Fingerprint ``(hi, lo)`` -> non-zero uint32 value, open addressing with linear probing;
    0 means absent. Single writer: concurrent ``get`` calls see the table before or after a
    ``put`` (a ``put`` that grows the table may be missed by a ``get`` running meanwhile)."""

    __slots__ = ("_n", "_t", "native")

    def __init__(self, native: bool | None = None) -> None:
        self.native = _fptable is not None if native is None else native
        if self.native and _fptable is None:
            raise RuntimeError("the _fptable extension is not built")
        self._n = 0
        self._t: _Arrays = _empty(MIN_SLOTS)  # replaced as a whole: readers see one consistent set

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        return self._t[2].shape[0] * ENTRY_BYTES

    def get(self, hi: U64Array, lo: U64Array) -> U32Array:
        """The value of each fingerprint, 0 where absent."""
        t = self._t
        if self.native:
            out: U32Array = _fptable.get(*t, hi, lo)
            return out
        return _get_py(t, hi, lo)

    def put(self, hi: U64Array, lo: U64Array, val: U32Array) -> None:
        """Stores each fingerprint's value (non-zero; a fingerprint already present takes the new
        value; of a fingerprint given twice, the last value stays)."""
        if not hi.shape[0]:
            return
        if _full(self._n + hi.shape[0], self._t[2].shape[0]):
            self._rebuild(_slots_for(self._n + hi.shape[0]), self._t[2] != 0)
        self._n += self._put(self._t, hi, lo, val)

    def _put(self, t: _Arrays, hi: U64Array, lo: U64Array, val: U32Array) -> int:
        if self.native:
            added: int = _fptable.put(*t, hi, lo, val)
            return added
        return _put_py(t, hi, lo, val)

    def _rebuild(self, slots: int, keep: npt.NDArray[np.bool_]) -> None:
        thi, tlo, tval = self._t
        t = _empty(slots)
        n = self._put(t, thi[keep], tlo[keep], tval[keep])
        self._t, self._n = t, n

    def drop_values(self, dead: Sequence[int] | U32Array) -> None:
        """Forgets every entry whose value is in ``dead``; the arrays are sized to what stays."""
        tval = self._t[2]
        keep = (tval != 0) & ~np.isin(tval, np.asarray(dead, dtype=np.uint32))
        entries = int(np.count_nonzero(keep))
        if entries != self._n:
            self._rebuild(_slots_for(entries), keep)
