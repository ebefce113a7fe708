"""Vectorized search of ``(series id, timestamp)`` pairs: the one primitive behind finding a
sample in the head mirror, in decoded chunks or a chunk in the catalogue, without a Python step
per pair.

A pair becomes one uint64 key, ``(series id << 32) | (ts - base)``, which sorts like the pair. When
the timestamps span 2**32 ms (49.7 days) or more, the timestamps are replaced by their rank among
all timestamps involved, which always fits.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from clearsight.model.samples import I64Array

U32Array = npt.NDArray[np.uint32]
U64Array = npt.NDArray[np.uint64]
_SPAN = 1 << 32


def pair_keys(
    s_sid: npt.NDArray[np.unsignedinteger], s_ts: I64Array, q_sid: npt.NDArray[np.unsignedinteger], q_ts: I64Array
) -> tuple[U64Array, U64Array]:
    """Order-preserving uint64 keys for two sets of pairs (the same mapping for both)."""
    lo = min(int(s_ts.min()), int(q_ts.min()))
    hi = max(int(s_ts.max()), int(q_ts.max()))
    if hi - lo < _SPAN:
        s_off = (s_ts - lo).view(np.uint64)
        q_off = (q_ts - lo).view(np.uint64)
    else:
        every = np.unique(np.concatenate((s_ts, q_ts)))
        s_off = np.searchsorted(every, s_ts).astype(np.uint64)
        q_off = np.searchsorted(every, q_ts).astype(np.uint64)
    sk = s_sid.astype(np.uint64) << np.uint64(32)
    sk |= s_off
    qk = q_sid.astype(np.uint64) << np.uint64(32)
    qk |= q_off
    return sk, qk


def find_pairs(
    s_sid: npt.NDArray[np.unsignedinteger],
    s_ts: I64Array,
    q_sid: npt.NDArray[np.unsignedinteger],
    q_ts: I64Array,
    *,
    sorted_: bool = True,
) -> npt.NDArray[np.intp]:
    """Position in ``(s_sid, s_ts)`` of each query pair, -1 where absent. The stored pairs are
    unique; ``sorted_`` says they are sorted by (series, ts) (else they are checked, and sorted
    here when they are not)."""
    out = np.full(q_sid.shape[0], -1, dtype=np.intp)
    if s_sid.shape[0] == 0 or q_sid.shape[0] == 0:
        return out
    sk, qk = pair_keys(s_sid, s_ts, q_sid, q_ts)
    perm: npt.NDArray[np.intp] | None = None
    if not sorted_ and not bool(np.all(sk[1:] > sk[:-1])):
        perm = np.argsort(sk, kind="stable")
        sk = sk[perm]
    pos = np.searchsorted(sk, qk)
    ok = pos < sk.shape[0]
    pos_c = np.where(ok, pos, 0)
    ok &= sk[pos_c] == qk
    found = pos_c[ok] if perm is None else perm[pos_c[ok]]
    out[ok] = found
    return out
