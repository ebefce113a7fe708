"""Prometheus' rules API: ``GET /api/v1/rules`` (filters ``type``, ``rule_name[]``,
``rule_group[]`` (also ``group_name[]``), ``file[]``), ``GET /api/v1/alerts`` and, with
``server.enable_lifecycle``, ``POST /-/reload`` (re-reads the rule files; a bad file keeps the
previous rules and answers 500 with the reasons); the per-tenant rule group API
(``make_rule_config_routes``). Rule files belong to the default tenant; every tenant also sees the
groups it manages through the API."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from clearsight.api.common import ApiError, TenantOf, error_response, json_response, success
from clearsight.rules.alerting import AlertingRule
from clearsight.rules.group import Group
from clearsight.rules.manager import RuleManager
from clearsight.rules.model import RuleFileError
from clearsight.rules.template import go_e
from clearsight.rules.tenants import NotFound, TenantRuleSets

Handler = Callable[[Request], Awaitable[Response]]


def _time(ms: int) -> str:
    if ms <= 0:
        return "0001-01-01T00:00:00Z"
    t = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC)
    frac = f".{ms % 1000:03d}".rstrip("0").rstrip(".")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def _value(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'e', -1, 64)``."""
    return go_e(v)


def _alert_json(a: Any) -> dict[str, Any]:
    return {"labels": dict(a.labels), "annotations": dict(a.annotations), "state": a.state,
            "activeAt": _time(a.active_at_ms), "value": _value(a.value)}


def _rule_json(r: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": r.name, "query": r.spec.expr}
    if isinstance(r, AlertingRule):
        base.update({"state": r.state(), "duration": r.spec.for_ms / 1000,
                     "keepFiringFor": r.spec.keep_firing_for_ms / 1000,
                     "labels": dict(r.spec.labels), "annotations": dict(r.spec.annotations),
                     "alerts": [_alert_json(a) for a in r.active_alerts()]})
    elif r.spec.labels:
        base["labels"] = dict(r.spec.labels)
    base["health"] = r.health
    if r.last_error:
        base["lastError"] = r.last_error
    base.update({"evaluationTime": r.eval_seconds, "lastEvaluation": _time(r.last_eval_ms),
                 "type": "alerting" if isinstance(r, AlertingRule) else "recording"})
    return base


def groups_json(groups: list[Group], typ: str, names: set[str], group_names: set[str],
                files: set[str]) -> list[dict[str, Any]]:
    out = []
    rule_filtered = bool(typ or names)
    for g in groups:
        if (group_names and g.name not in group_names) or (files and g.file not in files):
            continue
        rules = [r for r in g.rules
                 if (not typ or (typ == "alert") == isinstance(r, AlertingRule)) and (not names or r.name in names)]
        if rule_filtered and not rules:
            continue
        out.append({"name": g.name, "file": g.file, "rules": [_rule_json(r) for r in rules],
                    "interval": g.interval_ms / 1000, "limit": g.spec.limit,
                    "evaluationTime": g.stats.last_duration_s, "lastEvaluation": _time(g.stats.last_eval_ms)})
    return out


def make_rules_routes(manager: RuleManager, tenant_of: TenantOf, default_tenant: str,
                      sets: TenantRuleSets | None = None) -> list[Route]:
    def groups_of(tenant: str) -> list[Group]:
        """Rule files (default tenant) and the tenant's API-managed groups."""
        out = list(manager.groups) if tenant == default_tenant else []
        m = sets.managers.get(tenant) if sets is not None else None
        return out + (list(m.groups) if m is not None else [])

    async def rules(request: Request) -> Response:
        """Rule groups and their rules' state (Prometheus /api/v1/rules)."""
        try:
            q = request.query_params
            typ = q.get("type", "")
            if typ not in ("", "alert", "record"):
                raise ApiError("bad_data", f'invalid parameter "type": not supported value "{typ}"')
            groups = groups_of(tenant_of(request))
            data = groups_json(groups, typ, set(q.getlist("rule_name[]")),
                               set(q.getlist("rule_group[]")) | set(q.getlist("group_name[]")),
                               set(q.getlist("file[]")))
            return success({"groups": data})
        except ApiError as e:
            return error_response(e)

    async def alerts(request: Request) -> Response:
        """Pending and firing alerts (Prometheus /api/v1/alerts)."""
        try:
            tenant = tenant_of(request)
        except ApiError as e:
            return error_response(e)
        out = [_alert_json(a) for g in groups_of(tenant) for r in g.rules if isinstance(r, AlertingRule)
               for a in r.active_alerts()]
        return success({"alerts": out})

    return [Route("/api/v1/rules", rules, methods=["GET"]), Route("/api/v1/alerts", alerts, methods=["GET"])]


def make_reload_route(manager: RuleManager) -> Route:
    """``POST /-/reload`` (mounted when ``server.enable_lifecycle`` is on, as Prometheus'
    ``--web.enable-lifecycle``)."""

    async def reload(request: Request) -> Response:
        """Re-read the rule files (a bad file keeps the previous rules; 500 says why)."""
        ok, err = await manager.reload()
        if not ok:
            return PlainTextResponse(f"failed to reload config: {err}\n", status_code=500)
        return PlainTextResponse("", status_code=200)

    return Route("/-/reload", reload, methods=["POST", "PUT"])


def _bad(e: RuleFileError) -> Response:
    return error_response(ApiError("bad_data", "\n".join(e.errors)))


def make_rule_config_routes(sets: TenantRuleSets, tenant_of: TenantOf) -> list[Route]:
    """Rule groups managed per tenant (the request's tenant), Mimir-ruler style:
    ``GET|POST|PUT|DELETE /api/v1/rules/{namespace}`` and ``DELETE /api/v1/rules/{namespace}/{group}``.
    Bodies are YAML or JSON; a bad body is 400 naming the group, rule and field, and writes nothing."""

    async def namespace(request: Request) -> Response:
        """Rule namespace of the tenant: GET its rule file, POST one group (added or replaced by
        name), PUT the whole file, DELETE it."""
        ns = request.path_params["namespace"]
        try:
            tenant = tenant_of(request)
            if request.method == "GET":
                return PlainTextResponse(sets.namespace(tenant, ns), media_type="application/yaml")
            if request.method == "DELETE":
                await sets.delete_namespace(tenant, ns)
            else:
                text = (await request.body()).decode("utf-8", "replace")
                if request.method == "POST":
                    await sets.set_group(tenant, ns, text)
                else:
                    await sets.put_namespace(tenant, ns, text)
        except ApiError as e:
            return error_response(e)
        except RuleFileError as e:
            return _bad(e)
        except NotFound as e:
            return error_response(ApiError("not_found", str(e)))
        return json_response({"status": "success", "data": None}, 202)

    async def group(request: Request) -> Response:
        """Delete one rule group of a namespace."""
        try:
            await sets.delete_group(tenant_of(request), request.path_params["namespace"], request.path_params["group"])
        except ApiError as e:
            return error_response(e)
        except RuleFileError as e:
            return _bad(e)
        except NotFound as e:
            return error_response(ApiError("not_found", str(e)))
        return json_response({"status": "success", "data": None}, 202)

    return [Route("/api/v1/rules/{namespace}", namespace, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/api/v1/rules/{namespace}/{group}", group, methods=["DELETE"])]
