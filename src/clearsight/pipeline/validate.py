"""Write-path validation step: request limits, sample timestamps, and series label sets.

Per request (vectorized, no Python work per sample):
- series per request and samples per request (``LimitExceeded``);
- every sample timestamp within ``[now - max_past_ms, now + max_future_ms]`` (``InvalidInput``).

Per series key not seen before (one the store has not resolved to a series yet, or, for a
validator without the store's ``known_keys``, one not in a bounded cache of validated keys'
fingerprints per ``key_kind``), its labels are decoded and checked, in this order:
1. names and values are valid UTF-8 (the decoder's ``decode_labels`` raises ``InvalidInput``);
2. labels with an empty value are dropped (Prometheus: such a label does not exist); at most
   ``max_labels_per_series`` labels remain (``LimitExceeded("labels_per_series")``);
3. every name is non-empty (``InvalidInput``) and at most ``max_label_name_length`` UTF-8 bytes,
   every value at most ``max_label_value_length`` UTF-8 bytes (``LimitExceeded``);
4. no name appears twice, empty-valued occurrences included (``InvalidInput``);
5. a non-empty metric name (``__name__``) is present (``InvalidInput``).
Label names may be any UTF-8 (Prometheus 3 semantics). Error messages name the series, the label
and the limit.

The returned batch's ``decode_labels`` gives canonical labels (sorted, empty values dropped),
memoized for the keys validated in this request, so the store does not decode them twice. Keys the
cache already knew are decoded and canonicalized again only if the store asks for them.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from clearsight.model.fingerprint_table import FingerprintTable, U64Array
from clearsight.model.labels import METRIC_NAME, Labels
from clearsight.model.samples import I32Array, I64Array, SampleBatch
from clearsight.pipeline.errors import InvalidInput, LimitExceeded
from clearsight.pipeline.limits import WriteLimits

Step = Callable[[str, SampleBatch], SampleBatch]
# (tenant, key kind, fingerprints hi, lo) -> which of the keys the store has resolved to series
KnownKeys = Callable[[str, str, U64Array, U64Array], npt.NDArray[np.bool_]]

DEFAULT_CACHE_SIZE = 262_144
_MAX_RENDERED_LABELS = 12
_MAX_RENDERED_VALUE = 100


def describe(labels: Labels | list[tuple[str, str]]) -> str:
    """A bounded Prometheus-style rendering for error messages: ``{__name__="x", a="1", ...}``."""
    ordered = sorted(labels, key=lambda p: (p[0] != METRIC_NAME, p[0]))
    parts = []
    for n, v in ordered[:_MAX_RENDERED_LABELS]:
        if len(v) > _MAX_RENDERED_VALUE:
            v = v[:_MAX_RENDERED_VALUE] + "..."
        if len(n) > _MAX_RENDERED_VALUE:
            n = n[:_MAX_RENDERED_VALUE] + "..."
        v = v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        parts.append(f'{n}="{v}"')
    if len(ordered) > _MAX_RENDERED_LABELS:
        parts.append(f"... {len(ordered) - _MAX_RENDERED_LABELS} more")
    return "{" + ", ".join(parts) + "}"


def _clip(s: str) -> str:
    return s if len(s) <= _MAX_RENDERED_VALUE else s[:_MAX_RENDERED_VALUE] + "..."


def _utf8_len(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode("utf-8"))


def canonicalize(raw: Labels, limits: WriteLimits) -> Labels:
    """Validates decoded label pairs and returns the canonical label set (see module doc)."""
    kept = [p for p in raw if p[1] != ""]
    if len(kept) > limits.max_labels_per_series:
        raise LimitExceeded(
            "labels_per_series",
            f"series {describe(kept)} has {len(kept)} labels, over the limit of "
            f"{limits.max_labels_per_series} labels per series (max_labels_per_series)",
        )
    for n, v in raw:
        if n == "":
            raise InvalidInput(
                f"empty label name (value {_clip(v)!r}) in series {describe(kept)}",
                reason="invalid_label_name",
            )
        if len(n) > limits.max_label_name_length // 4 and _utf8_len(n) > limits.max_label_name_length:
            raise LimitExceeded(
                "label_name_length",
                f"label name {_clip(n)!r} is {_utf8_len(n)} bytes, over the limit of "
                f"{limits.max_label_name_length} bytes (max_label_name_length) in series {describe(kept)}",
            )
        if len(v) > limits.max_label_value_length // 4 and _utf8_len(v) > limits.max_label_value_length:
            raise LimitExceeded(
                "label_value_length",
                f"value of label {n!r} is {_utf8_len(v)} bytes, over the limit of "
                f"{limits.max_label_value_length} bytes (max_label_value_length) in series {describe(kept)}",
            )
    names = sorted(n for n, _ in raw)
    for i in range(1, len(names)):
        if names[i] == names[i - 1]:
            raise InvalidInput(
                f"duplicate label name {names[i]!r} in series {describe(kept)}", reason="duplicate_label"
            )
    kept.sort()
    out = tuple(kept)
    for n, _v in out:
        if n == METRIC_NAME:
            return out
    raise InvalidInput(
        f"series {describe(kept)} has no metric name (__name__ label missing or empty)",
        reason="missing_metric_name",
    )


class _KeyCache:
    """An approximate LRU set of validated keys, remembered by fingerprint
    (``model/fingerprint_table.py``: 20 bytes an entry plus the table's slack, not the key's bytes):
    two generations of tables.

    Lookups probe the current generation; when it holds half the capacity it becomes the old
    generation and the previous old one is dropped. Keys found only in the old generation are
    promoted. Thread-safe: inserts take a lock; a lookup racing one at worst re-validates a key.
    """

    def __init__(self, capacity: int) -> None:
        self.half = max(1, capacity // 2)
        self.cur = FingerprintTable()
        self.old = FingerprintTable()
        self._lock = threading.Lock()

    def missing(self, hi: U64Array, lo: U64Array) -> npt.NDArray[np.intp]:
        """Positions of the fingerprints that neither generation holds."""
        miss = np.flatnonzero(self.cur.get(hi, lo) == 0)
        if not miss.size:
            return miss
        in_old = self.old.get(hi[miss], lo[miss]) != 0
        if in_old.any():
            self.add(hi[miss[in_old]], lo[miss[in_old]])
        out: npt.NDArray[np.intp] = miss[~in_old]
        return out

    def add(self, hi: U64Array, lo: U64Array) -> None:
        with self._lock:
            cur = self.cur
            cur.put(hi, lo, np.ones(hi.shape[0], dtype=np.uint32))
            if len(cur) >= self.half:
                self.old = cur
                self.cur = FingerprintTable()

    def __len__(self) -> int:
        return len(self.cur) + len(self.old)


def make_validator(
    limits: WriteLimits, clock: Callable[[], float], *, cache_size: int = DEFAULT_CACHE_SIZE,
    known_keys: KnownKeys | None = None,
) -> Step:
    """The validation step. ``clock()`` returns the current time in seconds since the epoch.

    With ``known_keys`` (the store's ``known_keys``: which keys of a tenant and key kind, by
    fingerprint, it has resolved to series), a key the store knows is not validated again and the
    validator keeps no cache of its own: one table remembers each key, not two. Without it, the
    validator remembers validated keys in a bounded cache of ``cache_size`` keys."""
    caches: dict[str, _KeyCache] = {}
    caches_lock = threading.Lock()

    def cache_for(kind: str) -> _KeyCache:
        c = caches.get(kind)
        if c is None:
            with caches_lock:
                c = caches.setdefault(kind, _KeyCache(cache_size))
        return c

    def series_of(batch: SampleBatch, i: int) -> str:
        try:
            return describe(batch.decode_labels(batch.keys[i]))
        except Exception:
            return f"#{i} (labels not decodable)"

    def validate(tenant: str, batch: SampleBatch) -> SampleBatch:
        nser, nsamp = batch.num_series, batch.num_samples + batch.num_histograms
        if nser > limits.max_series_per_request:
            raise LimitExceeded(
                "series_per_request",
                f"request has {nser} series, over the limit of {limits.max_series_per_request} "
                "series per request (max_series_per_request)",
            )
        if nsamp > limits.max_samples_per_request:
            raise LimitExceeded(
                "samples_per_request",
                f"request has {nsamp} samples, over the limit of {limits.max_samples_per_request} "
                "samples per request (max_samples_per_request)",
            )
        if not (batch.series_idx.shape[0] == batch.num_samples == batch.timestamps.shape[0]):
            raise InvalidInput("sample columns differ in length", reason="invalid_batch")
        hb = batch.histograms
        if hb is not None and not (hb.series_idx.shape[0] == len(hb) == hb.timestamps.shape[0]):
            raise InvalidInput("histogram sample columns differ in length", reason="invalid_batch")
        for sidx, ts in ((batch.series_idx, batch.timestamps),
                         *([(hb.series_idx, hb.timestamps)] if hb is not None else [])):
            if not sidx.shape[0]:
                continue
            if int(sidx.min()) < 0 or int(sidx.max()) >= nser:
                raise InvalidInput(
                    "sample refers to a series index outside the batch", reason="invalid_batch"
                )
            _check_timestamps(batch, sidx, ts, limits, clock, series_of)

        decode = batch.decode_labels
        hi, lo = batch.fingerprints()
        cache: _KeyCache | None = None
        if known_keys is not None:
            miss = np.flatnonzero(~known_keys(tenant, batch.key_kind, hi, lo))
        else:
            cache = cache_for(batch.key_kind)
            miss = cache.missing(hi, lo)
        fresh: dict[bytes, Labels] = {}
        keys = batch.keys
        for i in miss.tolist():
            key = keys[i]
            if key not in fresh:
                fresh[key] = canonicalize(decode(key), limits)
        if miss.size and cache is not None:
            cache.add(hi[miss], lo[miss])

        def decode_canonical(key: bytes) -> Labels:
            got = fresh.get(key)
            if got is None:
                got = canonicalize(decode(key), limits)
            return got

        return dataclasses.replace(batch, decode_labels=decode_canonical)

    return validate


def _iso(ms: int) -> str:
    try:
        return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):
        return "out of range"


def _check_timestamps(
    batch: SampleBatch,
    sidx: I32Array,
    ts: I64Array,
    limits: WriteLimits,
    clock: Callable[[], float],
    series_of: Callable[[SampleBatch, int], str],
) -> None:
    now = int(clock() * 1000)
    lo = now - limits.max_past_ms
    hi = now + limits.max_future_ms
    tmin, tmax = int(ts.min()), int(ts.max())
    if tmin >= lo and tmax <= hi:
        return
    j = int(np.flatnonzero((ts < lo) | (ts > hi))[0])
    t = int(ts[j])
    series = series_of(batch, int(sidx[j]))
    if t > hi:
        raise InvalidInput(
            f"sample timestamp {t} ({_iso(t)}) of series {series} is too far in the future: more than "
            f"{limits.max_future_ms} ms (max_future_ms) after the server time {_iso(now)}",
            reason="too_far_in_future",
        )
    raise InvalidInput(
        f"sample timestamp {t} ({_iso(t)}) of series {series} is too old: more than "
        f"{limits.max_past_ms} ms (max_past_ms) before the server time {_iso(now)}",
        reason="too_old",
    )
