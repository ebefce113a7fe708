"""The notifier: receives alerts, holds them, and drives the dispatcher; the facade server.py wires.

``notify(postables)`` is the ``NotifyFunc`` the rules engine gets (thread-safe, never blocks on a
delivery). ``put_alerts`` is the API's all-or-nothing entry: one invalid alert rejects the request.
A maintenance loop expires ``expire_on_resolve`` silences whose alerts resolved, drops old resolved
alerts and expired silences, saves the notification log, and materialises the windows of recurring
silences (``schedule_source``, notify/schedules.py) as ordinary silences.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from clearsight.notify.alert import Alert, AlertError, parse_postable
from clearsight.notify.clock import Clock, SystemClock
from clearsight.notify.config import NotifyConfig, NotifyConfigError, load_config_file
from clearsight.notify.dispatch import Dispatcher
from clearsight.notify.inhibit import Inhibitor
from clearsight.notify.metrics import NotifyMetrics
from clearsight.notify.nflog import NotificationLog
from clearsight.notify.pipeline import Deps
from clearsight.notify.schedules import SilenceSchedule, materialise
from clearsight.notify.silences import Silences
from clearsight.notify.timeinterval import TimeInterval

log = logging.getLogger("clearsight.notify")

RESOLVED_RETENTION = 15 * 60.0  # resolved alerts stay visible in the API this long


@dataclass(frozen=True)
class AlertStatus:
    alert: Alert
    receivers: list[str]
    silenced_by: list[str]
    inhibited_by: list[str]

    @property
    def state(self) -> str:
        return "suppressed" if self.silenced_by or self.inhibited_by else "active"


class Notifier:
    def __init__(self, config: NotifyConfig, *, clock: Clock | None = None, data_dir: Path | None = None,
                 metrics: NotifyMetrics | None = None, external_url: str = "",
                 maintenance_interval: float = 30.0, backoff_initial: float = 1.0) -> None:
        self.clock: Clock = clock or SystemClock()
        self.config = config
        self.metrics = metrics or NotifyMetrics()
        self.silences = Silences(self.clock, data_dir / "silences.json" if data_dir else None)
        self.nflog = NotificationLog(data_dir / "nflog.json" if data_dir else None)
        self.alerts: dict[str, Alert] = {}
        self._inhibitor = Inhibitor(config.inhibit_rules)
        self._inhibitor_version = -1
        self._alerts_version = 0
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._maintenance_interval = maintenance_interval
        self._tasks: list[asyncio.Task[None]] = []
        # every organisation's recurring silences (a blocking read, run off the loop); server.py sets it
        self.schedule_source: Callable[[], Sequence[SilenceSchedule]] | None = None
        self.deps = Deps(clock=self.clock, silences=self.silences, nflog=self.nflog, metrics=self.metrics,
                         inhibitor=self._current_inhibitor, time_intervals=self._time_intervals, http=self._client,
                         external_url=external_url, backoff_initial=backoff_initial)
        self.dispatcher: Dispatcher | None = None
        self.started_at = self.clock.now()
        self.metrics.add_state(self._alert_counts, self._silence_counts,
                               lambda: len(self.dispatcher.groups) if self.dispatcher else 0)

    # -- lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.dispatcher = Dispatcher(self.config, self.deps)
        self._tasks.append(asyncio.create_task(self._maintenance()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self.silences.save_if_dirty()
        self.nflog.save()

    async def reload(self, config: NotifyConfig) -> None:
        """Swaps the config: a new dispatcher re-routes every held alert (dedup prevents re-sends)."""
        old = self.dispatcher
        self.config = config
        self._inhibitor = Inhibitor(config.inhibit_rules)
        self._inhibitor_version = -1
        self.dispatcher = Dispatcher(config, self.deps)
        if old is not None:
            await old.stop()
        for a in self.alerts.values():
            self.dispatcher.process(a)
        log.info("notification config loaded", extra={"source": config.source})

    async def reload_file(self, path: Path) -> tuple[bool, str]:
        """Re-reads the config file; a bad file keeps the current config running. Returns (ok, error)."""
        try:
            config = load_config_file(path)
        except NotifyConfigError as e:
            log.error("notification config not reloaded, the previous one keeps running: %s", e)
            return False, str(e)
        await self.reload(config)
        return True, ""

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=False)
        return self._http

    def _time_intervals(self) -> dict[str, list[TimeInterval]]:
        return self.config.time_intervals

    def _current_inhibitor(self) -> Inhibitor:
        if self._inhibitor_version != self._alerts_version:
            now = self.clock.now()
            self._inhibitor.rebuild(a for a in self.alerts.values() if not a.resolved(now))
            self._inhibitor_version = self._alerts_version
        return self._inhibitor

    # -- alerts in
    def parse(self, postables: Sequence[Any]) -> list[Alert]:
        if not isinstance(postables, list):
            raise AlertError("expected a JSON array of alerts")
        now = self.clock.now()
        try:
            return [parse_postable(p, f"[{i}]", now, self.config.globals.resolve_timeout)
                    for i, p in enumerate(postables)]
        except AlertError:
            self.metrics.alerts_invalid.inc()
            raise

    def put_alerts(self, postables: Sequence[Any]) -> int:
        """Validates every alert first (``AlertError`` rejects all), then ingests them. Loop thread only."""
        alerts = self.parse(postables)
        self.ingest(alerts)
        return len(alerts)

    def ingest(self, alerts: Sequence[Alert]) -> None:
        if self.dispatcher is None:
            raise RuntimeError("notifier not started")
        now = self.clock.now()
        for a in alerts:
            old = self.alerts.get(a.fingerprint)
            if old is not None and not old.resolved(now):
                a = old.merge(a)
            self.alerts[a.fingerprint] = a
            self.metrics.alerts_received.labels(a.status(now)).inc()
            for sid in self.silences.mutes(a.labels):
                self.silences.record_muted(sid, a.fingerprint)
            self.dispatcher.process(a)
        self._alerts_version += 1
        self._expire_resolved_silences()

    def notify(self, postables: list[dict[str, Any]]) -> None:
        """The rules engine's ``NotifyFunc``: callable from any thread; invalid alerts are logged."""
        loop = self._loop
        if loop is None:
            log.error("alerts dropped: the notifier is not started", extra={"alerts": len(postables)})
            return

        def put() -> None:
            try:
                self.put_alerts(postables)
            except AlertError as e:
                log.error("invalid alerts from the rules engine: %s", e)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            put()
        else:
            loop.call_soon_threadsafe(put)

    # -- views
    def status_of(self, a: Alert) -> AlertStatus:
        receivers = sorted({r.receiver for r in self.config.route.match(a.labels)})
        return AlertStatus(a, receivers, self.silences.mutes(a.labels), self._current_inhibitor().inhibited_by(a))

    def _alert_counts(self) -> dict[str, int]:
        now = self.clock.now()
        out = {"active": 0, "suppressed": 0, "resolved": 0}
        for a in list(self.alerts.values()):
            if a.resolved(now):
                out["resolved"] += 1
            else:
                out[self.status_of(a).state] += 1
        return out

    def _silence_counts(self) -> dict[str, int]:
        now = self.clock.now()
        out = {"active": 0, "pending": 0, "expired": 0}
        for s in self.silences.all():
            out[s.state(now)] += 1
        return out

    def matching_alerts(self, labels_ok: Any) -> int:
        now = self.clock.now()
        return sum(1 for a in self.alerts.values() if not a.resolved(now) and labels_ok(a.labels))

    def history(self) -> list[Mapping[str, Any]]:
        return list(self.deps.history)

    # -- maintenance
    def _expire_resolved_silences(self) -> None:
        now = self.clock.now()
        firing = {fp for fp, a in self.alerts.items() if not a.resolved(now)}
        for sid in self.silences.expire_resolved(firing):
            log.info("silence expired: its alerts resolved", extra={"silence_id": sid})

    def maintain(self) -> None:
        now = self.clock.now()
        self._expire_resolved_silences()
        old = [fp for fp, a in self.alerts.items() if a.resolved(now) and a.ends_at + RESOLVED_RETENTION < now]
        for fp in old:
            del self.alerts[fp]
        if old:
            self._alerts_version += 1
        self.silences.gc()
        self.nflog.gc(now)
        try:
            self.silences.save_if_dirty()
            self.nflog.save()
        except OSError as e:
            log.error("cannot save the notifier's state: %s", e)

    async def sync_schedules(self) -> None:
        """Materialises the recurring silences' windows: at start, every maintenance run, and right after a
        schedule was created or deleted. A failed read of the schedules changes no silence."""
        source = self.schedule_source
        if source is None:
            return
        try:
            schedules = await asyncio.get_running_loop().run_in_executor(None, source)
        except Exception:
            log.exception("cannot read the recurring silences; their silences are left as they are")
            return
        created, expired = materialise(self.silences, schedules, self.clock.now())
        if created or expired:
            log.info("recurring silences materialised", extra={"silences_created": created, "silences_expired": expired})

    async def _maintenance(self) -> None:
        while True:
            await self.sync_schedules()
            await self.clock.sleep(self._maintenance_interval)
            try:
                self.maintain()
            except Exception:
                log.exception("notifier maintenance failed")
