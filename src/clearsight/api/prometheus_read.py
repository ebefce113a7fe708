"""Prometheus metadata API: ``/api/v1/series``, ``/api/v1/labels``, ``/api/v1/label/<name>/values``,
``/api/v1/metadata``. GET and POST (form) like Prometheus; exact response shapes."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, NamedTuple

from starlette.requests import Request
from starlette.responses import Response

from clearsight.api.common import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    ApiError,
    Params,
    TenantOf,
    limit_param,
    params,
    success,
    time_param,
)
from clearsight.api.endpoints import endpoints
from clearsight.api.prometheus_query import INLINE_MAX_CPU_S
from clearsight.api.query_admission import api_error_response, governed, make_governor
from clearsight.config import QueryConfig
from clearsight.model.matchers import Matcher
from clearsight.query.governor import QueryGovernor
from clearsight.store.interface import MetricsStore

Handler = Callable[[Request], Awaitable[Response]]
TRUNCATED = "results truncated due to limit"


def parse_match_params(p: Params, required: bool) -> list[list[Matcher]]:
    from clearsight.query.promql.parser import ParseError, parse_series_selector

    raw = p.getlist("match[]")
    if required and not raw:
        raise ApiError("bad_data", "no match[] parameter provided")
    out: list[list[Matcher]] = []
    for s in raw:
        try:
            out.append(parse_series_selector(str(s)))
        except ParseError as e:
            raise ApiError("bad_data", f'invalid parameter "match[]": {e}') from None
    return out


def _range(p: Params) -> tuple[int, int]:
    start = time_param(p, "start", MIN_TIME_MS)
    end = time_param(p, "end", MAX_TIME_MS)
    if end < start:
        raise ApiError("bad_data", 'invalid parameter "end": end timestamp must not be before start time')
    return start, end



def _truncate(items: Sequence[Any], limit: int | None) -> tuple[list[Any], list[str]]:
    if limit is not None and len(items) > limit:
        return list(items[:limit]), [TRUNCATED]
    return list(items), []


# A listing query: (tenant, matcher sets, start, end, limit) -> items.
Lister = Callable[[str, list[list[Matcher]], int, int, int | None], Sequence[Any]]

# Listings remembered with their cost (a dashboard's variables are a few dozen).
COST_ENTRIES = 2048
COST_WEIGHT = 0.5  # weight of the newest read in the cost average (as query/promql/prepared.py)


class ReadCosts:
    """Thread CPU seconds of recent listings by their parameters (an exponentially weighted mean,
    so a listing whose data grew is noticed within a few reads), in a bounded table. Thread-safe:
    the query pool's threads observe, the event loop reads."""

    def __init__(self, max_entries: int = COST_ENTRIES) -> None:
        self.max_entries = max_entries
        self._costs: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def cost(self, key: Hashable) -> float | None:
        return self._costs.get(key)

    def observe(self, key: Hashable, seconds: float) -> None:
        with self._lock:
            costs = self._costs
            c = costs.pop(key, None)
            costs[key] = seconds if c is None else c + COST_WEIGHT * (seconds - c)
            while len(costs) > self.max_entries:
                del costs[next(iter(costs))]  # the least recently read


class ListingPlan(NamedTuple):
    """A listing request checked, before its tenant is known (the guards decide it)."""

    read: Callable[[str], Sequence[Any]]  # tenant -> the store's items (at most limit + 1)
    limit: int | None
    render: Callable[[list[Any]], Any]
    key: Hashable  # what its cost is remembered by: route, label name, match[], span, limit
    inline: bool  # the same listing proven cheap: read on the event loop


class FastListing(NamedTuple):
    """A listing route's two halves for the protocol's fast lane (api/fast_lane.py): ``plan``
    (parameters and the route's path parameter, the label name of ``label_values``; no effects;
    ApiError for bad parameters) and ``answer`` (a plan's answer for a tenant)."""

    plan: Callable[[Params, float, str], ListingPlan]
    answer: Callable[[ListingPlan, str], Response]


def make_read_handlers(store: MetricsStore, tenant_of: TenantOf, governor: QueryGovernor | None = None,
                       fast: dict[str, FastListing] | None = None) -> dict[str, Handler]:
    """The metadata handlers; their store reads run under ``governor`` (admission control, the
    query pool), but for a listing whose same parameters' recent reads took at most
    ``INLINE_MAX_CPU_S`` of CPU (``ReadCosts``), read on the event loop as a cheap query is
    (the store's listings read its in-memory index only). ``fast`` gets the fast lane's halves of
    "series", "labels" and "label_values"."""
    gov = governor if governor is not None else make_governor(QueryConfig())
    costs = ReadCosts()

    def listing(kind: str, lister: Callable[[str], Lister], match_required: bool,
                render: Callable[[list[Any]], Any] = lambda items: items) -> tuple[Handler, FastListing]:
        """A handler for match[]/start/end/limit listings, and its halves: fetch one more than
        ``limit`` to know whether to warn about truncation."""

        def plan(p: Params, arrived: float, name: str) -> ListingPlan:
            matchers = parse_match_params(p, required=match_required)
            start, end = _range(p)
            limit = limit_param(p)
            fetch = None if limit is None else limit + 1
            of = lister(name)
            key = (kind, name, tuple(map(str, p.getlist("match[]"))), end - start, fetch)
            cost = costs.cost(key)
            return ListingPlan(functools.partial(of_tenant, of, matchers, start, end, fetch), limit, render, key,
                               cost is not None and cost <= INLINE_MAX_CPU_S)

        def of_tenant(of: Lister, matchers: list[list[Matcher]], start: int, end: int, fetch: int | None,
                      tenant: str) -> Sequence[Any]:
            return of(tenant, matchers, start, end, fetch)

        def read(planned: ListingPlan, tenant: str) -> Sequence[Any]:
            cpu = time.thread_time()
            found = planned.read(tenant)
            costs.observe(planned.key, time.thread_time() - cpu)
            return found

        def answer(planned: ListingPlan, found: Sequence[Any]) -> Response:
            items, warnings = _truncate(found, planned.limit)
            return success(planned.render(items), warnings)

        def answer_now(planned: ListingPlan, tenant: str) -> Response:
            return answer(planned, read(planned, tenant))

        async def handler(request: Request) -> Response:
            try:
                planned = plan(await params(request), time.monotonic(), request.path_params.get("name", ""))
                tenant = tenant_of(request)
                if planned.inline:
                    found = read(planned, tenant)
                else:
                    found = await governed(gov, request, tenant, functools.partial(read, planned, tenant))
            except ApiError as e:
                return api_error_response(e)
            return answer(planned, found)

        return handler, FastListing(plan, answer_now)

    def label_values_of(name: str) -> Lister:
        if name.startswith("U__"):
            name = _unescape_utf8_label(name)

        def values(tenant: str, matchers: list[list[Matcher]], start: int, end: int, limit: int | None) -> list[str]:
            return store.label_values(tenant, name, matchers, start, end, limit)

        return values

    series, fast_series = listing("series", lambda _n: store.series, True, lambda items: [dict(lbls) for lbls in items])
    labels, fast_labels = listing("labels", lambda _n: store.label_names, False)
    label_values, fast_values = listing("label_values", label_values_of, False)
    if fast is not None:
        fast.update(series=fast_series, labels=fast_labels, label_values=fast_values)

    async def metadata(request: Request) -> Response:
        try:
            p = await params(request)
            limit = limit_param(p)
            per_metric = limit_param(p, "limit_per_metric")
            metric = p.get("metric") or None
            tenant = tenant_of(request)
            found = await governed(gov, request, tenant, functools.partial(store.metadata, tenant, metric, limit,
                                                                            per_metric))
        except ApiError as e:
            return api_error_response(e)
        data = {name: [{"type": m.type, "help": m.help, "unit": m.unit} for m in entries]
                for name, entries in found.items()}
        return success(data)

    return endpoints({"series": series, "labels": labels, "label_values": label_values, "metadata": metadata})


def _unescape_utf8_label(name: str) -> str:
    """Prometheus' ``U__`` escaping for UTF-8 label names in URL paths (``_2e_`` -> ``.``)."""
    body = name[3:]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "_":
            if body.startswith("__", i):
                out.append("_")
                i += 2
                continue
            j = body.find("_", i + 1)
            if j > i + 1:
                try:
                    out.append(chr(int(body[i + 1:j], 16)))
                    i = j + 1
                    continue
                except ValueError:
                    pass
        out.append(c)
        i += 1
    return "".join(out)
