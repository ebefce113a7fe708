"""Permissions and the built-in roles made of them."""

from __future__ import annotations

METRICS_READ = "metrics:read"
METRICS_WRITE = "metrics:write"
LOGS_READ = "logs:read"
LOGS_WRITE = "logs:write"
EVENTS_READ = "events:read"
EVENTS_WRITE = "events:write"
TRACES_READ = "traces:read"
TRACES_WRITE = "traces:write"
RULES_MANAGE = "rules:manage"
SILENCES_MANAGE = "silences:manage"
DASHBOARDS_MANAGE = "dashboards:manage"
USERS_MANAGE = "users:manage"
KEYS_MANAGE = "keys:manage"
ORG_MANAGE = "org:manage"
AUDIT_READ = "audit:read"
ORGS_CROSS = "orgs:cross"

ALL_PERMISSIONS: frozenset[str] = frozenset({
    METRICS_READ, METRICS_WRITE, LOGS_READ, LOGS_WRITE, EVENTS_READ, EVENTS_WRITE, TRACES_READ, TRACES_WRITE,
    RULES_MANAGE, SILENCES_MANAGE, DASHBOARDS_MANAGE, USERS_MANAGE, KEYS_MANAGE, ORG_MANAGE, AUDIT_READ, ORGS_CROSS,
})

_READ = frozenset({METRICS_READ, LOGS_READ, EVENTS_READ, TRACES_READ})
_WRITE = frozenset({METRICS_WRITE, LOGS_WRITE, EVENTS_WRITE, TRACES_WRITE})
_EDIT = _READ | _WRITE | {RULES_MANAGE, SILENCES_MANAGE, DASHBOARDS_MANAGE}
_ADMIN = _EDIT | {USERS_MANAGE, KEYS_MANAGE, ORG_MANAGE, AUDIT_READ}

# Built-in roles (names reserved; custom roles are per organisation, in SQL). ``superadmin`` is the
# administrator of the server: an admin who may also act in, create and list other organisations.
BUILTIN_ROLES: dict[str, frozenset[str]] = {
    "viewer": _READ,
    "editor": _EDIT,
    "ingest": _WRITE,
    "admin": _ADMIN,
    "superadmin": _ADMIN | {ORGS_CROSS},
}


def unknown_permissions(perms: set[str] | frozenset[str]) -> list[str]:
    """The names in ``perms`` that are not permissions (sorted)."""
    return sorted(p for p in perms if p not in ALL_PERMISSIONS)
