"""The principal: who a request acts as, resolved once per request and handed to handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from clearsight.auth.permissions import ORGS_CROSS

Kind = Literal["user", "apikey", "anonymous"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Kind
    id: str  # user id, API key id, or "anonymous"
    name: str  # username, key name, or "anonymous"
    org: str  # the organisation this request acts in (the tenant id)
    roles: tuple[str, ...]
    permissions: frozenset[str]
    home_org: str = ""  # the principal's own organisation when ``org`` was switched by X-Scope-OrgID
    selector: str = ""  # label matchers narrowing every read, e.g. {team="payments"} (auth/label_scope.py)

    @property
    def anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def may_cross_org(self) -> bool:
        return ORGS_CROSS in self.permissions

    def in_org(self, org: str) -> Principal:
        """The same principal acting in ``org`` (X-Scope-OrgID of a cross-organisation principal)."""
        return Principal(self.kind, self.id, self.name, org, self.roles, self.permissions, self.home_org or self.org,
                         self.selector)

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/v1/auth/me`` answers (the UI hides what the principal may not do)."""
        return {"kind": self.kind, "id": self.id, "name": self.name, "org": self.org,
                "home_org": self.home_org or self.org, "roles": list(self.roles),
                "permissions": sorted(self.permissions), "anonymous": self.anonymous,
                "may_cross_org": self.may_cross_org, "selector": self.selector}


SCOPE_KEY = "principal"


def principal_of_scope(scope: Any) -> Principal | None:
    """The principal the auth middleware put into an ASGI scope (None when none ran)."""
    state = scope.get("state")
    return state.get(SCOPE_KEY) if state else None
