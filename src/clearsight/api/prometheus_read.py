"""Prometheus metadata API: ``/api/v1/series``, ``/api/v1/labels``, ``/api/v1/label/<name>/values``,
``/api/v1/metadata``. GET and POST (form) like Prometheus; exact response shapes."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

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


def make_read_handlers(store: MetricsStore, tenant_of: TenantOf,
                       governor: QueryGovernor | None = None) -> dict[str, Handler]:
    """The metadata handlers; their store reads run under ``governor`` (admission control, the
    query pool)."""
    gov = governor if governor is not None else make_governor(QueryConfig())

    def listing(lister: Callable[[Request], Lister], match_required: bool,
                render: Callable[[list[Any]], Any] = lambda items: items) -> Handler:
        """A handler for match[]/start/end/limit listings: fetch one more than ``limit`` to know
        whether to warn about truncation."""

        async def handler(request: Request) -> Response:
            try:
                p = await params(request)
                matchers = parse_match_params(p, required=match_required)
                start, end = _range(p)
                limit = limit_param(p)
                tenant = tenant_of(request)
                fetch = None if limit is None else limit + 1
                found = await governed(gov, request, tenant,
                                       functools.partial(lister(request), tenant, matchers, start, end, fetch))
            except ApiError as e:
                return api_error_response(e)
            items, warnings = _truncate(found, limit)
            return success(render(items), warnings)

        return handler

    def label_values_of(request: Request) -> Lister:
        name = request.path_params["name"]
        if name.startswith("U__"):
            name = _unescape_utf8_label(name)
        def values(tenant: str, matchers: list[list[Matcher]], start: int, end: int, limit: int | None) -> list[str]:
            return store.label_values(tenant, name, matchers, start, end, limit)

        return values

    series = listing(lambda _r: store.series, True, lambda items: [dict(lbls) for lbls in items])
    labels = listing(lambda _r: store.label_names, False)
    label_values = listing(label_values_of, False)

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

    return {"series": series, "labels": labels, "label_values": label_values, "metadata": metadata}


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
