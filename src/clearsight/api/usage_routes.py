"""``GET /api/v1/usage`` (``org:manage``): the caller's organisation's usage per UTC day and month
with cost estimates (auth/usage.py). Parameters ``from`` and ``to`` (``YYYY-MM-DD``, inclusive;
default: the first day of the previous month to today; at most 400 days)."""

from __future__ import annotations

import asyncio
import datetime as dt

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.auth_routes import guarded, principal_of
from clearsight.api.common import success
from clearsight.auth.errors import InvalidInput
from clearsight.auth.usage import GAUGES, KINDS, Usage

MAX_DAYS = 400


def _day(raw: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f'parameter "{name}" must be a date YYYY-MM-DD, got {raw[:40]!r}') from None


def make_usage_routes(usage: Usage) -> list[Route]:
    async def get_usage(request: Request) -> Response:
        p = principal_of(request)
        today = dt.datetime.fromtimestamp(usage.clock(), dt.UTC).date()
        first_prev_month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
        q = request.query_params
        start = _day(q["from"], "from") if q.get("from") else first_prev_month
        end = _day(q["to"], "to") if q.get("to") else today
        if end < start:
            raise InvalidInput('"to" is before "from"')
        if (end - start).days >= MAX_DAYS:
            raise InvalidInput(f"at most {MAX_DAYS} days per request")
        days = await asyncio.get_running_loop().run_in_executor(
            None, usage.daily, p.org, start.isoformat(), end.isoformat())
        daily = []
        months: dict[str, dict[str, int]] = {}
        for day in sorted(days):
            counts = {k: days[day].get(k, 0) for k in KINDS}
            daily.append({"date": day, "counts": counts, "cost": usage.prices.cost(counts)})
            m = months.setdefault(day[:7], dict.fromkeys(KINDS, 0))
            for k in KINDS:
                m[k] = max(m[k], counts[k]) if k in GAUGES else m[k] + counts[k]
        monthly = [{"month": m, "counts": c, "cost": usage.prices.cost(c)} for m, c in sorted(months.items())]
        pr = usage.prices
        return success({"org": p.org, "from": start.isoformat(), "to": end.isoformat(), "daily": daily,
                        "monthly": monthly,
                        "prices": {"per_million_samples": pr.per_million_samples, "per_gib_logs": pr.per_gib_logs,
                                   "per_thousand_queries": pr.per_thousand_queries,
                                   "per_million_spans": pr.per_million_spans},
                        "quotas": {"samples_per_day": usage.quota_samples or None,
                                   "log_bytes_per_day": usage.quota_log_bytes or None,
                                   "spans_per_day": usage.quota_spans or None}})

    return [Route("/api/v1/usage", guarded(get_usage), methods=["GET"])]
