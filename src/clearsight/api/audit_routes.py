"""The audit log over HTTP: ``GET /api/v1/audit`` (``audit:read``, the caller's organisation only) and
the recording of audited routes.

``audit_routes(routes, log, ...)`` wraps the routes named in ``ACTIONS`` (logins, logout, MFA,
organisation/user/role/key changes, rule and silence changes): after the response, one entry with the
principal (or, for a login, the username from the body), organisation, source IP, user agent, trace id,
outcome ("success" below status 400, else "failure") and a detail of status and the whitelisted body
fields in ``DETAIL_FIELDS`` (never passwords, keys, secrets or codes). ``CrossOrgAuditMiddleware``
records every request a *user* makes in an organisation other than their own (``X-Scope-OrgID``);
cross-organisation API keys (gateways) are not recorded per request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearsight.api.auth_routes import guarded, principal_of
from clearsight.api.common import ApiError, parse_time_ms, success
from clearsight.api.trace_context import trace_id_of_scope
from clearsight.auth.audit import FAILURE, SUCCESS, AuditEvent, AuditLog
from clearsight.auth.errors import InvalidInput
from clearsight.auth.principal import Principal, principal_of_scope

log = logging.getLogger("clearsight.audit")

ACTIONS: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/login"): "auth.login",
    ("POST", "/api/v1/auth/login/mfa"): "auth.login_mfa",
    ("GET", "/api/v1/auth/sso/{name}/callback"): "auth.sso_login",
    ("POST", "/api/v1/auth/logout"): "auth.logout", ("POST", "/api/v1/auth/logout_all"): "auth.logout_all",
    ("POST", "/api/v1/auth/mfa/enrol"): "mfa.enrol",
    ("POST", "/api/v1/auth/mfa/confirm"): "mfa.confirm",
    ("POST", "/api/v1/auth/mfa/disable"): "mfa.disable",
    ("PUT", "/api/v1/admin/mfa"): "org.mfa_policy",
    ("PUT", "/api/v1/admin/ip_allowlist"): "org.ip_allowlist",
    ("POST", "/api/v1/admin/orgs"): "org.create", ("DELETE", "/api/v1/admin/orgs/{name}"): "org.delete",
    ("POST", "/api/v1/admin/users"): "user.create", ("DELETE", "/api/v1/admin/users/{id}"): "user.remove",
    ("PUT", "/api/v1/admin/memberships"): "membership.set",
    ("POST", "/api/v1/admin/roles"): "role.create", ("DELETE", "/api/v1/admin/roles/{name}"): "role.delete",
    ("POST", "/api/v1/admin/apikeys"): "apikey.create", ("DELETE", "/api/v1/admin/apikeys/{id}"): "apikey.revoke",
    ("POST", "/api/v1/admin/signing_secrets"): "signing_secret.create",
    ("DELETE", "/api/v1/admin/signing_secrets/{id}"): "signing_secret.revoke",
    ("POST", "/api/v1/rules/{namespace}"): "rules.set", ("PUT", "/api/v1/rules/{namespace}"): "rules.set",
    ("DELETE", "/api/v1/rules/{namespace}"): "rules.delete", ("DELETE", "/api/v1/rules/{namespace}/{group}"): "rules.delete",
    ("POST", "/-/reload"): "rules.reload", ("PUT", "/-/reload"): "rules.reload",
    ("GET", "/api/v1/logs/export"): "logs.export",  # a bulk export of log lines: who took what, when
    ("POST", "/api/v2/silences"): "silence.set", ("DELETE", "/api/v2/silence/{id}"): "silence.expire",
    ("POST", "/api/v1/silence_schedules"): "silence_schedule.create",
    ("DELETE", "/api/v1/silence_schedules/{id}"): "silence_schedule.delete",
    ("POST", "/api/v1/admin/tsdb/delete_series"): "tsdb.delete_series",
    ("PUT", "/api/v1/admin/tsdb/delete_series"): "tsdb.delete_series",
}
# small JSON bodies whose whitelisted fields go into the entry's detail
WITH_BODY = frozenset(p for (m, p) in ACTIONS if p.startswith(("/api/v1/auth/", "/api/v1/admin/")))
DETAIL_FIELDS = ("username", "name", "role", "org", "permissions", "expires_in", "allowed_cidrs", "required",
                 "cidrs", "selector")
MAX_CAPTURE = 64 * 1024
# A handler may add what it did to its entry's detail: ``request.state.audit_detail = {...}``
# (e.g. the selectors a series deletion took, as they come in the query string, not a JSON body).
AUDIT_DETAIL = "audit_detail"


def actor_of(p: Principal | None, username: str = "") -> str:
    if p is None or (p.anonymous and username):
        return f"user:{username}" if username else "anonymous"
    return "anonymous" if p.anonymous else f"{p.kind}:{p.name}"


def event_context(scope: Scope) -> dict[str, str]:
    """Source IP, user agent and trace id of a request, for an AuditEvent."""
    client = scope.get("client")
    ua = ""
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            ua = value.decode("latin-1")
            break
    return {"source_ip": client[0] if client else "", "user_agent": ua, "trace_id": trace_id_of_scope(scope)}


async def record_async(audit: AuditLog, ev: AuditEvent) -> None:
    """Appends ``ev`` in a worker thread; a failure is logged, never raised into the request."""
    try:
        await asyncio.get_running_loop().run_in_executor(None, audit.record, ev)
    except Exception:
        log.exception("writing the audit log failed (action %s)", ev.action)


class _StatusOf:
    """A ``send`` that remembers the response status (0 when none was sent)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)


class _Audited:
    """One route's ASGI app, recorded after it answered."""

    def __init__(self, app: ASGIApp, audit: AuditLog, actions: dict[str, str], capture: bool,
                 default_org: str) -> None:
        self.app = app
        self.audit = audit
        self.actions = actions
        self.capture = capture
        self.default_org = default_org

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        action = self.actions.get(scope.get("method", ""))
        if action is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0

        async def capturing_receive() -> Message:
            nonlocal size
            msg = await receive()
            if self.capture and msg["type"] == "http.request" and size < MAX_CAPTURE:
                body = msg.get("body", b"")
                chunks.append(body)
                size += len(body)
            return msg

        answer = _StatusOf(send)
        try:
            await self.app(scope, capturing_receive if self.capture else receive, answer.send)
        finally:
            await record_async(self.audit, self._event(scope, action, answer.status, b"".join(chunks)))

    def _event(self, scope: Scope, action: str, status: int, body: bytes) -> AuditEvent:
        detail: dict[str, Any] = {"status": status, "method": scope.get("method", "")}
        doc: Any = None
        if body:
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                doc = None
        if isinstance(doc, dict):
            for k in DETAIL_FIELDS:
                if k in doc and isinstance(doc[k], str | int | bool | list):
                    detail[k] = doc[k]
        extra = (scope.get("state") or {}).get(AUDIT_DETAIL)  # set by the handler (request.state)
        if isinstance(extra, dict):
            detail.update(extra)
        p = principal_of_scope(scope)
        username = detail.get("username") if action.startswith("auth.login") else ""
        org = p.org if p is not None else str(detail.get("org") or self.default_org)
        return AuditEvent(action=action, outcome=SUCCESS if 0 < status < 400 else FAILURE, org=org,
                          actor=actor_of(p, username if isinstance(username, str) else ""),
                          target=scope.get("path", ""), detail=detail, **event_context(scope))


def audit_routes(routes: list[BaseRoute], audit: AuditLog, default_org: str,
                 actions: dict[tuple[str, str], str] = ACTIONS) -> None:
    """Wraps, in place, the app of every route in ``routes`` that ``actions`` names."""
    for r in routes:
        if not isinstance(r, Route) or not r.methods:
            continue
        mine = {m: actions[(m, r.path)] for m in r.methods if (m, r.path) in actions}
        if mine:
            r.app = _Audited(r.app, audit, mine, r.path in WITH_BODY, default_org)


class CrossOrgAuditMiddleware:
    """Records requests of users acting in another organisation (after the auth middleware)."""

    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    @staticmethod
    def audited(p: Principal | None) -> bool:
        """Whether requests of ``p`` are recorded: a user acting in another organisation."""
        return p is not None and p.kind == "user" and bool(p.home_org) and p.home_org != p.org

    @staticmethod
    def event(scope: Scope, p: Principal, status: int) -> AuditEvent:
        """The entry of an audited request (``audited(p)``) answered ``status`` (0: none sent)."""
        return AuditEvent(action="org.cross_access", outcome=SUCCESS if 0 < status < 400 else FAILURE,
                          org=p.org, actor=actor_of(p), target=scope["path"],
                          detail={"status": status, "method": scope["method"], "home_org": p.home_org},
                          **event_context(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        p = principal_of_scope(scope) if scope["type"] == "http" else None
        if p is None or not self.audited(p):
            await self.app(scope, receive, send)
            return
        answer = _StatusOf(send)
        try:
            await self.app(scope, receive, answer.send)
        finally:
            await record_async(self.audit, self.event(scope, p, answer.status))


def make_audit_api(audit: AuditLog) -> list[Route]:
    async def list_audit(request: Request) -> Response:
        p = principal_of(request)
        q = request.query_params
        try:
            since = parse_time_ms(q["since"], "since") if q.get("since") else None
            until = parse_time_ms(q["until"], "until") if q.get("until") else None
        except ApiError as e:
            raise InvalidInput(e.message) from None
        outcome = q.get("outcome")
        if outcome not in (None, "", SUCCESS, FAILURE):
            raise InvalidInput('outcome must be "success" or "failure"')
        raw_limit = q.get("limit", "1000")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 5000:
            raise InvalidInput("limit must be an integer from 1 to 5000")
        rows = await asyncio.get_running_loop().run_in_executor(None, lambda: audit.query(
            p.org, actor=q.get("actor") or None, action=q.get("action") or None, outcome=outcome or None,
            since_ms=since, until_ms=until, limit=int(raw_limit)))
        return success(rows)

    return [Route("/api/v1/audit", guarded(list_audit), methods=["GET"])]
