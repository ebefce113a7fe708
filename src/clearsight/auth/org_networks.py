"""Per-organisation IP allowlists: when an organisation has one, every credential of it (API keys,
sessions, basic-auth users, signed-ingestion keys) is refused (403) from any other address, on the
HTTP listeners and over gRPC. An empty list allows every address (the default).

The lists of all organisations are held in memory as one snapshot (the request path only reads
it), reloaded from ``org_policies.allowed_cidrs`` in a worker thread when it is older than the
credential cache's TTL, and at once after a change through this server."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable

from sqlalchemy import select

from clearsight.auth.keys import Network, parse_cidrs
from clearsight.auth.models import Organisation, OrgPolicy
from clearsight.auth.state import StateDb


class OrgNetworks:
    def __init__(self, db: StateDb, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.clock = clock
        self._nets: dict[str, tuple[Network, ...]] = {}
        self._loaded = -1e18
        self._lock = threading.Lock()
        self.load()

    def load(self) -> None:
        """Reads every organisation's list (blocking: a worker thread)."""
        with self.db.session() as s:
            rows = s.execute(
                select(Organisation.name, OrgPolicy.allowed_cidrs)
                .join(OrgPolicy, OrgPolicy.org_id == Organisation.id)
                .where(OrgPolicy.allowed_cidrs != "")
            ).all()
        nets = {org: tuple(ipaddress.ip_network(c) for c in cidrs.split(",") if c) for org, cidrs in rows}
        with self._lock:
            self._nets = nets
            self._loaded = self.clock()

    def refresh_if_due(self) -> None:
        if self.clock() - self._loaded >= self.ttl_s:
            self.load()

    def allows(self, org: str, host: str | None) -> bool:
        """Whether ``host`` may use ``org``'s credentials (no I/O: the request path)."""
        nets = self._nets.get(org)
        if not nets:
            return True
        try:
            ip = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(ip in n for n in nets)

    def get(self, org: str) -> list[str]:
        with self.db.session() as s:
            cidrs = s.scalar(
                select(OrgPolicy.allowed_cidrs)
                .join(Organisation, Organisation.id == OrgPolicy.org_id)
                .where(Organisation.name == org)
            )
        return [c for c in (cidrs or "").split(",") if c]

    def set(self, org_id: int, cidrs: list[str]) -> list[str]:
        """Replaces an organisation's list (``[]`` removes it); InvalidInput for a bad CIDR."""
        parsed = parse_cidrs(cidrs)
        with self.db.session() as s, s.begin():
            row = s.get(OrgPolicy, org_id)
            if row is None:
                s.add(OrgPolicy(org_id=org_id, mfa_required=False, allowed_cidrs=",".join(parsed)))
            else:
                row.allowed_cidrs = ",".join(parsed)
        self.load()
        return parsed
