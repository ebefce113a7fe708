"""The rule manager: loads rule files, runs every group on its interval (aligned to fixed slots,
concurrently across groups, in order within one), reloads without losing state, writes stale
markers for series of removed rules, and persists alert state so a restart restores ``for``
progress and firing alerts without re-firing them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import orjson

from clearsight.rules.group import EvalOptions, Group
from clearsight.rules.model import ExprChecker, GroupSpec, RuleFileError, load_rule_files
from clearsight.rules.types import NotifyFunc, QueryFunc, QueryScope, WriteFunc

log = logging.getLogger("clearsight.rules")

# Saved alert state older than this is not restored (Prometheus' rules.alert.for-outage-tolerance).
OUTAGE_TOLERANCE_MS = 3600_000


class RuleManager:
    def __init__(self, patterns: list[str], *, query: QueryFunc, write: WriteFunc, notify: NotifyFunc | None,
                 default_interval_ms: int = 60_000, check_expr: ExprChecker | None = None,
                 base_dir: str | None = None, state_dir: Path | None = None, opts: EvalOptions | None = None,
                 clock: Callable[[], float] = time.time, executor: Executor | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 log_query: QueryFunc | None = None, query_scope: QueryScope | None = None) -> None:
        self.patterns = patterns
        self.query = query
        self.query_scope = query_scope  # PromQL queries of one group evaluation, sharing reads
        self.log_query = log_query  # LogQL, for simple log and event rules
        self.write = write
        self.notify = notify
        self.default_interval_ms = default_interval_ms
        self.check_expr = check_expr
        self.base_dir = base_dir
        self.state_dir = state_dir
        self.opts = opts or EvalOptions()
        self.clock = clock
        self.executor = executor
        self.sleep = sleep
        self.groups: list[Group] = []
        self.last_reload_ok = True
        self.last_reload_error = ""
        self.last_reload_ms = 0
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._inflight: set[asyncio.Future[None]] = set()
        self._lock = asyncio.Lock()
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Initial load (raises RuleFileError); restores persisted state."""
        specs = load_rule_files(self.patterns, self.check_expr, self.base_dir)
        self.groups = [Group(s, self.default_interval_ms, self.opts) for s in specs]
        now = self._now_ms()
        for g in self.groups:
            state = self._read_state(g.spec)
            if state is not None:
                fresh = now - int(state.get("saved_at_ms", 0)) <= OUTAGE_TOLERANCE_MS
                g.restore_state(state, restore_alerts=fresh, now_ms=now)
        self.last_reload_ms = now

    def _apply(self, specs: list[GroupSpec]) -> list[Group]:
        """New groups for ``specs`` taking state from the current ones; writes stale markers for
        series of rules and groups that are gone. Returns the groups that were replaced."""
        old = {g.spec.key: g for g in self.groups}
        new: list[Group] = []
        stale: list[Any] = []
        now = self._now_ms()
        for s in specs:
            g = Group(s, self.default_interval_ms, self.opts)
            prev = old.pop(s.key, None)
            if prev is not None:
                used = g.copy_state_from(prev)
                stale.extend(prev.stale_markers(now, keep=used))
            new.append(g)
        for gone in old.values():
            stale.extend(gone.stale_markers(now))
            self._remove_state(gone.spec)
        replaced = self.groups
        self.groups = new
        if stale:
            try:
                self.write(stale, True)
            except Exception as e:
                log.warning("writing stale markers of removed rules failed", extra={"error": str(e)})
        return replaced

    async def reload(self) -> tuple[bool, str]:
        """Re-reads the rule files. A bad file keeps the previous rules running; returns (ok, error)."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            try:
                specs = await loop.run_in_executor(None, load_rule_files, self.patterns, self.check_expr,
                                                   self.base_dir)
            except RuleFileError as e:
                self.last_reload_ok, self.last_reload_error = False, str(e)
                log.error("rule reload failed; the previous rules keep running", extra={"errors": e.errors})
                return False, str(e)
            was_running = self._running
            if was_running:
                await self._stop_tasks()
            self._apply(specs)
            if was_running:
                self._start_tasks()
            self.last_reload_ok, self.last_reload_error = True, ""
            self.last_reload_ms = self._now_ms()
            log.info("rules loaded", extra={"groups": len(self.groups),
                                            "rules": sum(len(g.rules) for g in self.groups)})
            return True, ""

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        self._running = True
        self._start_tasks()

    def _start_tasks(self) -> None:
        for g in self.groups:
            self._tasks[g.spec.key] = asyncio.create_task(self._run(g), name=f"rules:{g.name}")

    async def _stop_tasks(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        # Evaluations already running in threads finish before state is copied or saved.
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def stop(self) -> None:
        self._running = False
        await self._stop_tasks()

    async def _run(self, g: Group) -> None:
        loop = asyncio.get_running_loop()
        interval = g.interval_ms
        next_ts = g.eval_timestamp(self._now_ms()) + interval
        while True:
            await self.sleep(max(0.0, (next_ts - self._now_ms()) / 1000))
            # Shielded: a reload waits for a running evaluation instead of abandoning its thread.
            fut = loop.run_in_executor(self.executor, self.eval_group, g, next_ts)
            self._inflight.add(fut)
            fut.add_done_callback(self._inflight.discard)
            await asyncio.shield(fut)
            next_ts += interval
            late = self._now_ms() - next_ts
            if late >= interval:  # evaluations that could not run in their slot are skipped
                missed = late // interval
                g.stats.missed += missed
                next_ts += missed * interval

    def eval_group(self, g: Group, ts_ms: int) -> None:
        """One evaluation of ``g`` at ``ts_ms`` (a worker thread), then its state is saved. An
        unexpected error is logged and counted; the group keeps its schedule."""
        try:
            g.eval(ts_ms, self.query, self.write, self.notify, self.log_query, self.query_scope)
        except Exception:
            g.stats.failures += 1
            log.exception("rule group evaluation failed", extra={"group": g.name, "file": g.file})
        self._save_state(g)

    # ------------------------------------------------------------------ persisted state

    def _state_path(self, spec: GroupSpec) -> Path | None:
        if self.state_dir is None:
            return None
        h = hashlib.sha1(f"{spec.file}\x00{spec.name}".encode()).hexdigest()[:20]
        return self.state_dir / f"group-{h}.json"

    def _save_state(self, g: Group) -> None:
        path = self._state_path(g.spec)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(g.state_bytes(self._now_ms()))
            os.replace(tmp, path)
        except OSError as e:
            log.warning("saving rule state failed", extra={"group": g.name, "error": str(e)})

    def _read_state(self, spec: GroupSpec) -> dict[str, Any] | None:
        path = self._state_path(spec)
        if path is None or not path.exists():
            return None
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as e:
            log.warning("ignoring unreadable rule state", extra={"path": str(path), "error": str(e)})
            return None
        return doc if isinstance(doc, dict) and doc.get("name") == spec.name and doc.get("file") == spec.file \
            else None

    def _remove_state(self, spec: GroupSpec) -> None:
        path = self._state_path(spec)
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()
