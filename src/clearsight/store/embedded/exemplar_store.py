"""Exemplars in a bounded in-memory ring, persisted in an append-only, checksummed log.

Memory: at most ``capacity`` exemplars across all tenants (the oldest leaves first, as in
Prometheus' circular exemplar storage). Each series' exemplars sit in a deque in timestamp order; a
global FIFO of series references says whose exemplar is the oldest, so eviction is O(1).

Disk: ``<dir>/exemplars.log``, one record per exemplar::

    u32 payload length | u32 CRC-32 of the payload | payload

    payload = i64 timestamp ms | f64 value | orjson [tenant, series pairs, exemplar label pairs]

``append`` writes its records with one ``os.write`` on an ``O_APPEND`` descriptor before it
returns, so an acknowledged write survives ``kill -9``; ``close`` fsyncs. At start the log is read
back (the newest ``capacity`` records are kept); a damaged or truncated tail is cut off at the last
intact record and the loss logged. When the log holds more than ``COMPACT_FACTOR`` times the
capacity it is rewritten from the ring (written to a temporary file, fsynced, renamed).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import orjson

from clearsight.model.exemplars import Exemplar, exemplar_problem
from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher, matches_all
from clearsight.store.exemplars_interface import ExemplarAppendResult

log = logging.getLogger("clearsight.store.exemplars")

_HEAD = struct.Struct("<II")
_VAL = struct.Struct("<qd")
COMPACT_FACTOR = 4
LOG_NAME = "exemplars.log"


def _canonical(pairs: Labels) -> Labels:
    return tuple(sorted(p for p in pairs if p[1] != ""))


def _record(tenant: str, e: Exemplar) -> bytes:
    payload = _VAL.pack(e.ts, e.value) + orjson.dumps([tenant, e.series, e.labels])
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def _parse(payload: bytes) -> tuple[str, Exemplar]:
    ts, value = _VAL.unpack_from(payload)
    tenant, series, labels = orjson.loads(payload[_VAL.size:])
    return str(tenant), Exemplar(
        series=tuple((str(n), str(v)) for n, v in series),
        labels=tuple((str(n), str(v)) for n, v in labels),
        value=float(value),
        ts=int(ts),
    )


class EmbeddedExemplarStore:
    """``store.exemplars_interface.ExemplarStore`` for one data directory."""

    def __init__(self, directory: Path, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("exemplar capacity must be >= 0")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._series: dict[str, dict[Labels, deque[Exemplar]]] = {}
        self._order: deque[tuple[str, Labels]] = deque()
        self._path = directory / LOG_NAME
        self._fd = -1
        self._records = 0
        self.lost_bytes = 0  # cut from a damaged log tail at start
        if capacity == 0:
            return
        directory.mkdir(parents=True, exist_ok=True)
        self._load()
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    # --- start-up ---------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return
        pos = 0
        n = len(data)
        records: deque[tuple[str, Exemplar]] = deque(maxlen=self.capacity)
        count = 0
        while pos + _HEAD.size <= n:
            length, crc = _HEAD.unpack_from(data, pos)
            start = pos + _HEAD.size
            payload = data[start:start + length]
            if len(payload) != length or length < _VAL.size or zlib.crc32(payload) != crc:
                break
            try:
                records.append(_parse(payload))
            except (ValueError, TypeError, struct.error, orjson.JSONDecodeError):
                break
            count += 1
            pos = start + length
        if pos < n:
            self.lost_bytes = n - pos
            log.warning("exemplar log %s is damaged at byte %d: cut %d byte(s) after %d intact record(s)",
                        self._path, pos, n - pos, count)
            with open(self._path, "r+b") as f:
                f.truncate(pos)
                os.fsync(f.fileno())
        for tenant, e in records:
            self._insert(tenant, e)
        self._records = count

    # --- writes -----------------------------------------------------------------------------------

    def _insert(self, tenant: str, e: Exemplar) -> str:
        """Adds one canonical exemplar to the ring: "ok", "duplicate" or "out_of_order"."""
        per_tenant = self._series.setdefault(tenant, {})
        q = per_tenant.get(e.series)
        if q is None:
            q = per_tenant[e.series] = deque()
        elif q:
            newest = q[-1]
            if newest.ts == e.ts and newest.labels == e.labels and (
                    newest.value == e.value or (newest.value != newest.value and e.value != e.value)):
                return "duplicate"
            if e.ts <= newest.ts:
                return "out_of_order"
        q.append(e)
        self._order.append((tenant, e.series))
        if len(self._order) > self.capacity:
            old_tenant, old_series = self._order.popleft()
            old_q = self._series[old_tenant][old_series]
            old_q.popleft()
            if not old_q:
                del self._series[old_tenant][old_series]
                if not self._series[old_tenant]:
                    del self._series[old_tenant]
        return "ok"

    def append(self, tenant: str, exemplars: Sequence[Exemplar]) -> ExemplarAppendResult:
        res = ExemplarAppendResult()
        if self.capacity == 0 or not exemplars:
            return res
        out: list[bytes] = []
        with self._lock:
            for raw in exemplars:
                e = Exemplar(series=_canonical(raw.series), labels=_canonical(raw.labels), value=raw.value,
                             ts=raw.ts)
                if exemplar_problem(e) is not None:
                    res.invalid += 1
                    continue
                outcome = self._insert(tenant, e)
                if outcome == "ok":
                    res.appended += 1
                    out.append(_record(tenant, e))
                elif outcome == "duplicate":
                    res.duplicates += 1
                else:
                    res.out_of_order += 1
            if out:
                if self._fd < 0:
                    raise RuntimeError("the exemplar store is closed")
                buf = b"".join(out)
                view = memoryview(buf)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                self._records += len(out)
                if self._records > COMPACT_FACTOR * self.capacity:
                    self._compact()
        return res

    def _compact(self) -> None:
        """Rewrites the log from the ring, oldest first (lock held)."""
        tmp = self._path.with_suffix(".log.tmp")
        cursors: dict[tuple[str, Labels], int] = {}
        parts: list[bytes] = []
        for tenant, series in self._order:
            q = self._series[tenant][series]
            i = cursors.get((tenant, series), 0)
            parts.append(_record(tenant, q[i]))
            cursors[(tenant, series)] = i + 1
        with open(tmp, "wb") as f:
            f.write(b"".join(parts))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        os.close(self._fd)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._records = len(parts)

    # --- reads ------------------------------------------------------------------------------------

    def select(
        self, tenant: str, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int, end_ms: int
    ) -> list[tuple[Labels, list[Exemplar]]]:
        with self._lock:
            per_tenant = self._series.get(tenant)
            if not per_tenant:
                return []
            found: list[tuple[Labels, list[Exemplar]]] = []
            for series, q in per_tenant.items():
                if not any(matches_all(list(ms), series) for ms in matcher_sets):
                    continue
                picked = [e for e in q if start_ms <= e.ts <= end_ms]
                if picked:
                    found.append((series, picked))
        found.sort(key=lambda item: item[0])
        return found

    def __len__(self) -> int:
        return len(self._order)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
