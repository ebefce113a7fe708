"""``/ws/metrics``: the live overview's WebSocket. The server pushes the values of a small, fixed set
of host queries (CPU, memory, disk, network per ``instance``; node_exporter's metric names, as the
agent ships them) about once a second.

Protocol (JSON text frames, server to client only; anything the client sends is ignored):

- ``{"type": "hello", "interval_ms": 1000, "panels": {key: {"query": ..., "unit": ...}}}``
- ``{"type": "tick", "t": ms, "panels": {key: [{"metric": {...}, "v": value}]}}`` at once and then
  every interval: the instant value of every panel at ``t``;
- ``{"type": "backfill", "t": [ms...], "panels": {key: [{"metric": {...}, "v": [value|null...]}]}}``
  right after the first tick: the last ``backfill`` (query parameter, default 15m, at most 1h) as a
  range query per panel on one shared time grid ending at or before that tick.

All panels of one tick are evaluated in one job on the query pool (``query/governor.py``), under the
connection's tenant. Browsers always send ``Origin`` on a WebSocket and CORS does not apply to it,
so a cross-site page could otherwise read the metrics: a request with an ``Origin`` is accepted only
when that origin is this server (same host and port as ``Host``) and the host is one the server serves
(the HTTP admission check, ``api/admission.py``, which does not see WebSocket requests).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from clearsight.api.admission import host_is_served, served_hosts
from clearsight.api.common import TenantOf
from clearsight.config import Config, parse_duration_ms, parse_listen
from clearsight.query.governor import QueryGovernor
from clearsight.query.promql.ast import Expr
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.parser import parse_with_positions
from clearsight.query.promql.result import QueryResult
from clearsight.store.interface import MetricsStore

log = logging.getLogger("clearsight.api.ws_metrics")

INTERVAL_S = 1.0
DEFAULT_BACKFILL_MS = 15 * 60_000
MAX_BACKFILL_MS = 60 * 60_000
BACKFILL_POINTS = 240


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    unit: str  # percent | bytes_per_second
    query: str


PANELS: tuple[Panel, ...] = (
    Panel("cpu", "CPU busy", "percent",
          '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m])))'),
    Panel("memory", "Memory used", "percent",
          "100 * (1 - max by (instance) (node_memory_MemAvailable_bytes) / max by (instance) (node_memory_MemTotal_bytes))"),
    Panel("disk", "Fullest filesystem", "percent",
          "100 * max by (instance) (1 - node_filesystem_avail_bytes / (node_filesystem_size_bytes > 0))"),
    Panel("net_rx", "Network received", "bytes_per_second",
          'sum by (instance) (rate(node_network_receive_bytes_total{device!="lo"}[1m]))'),
    Panel("net_tx", "Network sent", "bytes_per_second",
          'sum by (instance) (rate(node_network_transmit_bytes_total{device!="lo"}[1m]))'),
)


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def origin_allowed(origin: str | None, host: str | None, served: frozenset[str] | None) -> bool:
    """True for non-browser clients (no ``Origin``) and for pages this server served itself."""
    if origin is None:
        return True
    if not host or not host_is_served(host, served):
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    default_port = "443" if parts.scheme == "https" else "80"

    def norm(h: str) -> str:
        return h if ":" in h.rsplit("]", 1)[-1] else f"{h}:{default_port}"

    return norm(parts.netloc.lower()) == norm(host.strip().lower())


class LiveMetrics:
    """Evaluates the panels (instant or range) against the store; one object per server."""

    def __init__(self, store: MetricsStore, cfg: Config, governor: QueryGovernor) -> None:
        self.store = store
        self.gov = governor
        self.timeout_s = parse_duration_ms(cfg.query.timeout) / 1000
        self.engine = Engine(lookback_delta_ms=parse_duration_ms(cfg.query.lookback_delta), timeout_s=self.timeout_s,
                             max_samples=cfg.query.max_samples,
                             max_points_per_series=cfg.query.max_points_per_series,
                             stream_batch_samples=cfg.query.stream_batch_samples)
        self.parsed: list[tuple[Panel, Expr, dict[int, int]]] = []
        for p in PANELS:
            expr, positions = parse_with_positions(p.query)
            self.parsed.append((p, expr, positions))

    def _eval(self, run: Callable[[Expr, dict[int, int], str], QueryResult], encode: Callable[[QueryResult], Any]
              ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for panel, expr, positions in self.parsed:
            try:
                out[panel.key] = encode(run(expr, positions, panel.query))
            except Exception as e:  # one failing panel must not stop the others
                log.warning("live panel %s failed: %s", panel.key, e)
                out[panel.key] = []
        return out

    def instant(self, tenant: str, at_ms: int) -> dict[str, Any]:
        q = self.store.querier(tenant)

        def run(expr: Expr, positions: dict[int, int], text: str) -> QueryResult:
            return self.engine.instant(q, expr, at_ms, timeout_s=self.timeout_s, positions=positions, query_text=text)

        def encode(r: QueryResult) -> list[dict[str, Any]]:
            if r.result_type != "vector":
                return []
            return [{"metric": dict(s.labels), "v": _num(float(s.values[0]))} for s in r.series if len(s.values)]

        return self._eval(run, encode)

    def backfill(self, tenant: str, start_ms: int, end_ms: int, step_ms: int) -> dict[str, Any]:
        q = self.store.querier(tenant)
        n = (end_ms - start_ms) // step_ms + 1

        def run(expr: Expr, positions: dict[int, int], text: str) -> QueryResult:
            return self.engine.range(q, expr, start_ms, end_ms, step_ms, timeout_s=self.timeout_s,
                                     positions=positions, query_text=text)

        def encode(r: QueryResult) -> list[dict[str, Any]]:
            rows = []
            for s in r.series:
                vals: list[float | None] = [None] * n
                for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True):
                    vals[(int(t) - start_ms) // step_ms] = _num(float(v))
                rows.append({"metric": dict(s.labels), "v": vals})
            return rows

        return self._eval(run, encode)


def make_ws_metrics_route(store: MetricsStore, cfg: Config, tenant_of: TenantOf, governor: QueryGovernor,
                          *, interval_s: float = INTERVAL_S) -> WebSocketRoute:
    live = LiveMetrics(store, cfg, governor)
    listens = [x for x in (cfg.server.listen, cfg.server.otlp_http_listen) if x]
    served = served_hosts([parse_listen(x)[0] for x in listens] + [socket.gethostname()], cfg.server.allowed_hosts)
    hello = orjson.dumps({"type": "hello", "interval_ms": int(interval_s * 1000),
                          "panels": {p.key: {"title": p.title, "unit": p.unit, "query": p.query} for p in PANELS}})

    async def endpoint(ws: WebSocket) -> None:
        if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), served):
            await ws.close(code=1008)  # before accept: the handshake is answered 403
            return
        try:
            tenant = tenant_of(Request({**ws.scope, "type": "http"}))  # tenant_of reads the headers only
            raw = ws.query_params.get("backfill") or ""
            backfill_ms = parse_duration_ms(raw) if raw else DEFAULT_BACKFILL_MS
        except Exception:
            await ws.close(code=1008)
            return
        backfill_ms = max(0, min(backfill_ms, MAX_BACKFILL_MS))
        await ws.accept()
        closed = asyncio.Event()

        async def watch_close() -> None:  # notices the client going away between ticks
            try:
                while True:
                    msg = await ws.receive()
                    if msg["type"] == "websocket.disconnect":
                        break
            finally:
                closed.set()

        watcher = asyncio.create_task(watch_close())
        try:
            await ws.send_text(hello.decode())

            async def tick() -> None:
                at = int(time.time() * 1000)
                panels = await live.gov.run(tenant, functools.partial(live.instant, tenant, at), live.timeout_s)
                await ws.send_text(orjson.dumps({"type": "tick", "t": at, "panels": panels}).decode())

            await tick()  # the current values first: the page shows them before the history arrives
            now = int(time.time() * 1000)
            if backfill_ms > 0:
                step = max(int(interval_s * 1000), -(-backfill_ms // BACKFILL_POINTS))
                end = now - now % step
                start = end - (backfill_ms // step) * step
                panels = await live.gov.run(tenant, lambda: live.backfill(tenant, start, end, step), live.timeout_s)
                await ws.send_text(orjson.dumps({"type": "backfill", "t": list(range(start, end + 1, step)),
                                                 "panels": panels}).decode())
            while not closed.is_set():
                try:
                    await asyncio.wait_for(closed.wait(), timeout=interval_s)
                except TimeoutError:
                    await tick()
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away mid-send
        except Exception as e:  # overload, timeout: tell the client, then close
            log.warning("ws/metrics stopped: %s", e)
            if not closed.is_set():
                try:
                    await ws.send_text(orjson.dumps({"type": "error", "error": str(e) or type(e).__name__}).decode())
                    await ws.close(code=1011)
                except Exception:
                    pass
        finally:
            watcher.cancel()

    return WebSocketRoute("/ws/metrics", endpoint, name="ws_metrics")
