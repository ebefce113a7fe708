"""Tenant ids: the one rule every surface (HTTP, gRPC, config) applies before a tenant is used.

Like Cortex/Mimir: 1 to ``MAX_TENANT_LENGTH`` characters from ``[A-Za-z0-9]`` and ``!-_.*'()``,
and not ``.`` or ``..`` (a tenant id may end up in a path or a label). Anything else is rejected
with ``InvalidTenant`` (HTTP 400, gRPC INVALID_ARGUMENT), naming the rule.
"""

from __future__ import annotations

import re

from clearsight.pipeline.errors import InvalidInput

MAX_TENANT_LENGTH = 128
_TENANT_RE = re.compile(r"[A-Za-z0-9!\-_.*'()]+")


class InvalidTenant(InvalidInput):
    """The tenant id breaks the rule above (HTTP 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="invalid_tenant")


def tenant_error(tenant: str) -> str | None:
    """Why ``tenant`` is not a valid tenant id, or None when it is."""
    if not tenant:
        return "tenant id is empty"
    if len(tenant) > MAX_TENANT_LENGTH:
        return f"tenant id is longer than {MAX_TENANT_LENGTH} characters ({len(tenant)})"
    if tenant in (".", ".."):
        return f"tenant id {tenant!r} is not allowed"
    if _TENANT_RE.fullmatch(tenant) is None:
        bad = next(c for c in tenant if _TENANT_RE.fullmatch(c) is None)
        return f"tenant id contains the character {bad!r}: allowed are A-Z a-z 0-9 and !-_.*'()"
    return None


def validate_tenant(tenant: str) -> str:
    """Returns ``tenant`` unchanged, or raises ``InvalidTenant``."""
    err = tenant_error(tenant)
    if err is not None:
        raise InvalidTenant(err)
    return tenant
