"""The dispatcher: routes each alert to aggregation groups and flushes them on Alertmanager's timers.

A group is (route, values of the route's ``group_by`` labels). Its first flush comes
``group_wait`` after it was created (at once for an alert that started more than ``group_wait``
ago), later flushes every ``group_interval``. After a successful flush, the resolved alerts it
sent are dropped from the group; an empty group ends. ``repeat_interval`` is applied by the
pipeline's dedup stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from clearsight.notify.alert import Alert
from clearsight.notify.config import NotifyConfig, Route
from clearsight.notify.pipeline import Deps, Flush, run_pipeline

log = logging.getLogger("clearsight.notify.dispatch")


def _labels_text(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


class AggregationGroup:
    def __init__(self, route: Route, labels: dict[str, str], config: NotifyConfig, deps: Deps,
                 on_empty: Callable[[AggregationGroup], None]) -> None:
        self.route = route
        self.labels = labels
        self.key = f"{route.key}:{_labels_text(labels)}"
        self.receiver = config.receivers[route.receiver]
        self.alerts: dict[str, Alert] = {}
        self.has_flushed = False
        self._deps = deps
        self._on_empty = on_empty
        self.next_flush = deps.clock.now() + route.group_wait
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"aggr-group {self.key}")

    def insert(self, alert: Alert) -> None:
        self.alerts[alert.fingerprint] = alert
        now = self._deps.clock.now()
        if not self.has_flushed and alert.starts_at + self.route.group_wait < now and self.next_flush > now:
            self.next_flush = now
            self._wake.set()

    async def _sleep_until_flush(self) -> None:
        clock = self._deps.clock
        while (delay := self.next_flush - clock.now()) > 0:
            self._wake.clear()
            sleeper = asyncio.ensure_future(clock.sleep(delay))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait([sleeper, waker], return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()

    async def _run(self) -> None:
        while True:
            await self._sleep_until_flush()
            self.next_flush = self._deps.clock.now() + self.route.group_interval
            try:
                await self.flush()
            except Exception:
                log.exception("flush of %s failed", self.key)
            if not self.alerts:
                self._on_empty(self)
                return

    async def flush(self) -> None:
        now = self._deps.clock.now()
        snapshot = [self.alerts[fp] for fp in sorted(self.alerts)]
        self.has_flushed = True
        f = Flush(route=self.route, receiver=self.receiver, group_key=self.key, group_labels=self.labels,
                  deadline=now + self.route.group_interval)
        if await run_pipeline(self._deps, f, snapshot):
            for a in snapshot:
                if a.resolved(now) and self.alerts.get(a.fingerprint) is a:
                    del self.alerts[a.fingerprint]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Dispatcher:
    def __init__(self, config: NotifyConfig, deps: Deps) -> None:
        self.config = config
        self._deps = deps
        self.groups: dict[tuple[str, str], AggregationGroup] = {}

    def process(self, alert: Alert) -> list[str]:
        """Inserts ``alert`` into its groups; returns the receivers it goes to."""
        receivers = []
        for route in self.config.route.match(alert.labels):
            labels = route.group_labels(alert.labels)
            key = (route.key, _labels_text(labels))
            group = self.groups.get(key)
            if group is None:
                group = AggregationGroup(route, labels, self.config, self._deps, self._remove)
                self.groups[key] = group
            group.insert(alert)
            receivers.append(route.receiver)
        return receivers

    def _remove(self, group: AggregationGroup) -> None:
        key = (group.route.key, _labels_text(group.labels))
        if self.groups.get(key) is group:
            del self.groups[key]

    async def stop(self) -> None:
        groups = list(self.groups.values())
        self.groups.clear()
        for g in groups:
            await g.stop()
