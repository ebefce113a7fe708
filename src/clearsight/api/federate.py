"""``GET /federate?match[]=...``: Prometheus federation. The latest sample of every series matching any
``match[]`` selector within the lookback (``query.lookback_delta``) before now, in the text exposition
format (0.0.4) as Prometheus writes it: one ``# TYPE <name> untyped`` line per metric name (families
sorted by name), series sorted by labels, sample lines ``name{labels} value timestamp_ms`` with Go's
float formatting. Series whose latest sample is a stale marker are left out, and so are series whose
latest sample is a native histogram: the text format has no native histograms (Prometheus
federates them only in the protobuf format, which this endpoint does not offer).

A Prometheus (or Clearsight's own scraper) scrapes it with ``honor_labels: true`` to keep the
federated ``job`` and ``instance`` (otherwise they become ``exported_job``/``exported_instance``).

Errors (plain text, as Prometheus): 400 with no ``match[]`` or an unparsable selector. Reads are per
tenant and go through the query admission control (503 + Retry-After when the queue is full).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from clearsight.api.common import ApiError, TenantOf, params
from clearsight.api.discovery import latest_samples
from clearsight.api.prometheus_read import parse_match_params
from clearsight.api.query_admission import Unavailable, api_error_response, governed
from clearsight.model.histogram_text import go_format_g
from clearsight.model.labels import METRIC_NAME, Labels
from clearsight.query.governor import QueryGovernor
from clearsight.store.interface import MetricsStore

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(latest: dict[Labels, tuple[int, float]]) -> str:
    """The exposition text of ``labels -> (timestamp ms, value)``."""
    families: dict[str, list[tuple[Labels, int, float]]] = {}
    for labels, (t, v) in latest.items():
        name = next((val for n, val in labels if n == METRIC_NAME), "")
        if name:
            families.setdefault(name, []).append((labels, t, v))
    out: list[str] = []
    for name in sorted(families):
        out.append(f"# TYPE {name} untyped\n")
        for labels, t, v in sorted(families[name]):
            rest = ",".join(f'{n}="{_escape(val)}"' for n, val in labels if n != METRIC_NAME)
            out.append(f"{name}{{{rest}}} {go_format_g(v)} {t}\n" if rest else f"{name} {go_format_g(v)} {t}\n")
    return "".join(out)


def make_federate_handler(store: MetricsStore, tenant_of: TenantOf, gov: QueryGovernor,
                          lookback_ms: int) -> Callable[[Request], Awaitable[Response]]:
    async def federate(request: Request) -> Response:
        try:
            p = await params(request)
            matcher_sets = parse_match_params(p, required=True)
            tenant = tenant_of(request)
            now = int(time.time() * 1000)

            latest = await governed(gov, request, tenant,
                                    lambda: latest_samples(store, tenant, matcher_sets, now - lookback_ms, now))
        except Unavailable as e:
            return api_error_response(e)
        except ApiError as e:
            return Response(e.message + "\n", status_code=e.status, media_type="text/plain; charset=utf-8")
        return Response(render(latest), media_type=CONTENT_TYPE)

    return federate
