"""TOTP MFA over HTTP (auth/totp.py holds the state).

A signed-in user (a session; API keys have no second factor):
- ``GET /api/v1/auth/mfa``: ``{"enabled", "pending", "recovery_codes_left", "required_by_org"}``;
- ``POST /api/v1/auth/mfa/enrol``: a new secret, its ``otpauth://`` URI and the URI as a QR code
  (``qr_svg``, an SVG document to scan with an authenticator app; apps also accept the URI or secret);
- ``POST /api/v1/auth/mfa/confirm`` ``{"code"}``: MFA on; answers the 10 recovery codes, shown once;
- ``POST /api/v1/auth/mfa/disable`` ``{"code"}`` or ``{"recovery_code"}``: MFA off (403 while the
  organisation requires it).

Login in two steps: when the user has MFA, ``POST /api/v1/auth/login`` answers
``{"mfa_required": true, "mfa_token": "csm_..."}`` (no session); ``POST /api/v1/auth/login/mfa``
``{"mfa_token", "code"}`` (or ``"recovery_code"``) then starts the session. When the organisation
requires MFA and the user has none yet, login answers ``{"mfa_enrolment_required": true,
"mfa_token"}``; ``POST /api/v1/auth/login/mfa/enrol`` ``{"mfa_token"}`` gives the secret and URI and
``POST /api/v1/auth/login/mfa`` with the first code turns MFA on, answers the recovery codes and
starts the session. A token lives 5 minutes and allows 5 codes; wrong codes lock the user out with the
password lockout's backoff (429 + Retry-After). Basic-auth passwords are refused for such users.
Organisation policy: ``GET|PUT /api/v1/admin/mfa`` ``{"required": true}`` (``org:manage``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.auth_routes import guarded, json_body, principal_of, start_session, str_field
from clearsight.api.common import success
from clearsight.auth.directory import LoginResult
from clearsight.auth.errors import Forbidden, InvalidInput, Unauthenticated
from clearsight.auth.principal import Principal
from clearsight.auth.qr import qr_svg
from clearsight.auth.sessions import Sessions
from clearsight.auth.totp import Enrolment, Mfa, MfaChallenges


async def _run(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _enrolment(e: Enrolment) -> dict[str, Any]:
    return {"secret": e.secret, "otpauth_uri": e.otpauth_uri, "qr_svg": qr_svg(e.otpauth_uri)}


def _user_id(p: Principal) -> int:
    if p.kind != "user":
        raise Forbidden("MFA belongs to users: sign in with a username and password")
    return int(p.id)


class MfaApi:
    def __init__(self, mfa: Mfa, sessions: Sessions, challenges: MfaChallenges | None = None) -> None:
        self.mfa = mfa
        self.sessions = sessions
        self.challenges = challenges or MfaChallenges()

    def needs_second_factor(self, user_id: int, org: str) -> bool:
        """For basic-auth logins (auth/resolver.py): a password alone is not enough."""
        return self.mfa.enabled(user_id) or self.mfa.org_requires(org)

    async def second_factor(self, res: LoginResult, org: str) -> dict[str, Any] | None:
        """The login hook (api/auth_routes.py): None, or the challenge answered instead of a session."""
        self.challenges.check_locked(res.user_id)
        if await _run(self.mfa.enabled, res.user_id):
            return {"mfa_required": True, "mfa_token": self.challenges.create(res.user_id, res.username, org, res.orgs,
                                                                             enrol=False)}
        if await _run(self.mfa.org_requires, org):
            return {"mfa_enrolment_required": True,
                    "mfa_token": self.challenges.create(res.user_id, res.username, org, res.orgs, enrol=True)}
        return None

    def routes(self) -> list[Route]:
        mfa, challenges = self.mfa, self.challenges

        async def status(request: Request) -> Response:
            p = principal_of(request)
            st = await _run(mfa.status, _user_id(p))
            return success({"enabled": st.enabled, "pending": st.pending,
                            "recovery_codes_left": st.recovery_codes_left,
                            "required_by_org": await _run(mfa.org_requires, p.org)})

        async def enrol(request: Request) -> Response:
            p = principal_of(request)
            e = await _run(mfa.enrol, _user_id(p), p.name)
            return success(_enrolment(e))

        async def confirm(request: Request) -> Response:
            p = principal_of(request)
            doc = await json_body(request)
            codes = await _run(mfa.confirm, _user_id(p), str_field(doc, "code"))
            return success({"enabled": True, "recovery_codes": codes})

        async def disable(request: Request) -> Response:
            p = principal_of(request)
            uid = _user_id(p)
            doc = await json_body(request)
            code = str_field(doc, "code", required=False)
            recovery = str_field(doc, "recovery_code", required=False)
            if await _run(mfa.org_requires, p.org):
                raise Forbidden(f"organisation {p.org!r} requires MFA")
            if not (code or recovery):
                raise InvalidInput('send "code" or "recovery_code"')
            if not await _run(lambda: mfa.verify(uid, code, recovery)):
                raise Unauthenticated("wrong or used code")
            await _run(mfa.disable, uid)
            return success({"enabled": False})

        async def login_enrol(request: Request) -> Response:
            doc = await json_body(request)
            c = challenges.get(str_field(doc, "mfa_token"))
            if c is None or not c.enrol:
                raise Unauthenticated("unknown or expired mfa_token: log in again")
            e = await _run(mfa.enrol, c.user_id, c.username)
            return success(_enrolment(e))

        async def login_mfa(request: Request) -> Response:
            doc = await json_body(request)
            token = str_field(doc, "mfa_token")
            code = str_field(doc, "code", required=False)
            recovery = str_field(doc, "recovery_code", required=False)
            if not (code or recovery):
                raise InvalidInput('send "code" or "recovery_code"')
            c = challenges.get(token)
            if c is None:
                raise Unauthenticated("unknown or expired mfa_token: log in again")
            challenges.check_locked(c.user_id)
            recovery_codes: list[str] | None = None
            if c.enrol:
                try:
                    recovery_codes = await _run(mfa.confirm, c.user_id, code)
                    ok = True
                except InvalidInput:
                    ok = False
            else:
                ok = await _run(lambda: mfa.verify(c.user_id, code, recovery))
            if not ok:
                challenges.failed(token, c)
                raise Unauthenticated("wrong or used code")
            challenges.finish(token)
            challenges.succeeded(c.user_id)
            resp = await start_session(request, self.sessions, LoginResult(c.user_id, c.username, c.orgs), c.org)
            if recovery_codes is not None:
                resp = _with_recovery_codes(resp, recovery_codes)
            return resp

        async def get_policy(request: Request) -> Response:
            p = principal_of(request)
            return success({"org": p.org, "required": await _run(mfa.org_requires, p.org)})

        async def set_policy(request: Request) -> Response:
            p = principal_of(request)
            doc = await json_body(request)
            required = doc.get("required")
            if not isinstance(required, bool):
                raise InvalidInput('field "required" must be true or false')
            await _run(mfa.set_org_required, p.org, required)
            return success({"org": p.org, "required": required})

        return [
            Route("/api/v1/auth/mfa", guarded(status), methods=["GET"]),
            Route("/api/v1/auth/mfa/enrol", guarded(enrol), methods=["POST"]),
            Route("/api/v1/auth/mfa/confirm", guarded(confirm), methods=["POST"]),
            Route("/api/v1/auth/mfa/disable", guarded(disable), methods=["POST"]),
            Route("/api/v1/auth/login/mfa", guarded(login_mfa), methods=["POST"]),
            Route("/api/v1/auth/login/mfa/enrol", guarded(login_enrol), methods=["POST"]),
            Route("/api/v1/admin/mfa", guarded(get_policy), methods=["GET"]),
            Route("/api/v1/admin/mfa", guarded(set_policy), methods=["PUT"]),
        ]


def _with_recovery_codes(resp: Response, codes: list[str]) -> Response:
    """The session response with ``recovery_codes`` added to its data (cookies kept)."""
    doc = orjson.loads(resp.body)
    doc["data"]["recovery_codes"] = codes
    body = orjson.dumps(doc)
    resp.body = body
    resp.headers["content-length"] = str(len(body))
    return resp
