"""Signing secrets of the caller's organisation (``keys:manage``): ``GET|POST
/api/v1/admin/signing_secrets`` (create answers the secret once: ``{"key_id", "secret", ...}``) and
``DELETE /api/v1/admin/signing_secrets/{id}`` (revoke). See auth/signing.py."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.auth_routes import guarded, json_body, principal_of, str_field
from clearsight.api.common import success
from clearsight.auth.errors import NotFound
from clearsight.auth.signing import SigningSecrets, Verifier


async def _run(fn: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def make_signing_routes(secrets: SigningSecrets, verifiers: list[Verifier]) -> list[Route]:
    async def list_secrets(request: Request) -> Response:
        p = principal_of(request)
        return success([dataclasses.asdict(v) for v in await _run(secrets.list, p.org)])

    async def create_secret(request: Request) -> Response:
        p = principal_of(request)
        doc = await json_body(request)
        view, secret = await _run(secrets.create, p.org, str_field(doc, "name"))
        return success({**dataclasses.asdict(view), "secret": secret})

    async def revoke_secret(request: Request) -> Response:
        p = principal_of(request)
        raw = request.path_params["id"]
        if not raw.isdigit() or len(raw) > 18:
            raise NotFound(f"{raw!r} not found")
        view = await _run(secrets.revoke, p.org, int(raw))
        for v in verifiers:
            v.forget()
        return success(dataclasses.asdict(view))

    base = "/api/v1/admin/signing_secrets"
    return [Route(base, guarded(list_secrets), methods=["GET"]), Route(base, guarded(create_secret), methods=["POST"]),
            Route(base + "/{id}", guarded(revoke_secret), methods=["DELETE"])]
