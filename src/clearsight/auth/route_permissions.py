"""The one table of what each HTTP route needs: a permission, ``AUTHENTICATED`` (any principal,
the anonymous one included) or ``PUBLIC`` (no principal at all). Main port and OTLP/HTTP port alike.

A route missing here is found by the authorization matrix test (tests/integration/test_auth_matrix.py),
which walks the live route table; at run time an unlisted path needs an authenticated principal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

from clearsight.auth import permissions as p

PUBLIC = "public"
AUTHENTICATED = "authenticated"

_R, _W = p.METRICS_READ, p.METRICS_WRITE

# (method, path template as the router declares it) -> requirement. HEAD follows GET.
ROUTES: dict[tuple[str, str], str] = {
    # probes, the UI shell and API descriptions: public
    ("GET", "/health"): PUBLIC, ("GET", "/ready"): PUBLIC, ("GET", "/-/healthy"): PUBLIC, ("GET", "/-/ready"): PUBLIC,
    ("GET", "/"): PUBLIC, ("GET", "/openapi.json"): PUBLIC, ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC, ("GET", "/redoc"): PUBLIC,
    ("GET", "/api/v1/status/buildinfo"): AUTHENTICATED,
    # identity
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("GET", "/api/v1/auth/me"): AUTHENTICATED,
    ("POST", "/api/v1/auth/logout"): AUTHENTICATED, ("POST", "/api/v1/auth/logout_all"): AUTHENTICATED,
    ("POST", "/api/v1/auth/refresh"): PUBLIC,
    ("GET", "/api/v1/auth/sso/providers"): PUBLIC, ("GET", "/api/v1/auth/sso/{name}/login"): PUBLIC,
    ("GET", "/api/v1/auth/sso/{name}/callback"): PUBLIC,
    ("GET", "/api/v1/admin/orgs"): p.ORGS_CROSS, ("POST", "/api/v1/admin/orgs"): p.ORGS_CROSS,
    ("DELETE", "/api/v1/admin/orgs/{name}"): p.ORGS_CROSS,
    ("GET", "/api/v1/admin/users"): p.USERS_MANAGE, ("POST", "/api/v1/admin/users"): p.USERS_MANAGE,
    ("GET", "/api/v1/admin/users/{id}"): p.USERS_MANAGE, ("DELETE", "/api/v1/admin/users/{id}"): p.USERS_MANAGE,
    ("PUT", "/api/v1/admin/memberships"): p.USERS_MANAGE,
    ("GET", "/api/v1/admin/roles"): p.USERS_MANAGE, ("POST", "/api/v1/admin/roles"): p.USERS_MANAGE,
    ("DELETE", "/api/v1/admin/roles/{name}"): p.USERS_MANAGE,
    ("GET", "/api/v1/admin/apikeys"): p.KEYS_MANAGE, ("POST", "/api/v1/admin/apikeys"): p.KEYS_MANAGE,
    ("DELETE", "/api/v1/admin/apikeys/{id}"): p.KEYS_MANAGE,
    ("GET", "/api/v1/audit"): p.AUDIT_READ,
    ("GET", "/api/v1/auth/mfa"): AUTHENTICATED, ("POST", "/api/v1/auth/mfa/enrol"): AUTHENTICATED,
    ("POST", "/api/v1/auth/mfa/confirm"): AUTHENTICATED, ("POST", "/api/v1/auth/mfa/disable"): AUTHENTICATED,
    ("POST", "/api/v1/auth/login/mfa"): PUBLIC, ("POST", "/api/v1/auth/login/mfa/enrol"): PUBLIC,
    ("GET", "/api/v1/admin/mfa"): p.ORG_MANAGE, ("PUT", "/api/v1/admin/mfa"): p.ORG_MANAGE,
    ("GET", "/api/v1/admin/ip_allowlist"): p.ORG_MANAGE, ("PUT", "/api/v1/admin/ip_allowlist"): p.ORG_MANAGE,
    ("GET", "/api/v1/admin/signing_secrets"): p.KEYS_MANAGE, ("POST", "/api/v1/admin/signing_secrets"): p.KEYS_MANAGE,
    ("DELETE", "/api/v1/admin/signing_secrets/{id}"): p.KEYS_MANAGE,
    ("GET", "/api/v1/usage"): p.ORG_MANAGE,
    # metrics
    ("GET", "/metrics"): _R,
    ("POST", "/api/v1/ingest/metrics"): _W, ("POST", "/api/v1/ingest/logs"): p.LOGS_WRITE,
    ("POST", "/api/v1/ingest/rum"): p.LOGS_WRITE, ("POST", "/api/v1/ingest/traces"): p.TRACES_WRITE,
    ("POST", "/api/v1/write"): _W, ("POST", "/v1/metrics"): _W, ("POST", "/api/v1/otlp/v1/metrics"): _W,
    ("POST", "/api/v1/read"): _R, ("GET", "/federate"): _R,
    ("GET", "/api/v1/label/{name}/values"): _R, ("GET", "/api/v1/metadata"): _R, ("GET", "/api/v1/targets"): _R,
    ("GET", "/api/v1/status/config"): _R, ("GET", "/api/v1/status/flags"): _R,
    ("GET", "/api/v1/status/runtimeinfo"): _R, ("GET", "/api/v1/status/tsdb"): _R,
    ("GET", "/api/v1/targets/metadata"): _R, ("GET", "/api/v1/alertmanagers"): _R,
    ("POST", "/api/v1/admin/tsdb/delete_series"): p.ORG_MANAGE, ("PUT", "/api/v1/admin/tsdb/delete_series"): p.ORG_MANAGE,
    ("POST", "/api/v1/admin/tsdb/clean_tombstones"): p.ORG_MANAGE,
    ("PUT", "/api/v1/admin/tsdb/clean_tombstones"): p.ORG_MANAGE,
    ("POST", "/api/v1/admin/tsdb/snapshot"): p.ORG_MANAGE, ("PUT", "/api/v1/admin/tsdb/snapshot"): p.ORG_MANAGE,
    # rules and alerts
    ("GET", "/api/v1/rules"): _R, ("GET", "/api/v1/alerts"): _R, ("GET", "/api/v1/rules/{namespace}"): _R,
    ("POST", "/api/v1/rules/{namespace}"): p.RULES_MANAGE, ("PUT", "/api/v1/rules/{namespace}"): p.RULES_MANAGE,
    ("DELETE", "/api/v1/rules/{namespace}"): p.RULES_MANAGE,
    ("DELETE", "/api/v1/rules/{namespace}/{group}"): p.RULES_MANAGE,
    ("POST", "/-/reload"): p.RULES_MANAGE, ("PUT", "/-/reload"): p.RULES_MANAGE,
    ("GET", "/api/v2/alerts"): _R, ("POST", "/api/v2/alerts"): p.RULES_MANAGE, ("GET", "/api/v2/alerts/groups"): _R,
    ("GET", "/api/v2/silences"): _R, ("POST", "/api/v2/silences"): p.SILENCES_MANAGE,
    ("GET", "/api/v2/silence/{id}"): _R, ("DELETE", "/api/v2/silence/{id}"): p.SILENCES_MANAGE,
    ("GET", "/api/v1/silence_schedules"): _R, ("POST", "/api/v1/silence_schedules"): p.SILENCES_MANAGE,
    ("DELETE", "/api/v1/silence_schedules/{id}"): p.SILENCES_MANAGE,
    ("GET", "/api/v2/status"): _R, ("GET", "/api/v2/receivers"): _R, ("GET", "/api/v1/notifications"): _R,
    # logs and events
    ("POST", "/loki/api/v1/push"): p.LOGS_WRITE, ("POST", "/v1/logs"): p.LOGS_WRITE,
    ("POST", "/_bulk"): p.LOGS_WRITE, ("PUT", "/_bulk"): p.LOGS_WRITE,
    ("POST", "/{index}/_bulk"): p.LOGS_WRITE, ("PUT", "/{index}/_bulk"): p.LOGS_WRITE,
    ("GET", "/_license"): PUBLIC, ("GET", "/_template/{name}"): p.LOGS_WRITE, ("PUT", "/_template/{name}"): p.LOGS_WRITE,
    ("GET", "/_index_template/{name}"): p.LOGS_WRITE, ("PUT", "/_index_template/{name}"): p.LOGS_WRITE,
    ("POST", "/api/v1/events"): p.EVENTS_WRITE, ("POST", "/api/v1/falco"): p.EVENTS_WRITE,
    ("GET", "/api/v1/events"): p.EVENTS_READ,
    ("GET", "/loki/api/v1/query_range"): p.LOGS_READ, ("GET", "/loki/api/v1/query"): p.LOGS_READ,
    ("GET", "/loki/api/v1/labels"): p.LOGS_READ, ("GET", "/loki/api/v1/label/{name}/values"): p.LOGS_READ,
    ("GET", "/loki/api/v1/series"): p.LOGS_READ,
    ("GET", "/loki/api/v1/index/stats"): p.LOGS_READ, ("GET", "/loki/api/v1/index/volume"): p.LOGS_READ,
    ("GET", "/loki/api/v1/index/volume_range"): p.LOGS_READ, ("WS", "/loki/api/v1/tail"): p.LOGS_READ,
    ("GET", "/loki/api/v1/detected_fields"): p.LOGS_READ, ("GET", "/loki/api/v1/patterns"): p.LOGS_READ,
    ("GET", "/loki/api/v1/detected_labels"): p.LOGS_READ, ("GET", "/loki/api/v1/format_query"): p.LOGS_READ,
    ("GET", "/api/v1/logs"): p.LOGS_READ, ("GET", "/api/v1/logs/export"): p.LOGS_READ,
    ("GET", "/api/v1/logs/context"): p.LOGS_READ, ("WS", "/ws/logs"): p.LOGS_READ,
    # traces
    ("POST", "/v1/traces"): p.TRACES_WRITE, ("GET", "/api/v1/traces/{trace_id}"): p.TRACES_READ,
    # resources, health, correlations, live metrics (WebSocket: method "WS")
    ("POST", "/api/v1/resources/heartbeat"): _W, ("GET", "/api/v1/resources"): _R,
    ("GET", "/api/v1/resources/{id}"): _R, ("GET", "/api/v1/resources/{id}/health"): _R,
    ("GET", "/api/v1/resources/{id}/health/history"): _R, ("GET", "/status"): _R,
    ("GET", "/api/v1/health/map"): _R,
    ("GET", "/api/v1/correlations"): p.EVENTS_READ,
    ("WS", "/ws/metrics"): _R,
    # saved dashboards (api/dashboards.py)
    ("GET", "/api/v1/dashboards"): _R, ("POST", "/api/v1/dashboards"): p.DASHBOARDS_MANAGE,
    ("GET", "/api/v1/dashboards/{id}"): _R, ("PUT", "/api/v1/dashboards/{id}"): p.DASHBOARDS_MANAGE,
    ("DELETE", "/api/v1/dashboards/{id}"): p.DASHBOARDS_MANAGE,
}
for _path in ("/api/v1/series", "/api/v1/labels", "/api/v1/query", "/api/v1/query_range", "/api/v1/catalog",
              "/api/v1/latest", "/api/v1/format_query", "/api/v1/parse_query", "/api/v1/query_exemplars"):
    ROUTES[("GET", _path)] = ROUTES[("POST", _path)] = _R

# Static UI assets: public (the page is; its API calls are not).
PUBLIC_PREFIXES = ("/assets/", "/ui/", "/ui")

_PARAM = re.compile(r"\{[^}/]+\}")


def template_regex(template: str) -> re.Pattern[str]:
    parts = _PARAM.split(template)
    return re.compile("^" + "[^/]+".join(re.escape(x) for x in parts) + "$")


_TEMPLATED = [(m, template_regex(t), rule) for (m, t), rule in ROUTES.items() if "{" in t]

T = TypeVar("T")


def match_route(exact: Mapping[tuple[str, str], T], templated: list[tuple[str, re.Pattern[str], T]], method: str,
                path: str) -> T | None:
    """The entry of ``(method, path)`` in a route table: the exact path first, then the templates
    (``templated``: ``(method, template_regex(template), entry)``); HEAD follows GET."""
    if method == "HEAD":
        method = "GET"
    rule = exact.get((method, path))
    if rule is not None:
        return rule
    for m, rx, r in templated:
        if m == method and rx.match(path):
            return r
    return None


def requirement(method: str, path: str) -> str:
    """What a request for ``path`` needs (exact paths first, then templates, then prefixes)."""
    rule = match_route(ROUTES, _TEMPLATED, method, path)
    if rule is not None:
        return rule
    if path.startswith(PUBLIC_PREFIXES) and method in ("GET", "HEAD"):
        return PUBLIC
    return AUTHENTICATED


def declared(method: str, template: str) -> str | None:
    """The rule declared for a route template (None: the route has no rule; the matrix test fails)."""
    if template.startswith(PUBLIC_PREFIXES) and method in ("GET", "HEAD"):
        return PUBLIC
    return ROUTES.get(("GET" if method == "HEAD" else method, template))
