"""``/loki/api/v1/tail``: Loki's live tail over a WebSocket, for Grafana's live view and
``logcli query --tail``.

Parameters as Loki: ``query`` (a log query, pipelines included), ``limit`` (entries of the first
answer, default 100), ``start`` (default one hour ago), ``delay_for`` (seconds, 0-5: entries are
sent once they are this old, so late pushes are not missed). The server sends Loki's frames,
``{"streams": [{"stream": {...}, "values": [["<ns>", "<line>"], ...]}], "dropped_entries": null}``:
first the newest ``limit`` entries since ``start``, then every ``POLL_S`` the entries that
arrived since, oldest first, at most ``logs.max_entries_limit_per_query`` per frame (the rest
follows in the next frames). Each poll is one read on the query pool behind the governor, under
the connection's tenant, with the query deadline. The tail ends after ``TAIL_MAX_S`` (Loki's
``tail_max_duration``, 1 h) or when the client goes away. A bad query, limit or time closes the
handshake (403) before it is accepted; a browser ``Origin`` must be this server, as for
``/ws/metrics``. At most ``MAX_TAILS_PER_TENANT`` tails run at once per tenant (Loki's
``max_concurrent_tail_requests``, 10): one more is closed at the handshake (403) and counted, so
open tails cannot crowd the query pool that every other query shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter

import orjson
from starlette.requests import Request
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from clearsight.api.logs_query import NS, BadRequest, LogQueryApi, parse_loki_time
from clearsight.api.ws_metrics import origin_allowed
from clearsight.model.labels import Labels, to_dict
from clearsight.query.budget import QueryBudget, running
from clearsight.query.logql.ast import LogSelector
from clearsight.query.logql.evaluator import LogQLEvaluator, StreamResult
from clearsight.query.logql.parser import LogQLParseError, parse_expr
from clearsight.store.logs_interface import Direction

log = logging.getLogger("clearsight.api.logs_tail")

POLL_S = 1.0
TAIL_MAX_S = 3600.0
MAX_TAILS_PER_TENANT = 10
MAX_DELAY_S = 5

Entry = tuple[int, Labels, str]


class TailCursor:
    """What was already sent: the newest timestamp and the entries at it (a multiset), so a read
    that starts at that timestamp sends each entry once."""

    def __init__(self, start_ns: int) -> None:
        self.ts = start_ns
        self.at_ts: Counter[tuple[Labels, str]] = Counter()

    def fresh(self, streams: list[StreamResult]) -> list[Entry]:
        """The entries of a read from ``self.ts`` not sent yet, oldest first; advances the cursor."""
        entries = sorted(((t, s.labels, line) for s in streams for t, line in s.entries), key=lambda e: e[0])
        out: list[Entry] = []
        seen = Counter(self.at_ts)
        for t, labels, line in entries:
            if t < self.ts:
                continue
            if t == self.ts and seen[(labels, line)] > 0:
                seen[(labels, line)] -= 1
                continue
            out.append((t, labels, line))
        if out:
            newest = out[-1][0]
            if newest != self.ts:
                self.ts = newest
                self.at_ts = Counter()
            self.at_ts.update((labels, line) for t, labels, line in out if t == newest)
        return out


def frame(entries: list[Entry]) -> bytes:
    """Loki's tail frame for ``entries`` (grouped by label set, order kept)."""
    streams: dict[Labels, list[list[str]]] = {}
    for t, labels, line in entries:
        streams.setdefault(labels, []).append([str(t), line])
    return orjson.dumps({"streams": [{"stream": to_dict(lbl), "values": v} for lbl, v in streams.items()],
                         "dropped_entries": None})


def make_logs_tail_route(api: LogQueryApi, served: frozenset[str] | None, *, poll_s: float = POLL_S,
                         max_s: float = TAIL_MAX_S, max_tails: int = MAX_TAILS_PER_TENANT) -> WebSocketRoute:
    active: Counter[str] = Counter()

    async def endpoint(ws: WebSocket) -> None:
        if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), served):
            await ws.close(code=1008)  # before accept: the handshake is answered 403
            return
        try:
            tenant = api.tenant_of(Request({**ws.scope, "type": "http"}))  # tenant_of reads the headers only
            q = ws.query_params
            sel = parse_expr(q.get("query") or "")
            if not isinstance(sel, LogSelector):
                raise BadRequest("tail needs a log query, not a metric query")
            limit = api._limit(q.get("limit"))
            start = parse_loki_time(q.get("start"), time.time_ns() - 3600 * NS, "start")
            delay_ns = max(0, min(int(q.get("delay_for") or 0), MAX_DELAY_S)) * NS
        except (BadRequest, LogQLParseError, ValueError):
            await ws.close(code=1008)
            return
        if active[tenant] >= max_tails:
            log.warning("live tail refused: %d tails already open for tenant %s (max_concurrent_tail_requests)",
                        active[tenant], tenant)
            await ws.close(code=1008)
            return
        active[tenant] += 1
        try:
            await _tail(ws, tenant, sel, limit, start, delay_ns)
        finally:
            active[tenant] -= 1
            if active[tenant] <= 0:
                del active[tenant]

    async def _tail(ws: WebSocket, tenant: str, sel: LogSelector, limit: int, start: int, delay_ns: int) -> None:
        await ws.accept()
        closed = asyncio.Event()

        async def watch_close() -> None:
            try:
                while True:
                    if (await ws.receive())["type"] == "websocket.disconnect":
                        break
            finally:
                closed.set()

        def read(lo: int, hi: int, n: int, direction: Direction) -> list[StreamResult]:
            budget = QueryBudget(api.limits.max_samples, time.monotonic() + api.timeout_s)
            with running(budget):
                return LogQLEvaluator(api.store, tenant, api.limits, budget).logs(sel, lo, hi, n, direction)

        watcher = asyncio.create_task(watch_close())
        cursor = TailCursor(start)
        ends_at = time.monotonic() + max_s
        try:
            first = True
            while not closed.is_set() and time.monotonic() < ends_at:
                hi = time.time_ns() - delay_ns
                # first the newest `limit` entries since `start`, then everything new, oldest first
                job = functools.partial(read, start, hi, limit, "backward") if first else \
                    functools.partial(read, cursor.ts, hi, api.max_entries, "forward")
                first = False
                got = await api.governor.run(tenant, job, api.timeout_s)
                fresh = cursor.fresh(got)
                if fresh:
                    await ws.send_text(frame(fresh).decode())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), poll_s)
        except (WebSocketDisconnect, RuntimeError):
            pass
        except Exception as e:  # a failed read ends the tail with Loki's error text as the close reason
            with contextlib.suppress(Exception):
                await ws.close(code=1011, reason=str(e)[:120])
            return
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        with contextlib.suppress(Exception):
            await ws.close(code=1000)

    return WebSocketRoute("/loki/api/v1/tail", endpoint, name="loki_api_v1_tail")
