"""Usage per organisation and day, cost estimates from unit prices, and daily quotas.

Counted (UTC days): ``samples`` (metric samples in accepted write batches: remote write, OTLP,
heartbeats), ``log_lines`` and ``log_bytes`` (log lines and events in accepted batches; bytes are
the characters of the line bodies, equal to UTF-8 bytes for ASCII), ``spans`` (trace spans in
accepted batches: OTLP/HTTP, OTLP/gRPC, ``/api/v1/ingest/traces``; spans dropped for their time are
not counted), ``queries`` (read requests: every request whose route needs a ``*:read`` permission).
Samples, lines and spans are counted by pipeline steps (``metrics_step``/``logs_step``/``spans_step``,
run by the ingestors before the store), so a batch the store then fails is counted too; queries by ``QueryCountMiddleware`` after authentication. ``active_series``
is a gauge, not a count: the day's highest number of active series of the organisation, sampled
from the store (``series_source``) at every flush; a month's figure is the highest of its days.

Counting is in memory (a dict add under a lock); a background thread writes the deltas to the
``usage_daily`` table every ``usage.flush_interval`` (and at close), one transaction per flush. Up to
one interval of counts is lost if the process is killed.

Quotas (``usage.quota_samples_per_day``, ``usage.quota_log_bytes_per_day``,
``usage.quota_spans_per_day``; 0 = none): a write batch
that would take its organisation past the day's quota is refused whole with **429** naming the quota
(``QuotaExceeded``, an IngestError: every ingest handler answers it as it answers other refusals).
The day's total is read from SQL once per organisation and day, then kept in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from starlette.types import ASGIApp, Receive, Scope, Send

from clearsight.auth.models import UsageDaily
from clearsight.auth.principal import Principal, principal_of_scope
from clearsight.auth.route_permissions import requirement
from clearsight.auth.state import StateDb
from clearsight.model.labels import Labels
from clearsight.model.logs import LogBatch
from clearsight.model.samples import SampleBatch
from clearsight.model.spans import SpanBatch
from clearsight.pipeline.errors import IngestError
from clearsight.pipeline.event_entries import EVENT_TYPE_LABEL
from clearsight.store.interface import AppendResult

log = logging.getLogger("clearsight.usage")

# events and rum_events are log entries too (counted in log_lines and log_bytes as well): an event's
# stream carries the event_type label (pipeline/event_entries.py), a RUM event's also source="rum"
# (ingest/simple_json.py).
KINDS = ("samples", "log_lines", "log_bytes", "events", "rum_events", "spans", "queries", "active_series")
GAUGES = frozenset({"active_series"})  # kept as the day's maximum, not summed


class QuotaExceeded(IngestError):
    status = 429
    reason = "quota"


@dataclass(frozen=True)
class Prices:
    """Unit prices (any currency): per million samples, per GiB of log bytes, per thousand queries,
    per million spans."""

    per_million_samples: float = 0.0
    per_gib_logs: float = 0.0
    per_thousand_queries: float = 0.0
    per_million_spans: float = 0.0

    def cost(self, counts: dict[str, int]) -> dict[str, float]:
        out = {"samples": counts.get("samples", 0) / 1e6 * self.per_million_samples,
               "logs": counts.get("log_bytes", 0) / 2**30 * self.per_gib_logs,
               "queries": counts.get("queries", 0) / 1e3 * self.per_thousand_queries,
               "spans": counts.get("spans", 0) / 1e6 * self.per_million_spans}
        out["total"] = sum(out.values())
        return {k: round(v, 6) for k, v in out.items()}


def _event_kind(stream: Labels) -> str:
    """"events", "rum_events" or "" (a plain log line) for an entry of this stream."""
    d = dict(stream)
    if EVENT_TYPE_LABEL not in d:
        return ""
    return "rum_events" if d.get("source") == "rum" else "events"


def utc_day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


class Usage:
    def __init__(self, db: StateDb | None, *, quota_samples_per_day: int = 0, quota_log_bytes_per_day: int = 0,
                 quota_spans_per_day: int = 0, prices: Prices | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.quota_samples = quota_samples_per_day
        self.quota_log_bytes = quota_log_bytes_per_day
        self.quota_spans = quota_spans_per_day
        self.prices = prices or Prices()
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str], int] = {}  # (org, day, kind) -> not yet flushed
        self._day_totals: dict[tuple[str, str, str], int] = {}  # quota kinds: flushed + pending, today
        self._stop = threading.Event()
        self._day_no, self._day = -1, ""
        self._thread: threading.Thread | None = None
        # org -> active series now (the store's stats); sampled at every flush
        self.series_source: Callable[[], Mapping[str, int]] | None = None

    # -- counting (hot paths: no I/O except the first quota check of an org per day)
    def _today(self) -> str:
        t = self.clock()
        if int(t // 86400) != self._day_no:  # one strftime per day, not per request
            self._day_no, self._day = int(t // 86400), utc_day(t)
        return self._day

    def add(self, org: str, kind: str, n: int) -> None:
        if n <= 0:
            return
        key = (org, self._today(), kind)
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + n
            if key in self._day_totals:
                self._day_totals[key] += n

    def _check_quota(self, org: str, kind: str, n: int, quota: int, name: str) -> None:
        key = (org, self._today(), kind)
        total = self._day_totals.get(key)
        if total is None:
            total = self._stored(key) + self._pending.get(key, 0)
            with self._lock:
                self._day_totals.setdefault(key, total)
                total = self._day_totals[key]
        if total + n > quota:
            raise QuotaExceeded(f"organisation {org!r} is over its daily quota usage.{name} = {quota} "
                                f"({total} used today, this request has {n}); it resets at 00:00 UTC")

    def metrics_step(self, tenant: str, batch: SampleBatch) -> SampleBatch:
        """A MetricsIngestor step: the quota check (a batch that would pass the quota is refused
        before anything is written). The samples are counted once committed: ``metrics_committed``."""
        if self.quota_samples:
            n = batch.num_samples + batch.num_histograms
            self._check_quota(tenant, "samples", n, self.quota_samples, "quota_samples_per_day")
        return batch

    def metrics_committed(self, tenant: str, result: AppendResult) -> None:
        """The MetricsIngestor's commit hook: counts the samples the store took as new (native
        histograms too); a re-sent sample it already held (``duplicates``) and one outside the
        out-of-order window or the retention (``out_of_bounds``, never in ``samples_written``)
        are not counted again."""
        self.add(tenant, "samples", result.samples_written - result.duplicates)

    def logs_step(self, tenant: str, batch: LogBatch) -> LogBatch:
        """A LogIngestor step: quota check, then lines and bytes counted."""
        nbytes = sum(len(b) for b in batch.body)
        if self.quota_log_bytes:
            self._check_quota(tenant, "log_bytes", nbytes, self.quota_log_bytes, "quota_log_bytes_per_day")
        self.add(tenant, "log_lines", batch.num_entries)
        self.add(tenant, "log_bytes", nbytes)
        kinds = [_event_kind(labels) for labels in batch.streams]
        if any(kinds):
            per_stream = np.bincount(batch.stream_idx, minlength=len(kinds))
            for kind in ("events", "rum_events"):
                n = int(per_stream[[k == kind for k in kinds]].sum())
                if n:
                    self.add(tenant, kind, n)
        return batch

    def spans_step(self, tenant: str, batch: SpanBatch) -> SpanBatch:
        """A SpanIngestor step: quota check, then the spans counted."""
        if self.quota_spans:
            self._check_quota(tenant, "spans", len(batch), self.quota_spans, "quota_spans_per_day")
        self.add(tenant, "spans", len(batch))
        return batch

    # -- SQL
    def bind(self, db: StateDb) -> None:
        """The state database (the server opens it after the ingestors that count into this)."""
        self.db = db

    def _state(self) -> StateDb:
        if self.db is None:
            raise RuntimeError("usage: no state database bound")
        return self.db

    def _stored(self, key: tuple[str, str, str]) -> int:
        with self._state().session() as s:
            row = s.get(UsageDaily, key)
            return int(row.count) if row is not None else 0

    def _gauges(self) -> dict[tuple[str, str, str], int]:
        if self.series_source is None:
            return {}
        try:
            now = self.series_source()
        except Exception:
            log.exception("reading active series for usage failed")
            return {}
        today = self._today()
        return {(org, today, "active_series"): int(n) for org, n in now.items() if n > 0}

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            today = self._today()
            self._day_totals = {k: v for k, v in self._day_totals.items() if k[1] == today}
        gauges = self._gauges()
        if not pending and not gauges:
            return
        try:
            with self._state().session() as s, s.begin():
                for (org, day, kind), n in sorted(pending.items()):
                    row = s.get(UsageDaily, (org, day, kind), with_for_update=True)
                    if row is None:
                        s.add(UsageDaily(org=org, day=day, kind=kind, count=n))
                    else:
                        row.count += n
                for (org, day, kind), n in sorted(gauges.items()):
                    row = s.get(UsageDaily, (org, day, kind), with_for_update=True)
                    if row is None:
                        s.add(UsageDaily(org=org, day=day, kind=kind, count=n))
                    elif n > row.count:
                        row.count = n
        except Exception:
            log.exception("writing usage counts failed; they are kept for the next flush")
            with self._lock:
                for k, n in pending.items():
                    self._pending[k] = self._pending.get(k, 0) + n

    def daily(self, org: str, first_day: str, last_day: str) -> dict[str, dict[str, int]]:
        """day -> kind -> count for ``org`` (flushed and pending)."""
        out: dict[str, dict[str, int]] = {}
        with self._state().session() as s:
            for r in s.scalars(select(UsageDaily).where(UsageDaily.org == org, UsageDaily.day >= first_day,
                                                        UsageDaily.day <= last_day)):
                out.setdefault(r.day, {})[r.kind] = out.get(r.day, {}).get(r.kind, 0) + int(r.count)
        with self._lock:
            for (o, day, kind), n in self._pending.items():
                if o == org and first_day <= day <= last_day:
                    out.setdefault(day, {})[kind] = out.get(day, {}).get(kind, 0) + n
        return out

    # -- the flusher thread
    def start(self, interval_s: float) -> None:
        def run() -> None:
            while not self._stop.wait(interval_s):
                self.flush()

        self._thread = threading.Thread(target=run, name="usage-flush", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()


class QueryCountMiddleware:
    """After authentication: counts requests that need a ``*:read`` permission as queries of the org."""

    def __init__(self, app: ASGIApp, usage: Usage) -> None:
        self.app = app
        self.usage = usage

    def count(self, p: Principal | None, method: str, path: str, need: str | None = None) -> None:
        """Counts the request as a query of ``p``'s organisation when its route needs ``*:read``
        (``need``: that requirement when the caller knows it, api/fast_lane.py)."""
        if p is not None and (need if need is not None else requirement(method, path)).endswith(":read"):
            self.usage.add(p.org, "queries", 1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.count(principal_of_scope(scope), scope["method"], scope["path"])
        await self.app(scope, receive, send)
