"""Administration of identity under ``/api/v1/admin/``: organisations (``orgs:cross``), users and
memberships, roles (``users:manage``), API keys (``keys:manage``). Every read and change is scoped
to the caller's organisation (ids of other organisations answer 404), and nobody grants a role with
permissions they do not hold themselves."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.auth_routes import guarded, json_body, principal_of, str_field
from clearsight.api.common import success
from clearsight.auth.directory import Directory
from clearsight.auth.errors import Forbidden, InvalidInput, NotFound
from clearsight.auth.keys import ApiKeys, parse_cidrs
from clearsight.auth.label_scope import parse_selector
from clearsight.auth.permissions import unknown_permissions
from clearsight.auth.principal import Principal
from clearsight.auth.resolver import Authenticator
from clearsight.config import parse_duration_ms


async def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


def _int_id(request: Request) -> int:
    raw = request.path_params["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"{raw!r} not found")
    return int(raw)


def _ensure_grantable(directory: Directory, p: Principal, role: str) -> None:
    perms = directory.role_permissions(p.org, role)
    if perms is None:
        raise InvalidInput(f"unknown role {role!r}")
    missing = perms - p.permissions
    if missing:
        raise Forbidden(f"role {role!r} has permissions you do not hold: {', '.join(sorted(missing))}")
    _ensure_narrower(p, directory.role_selector(p.org, role), f"role {role!r}")


def _ensure_narrower(p: Principal, selector: str, what: str) -> None:
    """A principal narrowed by label matchers grants only what is narrowed at least as much."""
    if not p.selector:
        return
    mine = set(parse_selector(p.selector)[1])
    theirs = set(parse_selector(selector)[1]) if selector else set()
    if not mine <= theirs:
        raise Forbidden(f"{what} sees more than your {p.selector}: include those matchers in its selector")


def _dump(obj: Any) -> Any:
    return dataclasses.asdict(obj)


def make_admin_routes(directory: Directory, keys: ApiKeys, authenticator: Authenticator) -> list[Route]:
    changed = authenticator.forget_all  # cached principals must see revocations and role changes

    # -- organisations
    async def list_orgs(request: Request) -> Response:
        principal_of(request)
        return success([_dump(o) for o in await _run(directory.list_orgs)])

    async def create_org(request: Request) -> Response:
        principal_of(request)
        doc = await json_body(request)
        org = await _run(directory.create_org, str_field(doc, "name"))
        return success(_dump(org))

    async def delete_org(request: Request) -> Response:
        p = principal_of(request)
        name = request.path_params["name"]
        if name in (authenticator.default_org, p.home_org or p.org):
            raise InvalidInput("the default organisation and your own cannot be deleted")
        await _run(directory.delete_org, name)
        changed()
        return success({"deleted": name})

    # -- users
    async def list_users(request: Request) -> Response:
        p = principal_of(request)
        return success([_dump(m) for m in await _run(directory.list_members, p.org)])

    async def get_user(request: Request) -> Response:
        p = principal_of(request)
        return success(_dump(await _run(directory.member, p.org, _int_id(request))))

    async def create_user(request: Request) -> Response:
        p = principal_of(request)
        doc = await json_body(request)
        role = str_field(doc, "role", required=False, default="viewer")
        _ensure_grantable(directory, p, role)
        m = await _run(directory.create_user, str_field(doc, "username"), str_field(doc, "password"), p.org, role)
        return success(_dump(m))

    async def delete_user(request: Request) -> Response:
        p = principal_of(request)
        user_id = _int_id(request)
        if p.kind == "user" and p.id == str(user_id):
            raise InvalidInput("you cannot remove yourself")
        await _run(directory.remove_member, p.org, user_id)
        changed()
        return success({"deleted": user_id})

    async def set_membership(request: Request) -> Response:
        p = principal_of(request)
        doc = await json_body(request)
        role = str_field(doc, "role")
        _ensure_grantable(directory, p, role)
        m = await _run(directory.set_membership, str_field(doc, "username"), p.org, role)
        changed()
        return success(_dump(m))

    # -- roles
    async def list_roles(request: Request) -> Response:
        p = principal_of(request)
        return success([_dump(r) for r in await _run(directory.list_roles, p.org)])

    async def create_role(request: Request) -> Response:
        p = principal_of(request)
        doc = await json_body(request)
        perms = doc.get("permissions")
        if not isinstance(perms, list) or not all(isinstance(x, str) for x in perms):
            raise InvalidInput('field "permissions" must be a list of permission names')
        bad = unknown_permissions(set(perms))
        if bad:
            raise InvalidInput(f"unknown permissions: {', '.join(bad)}")
        missing = set(perms) - p.permissions
        if missing:
            raise Forbidden(f"you do not hold: {', '.join(sorted(missing))}")
        selector = str_field(doc, "selector", required=False)
        _ensure_narrower(p, parse_selector(selector)[0] if selector else "", "this role")
        return success(_dump(await _run(directory.create_role, p.org, str_field(doc, "name"), perms, selector)))

    async def delete_role(request: Request) -> Response:
        p = principal_of(request)
        await _run(directory.delete_role, p.org, request.path_params["name"])
        changed()
        return success({"deleted": request.path_params["name"]})

    # -- API keys
    async def list_keys(request: Request) -> Response:
        p = principal_of(request)
        return success([_dump(k) for k in await _run(keys.list, p.org)])

    async def create_key(request: Request) -> Response:
        p = principal_of(request)
        doc = await json_body(request)
        role = str_field(doc, "role")
        _ensure_grantable(directory, p, role)
        expires_ms = None
        expires_in = str_field(doc, "expires_in", required=False)
        if expires_in:
            try:
                expires_ms = int(time.time() * 1000) + parse_duration_ms(expires_in)
            except ValueError as e:
                raise InvalidInput(f'field "expires_in": {e}') from None
        cidrs = doc.get("allowed_cidrs", [])
        if not isinstance(cidrs, list) or not all(isinstance(c, str) for c in cidrs):
            raise InvalidInput('field "allowed_cidrs" must be a list of CIDRs')
        view, key = await _run(keys.create, p.org, str_field(doc, "name"), role, expires_ms=expires_ms,
                               allowed_cidrs=cidrs)
        return success({**_dump(view), "key": key})

    async def revoke_key(request: Request) -> Response:
        p = principal_of(request)
        view = await _run(keys.revoke, p.org, _int_id(request))
        changed()
        return success(_dump(view))

    # -- the organisation's IP allowlist (auth/org_networks.py)
    nets = authenticator.org_networks

    async def get_allowlist(request: Request) -> Response:
        p = principal_of(request)
        return success({"cidrs": await _run(nets.get, p.org) if nets else []})

    async def set_allowlist(request: Request) -> Response:
        p = principal_of(request)
        doc = await json_body(request)
        cidrs = doc.get("cidrs")
        if not isinstance(cidrs, list) or not all(isinstance(c, str) for c in cidrs) or len(cidrs) > 256:
            raise InvalidInput('field "cidrs" must be a list of at most 256 CIDRs ([] allows every address)')
        if nets is None:
            raise InvalidInput("IP allowlists are not available on this server")
        parsed = parse_cidrs(cidrs)
        client = request.client.host if request.client else ""
        if parsed and not any(_contains(c, client) for c in parsed):
            raise InvalidInput(f"the list does not contain your own address {client}: it would lock you out")
        org_id = (await _run(directory.get_org, p.org)).id
        saved = await _run(nets.set, org_id, parsed)
        changed()
        return success({"cidrs": saved})

    base = "/api/v1/admin"
    table: list[tuple[str, Any, str]] = [
        ("/ip_allowlist", get_allowlist, "GET"), ("/ip_allowlist", set_allowlist, "PUT"),
        ("/orgs", list_orgs, "GET"), ("/orgs", create_org, "POST"), ("/orgs/{name}", delete_org, "DELETE"),
        ("/users", list_users, "GET"), ("/users", create_user, "POST"), ("/users/{id}", get_user, "GET"),
        ("/users/{id}", delete_user, "DELETE"), ("/memberships", set_membership, "PUT"),
        ("/roles", list_roles, "GET"), ("/roles", create_role, "POST"), ("/roles/{name}", delete_role, "DELETE"),
        ("/apikeys", list_keys, "GET"), ("/apikeys", create_key, "POST"), ("/apikeys/{id}", revoke_key, "DELETE"),
    ]
    return [Route(base + path, guarded(fn), methods=[method]) for path, fn, method in table]


def _contains(cidr: str, host: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(cidr)
    except ValueError:
        return False
