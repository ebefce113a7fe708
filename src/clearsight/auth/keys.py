"""API keys in the state database: created per organisation with a role, an optional expiry and
IP allowlist; shown once, stored as SHA-256, revocable; last use recorded in batches."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from clearsight.auth.directory import Directory, now_ms
from clearsight.auth.errors import Conflict, InvalidInput, NotFound
from clearsight.auth.models import ApiKey, Organisation
from clearsight.auth.tokens import is_api_key, key_display_prefix, new_api_key, token_hash

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class KeyView:
    id: int
    org: str
    name: str
    prefix: str
    role: str
    allowed_cidrs: list[str]
    created_ms: int
    expires_ms: int | None
    revoked_ms: int | None
    last_used_ms: int | None


@dataclass(frozen=True)
class KeyGrant:
    """What the request path needs of a live key (looked up by hash)."""

    id: int
    name: str
    org: str
    role: str
    permissions: frozenset[str]
    networks: tuple[Network, ...]
    expires_ms: int | None


def parse_cidrs(text: str | list[str]) -> list[str]:
    items = [c.strip() for c in (text.split(",") if isinstance(text, str) else text) if c.strip()]
    out = []
    for c in items:
        try:
            out.append(str(ipaddress.ip_network(c, strict=False)))
        except ValueError:
            raise InvalidInput(f"invalid CIDR {c!r} in the IP allowlist") from None
    return out


def _view(k: ApiKey, org: str) -> KeyView:
    return KeyView(k.id, org, k.name, k.prefix, k.role, [c for c in k.allowed_cidrs.split(",") if c],
                   k.created_ms, k.expires_ms, k.revoked_ms, k.last_used_ms)


class ApiKeys:
    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.db = directory.db

    def create(self, org: str, name: str, role: str, *, expires_ms: int | None = None,
               allowed_cidrs: list[str] | str = "", value: str | None = None) -> tuple[KeyView, str]:
        """Creates a key; returns it and its plaintext (shown once). ``value`` imports a given key."""
        if not name or len(name) > 128 or not name.isprintable():
            raise InvalidInput("key name must be 1 to 128 printable characters")
        if self.directory.role_permissions(org, role) is None:
            raise InvalidInput(f"unknown role {role!r} in organisation {org!r}")
        if expires_ms is not None and expires_ms <= now_ms():
            raise InvalidInput("expiry must be in the future")
        cidrs = parse_cidrs(allowed_cidrs)
        key = value if value is not None else new_api_key()
        if not is_api_key(key):
            raise InvalidInput("an API key is 'cs_' followed by 20 to 253 characters")
        try:
            with self.db.session() as s, s.begin():
                o = s.scalar(select(Organisation).where(Organisation.name == org))
                if o is None:
                    raise NotFound(f"organisation {org!r} not found")
                row = ApiKey(org_id=o.id, name=name, key_hash=token_hash(key), prefix=key_display_prefix(key),
                             role=role, allowed_cidrs=",".join(cidrs), created_ms=now_ms(), expires_ms=expires_ms)
                s.add(row)
                s.flush()
                return _view(row, org), key
        except IntegrityError:
            raise Conflict("this key value already exists") from None

    def list(self, org: str) -> list[KeyView]:
        with self.db.session() as s:
            rows = s.scalars(select(ApiKey).join(Organisation, ApiKey.org_id == Organisation.id)
                             .where(Organisation.name == org).order_by(ApiKey.id))
            return [_view(k, org) for k in rows]

    def revoke(self, org: str, key_id: int) -> KeyView:
        """Revokes a key of ``org`` (NotFound for another organisation's key id)."""
        with self.db.session() as s, s.begin():
            k = s.scalar(select(ApiKey).join(Organisation, ApiKey.org_id == Organisation.id)
                         .where(Organisation.name == org, ApiKey.id == key_id))
            if k is None:
                raise NotFound(f"API key {key_id} not found")
            if k.revoked_ms is None:
                k.revoked_ms = now_ms()
            return _view(k, org)

    def grant(self, hashed: str, now: int) -> KeyGrant | None:
        """The live key with this hash (not revoked, not expired), None otherwise."""
        with self.db.session() as s:
            row = s.execute(select(ApiKey, Organisation.name).join(Organisation, ApiKey.org_id == Organisation.id)
                            .where(ApiKey.key_hash == hashed)).first()
        if row is None:
            return None
        k, org = row
        if k.revoked_ms is not None or (k.expires_ms is not None and k.expires_ms <= now):
            return None
        perms = self.directory.role_permissions(org, k.role)
        if perms is None:  # its custom role was deleted
            return None
        nets = tuple(ipaddress.ip_network(c) for c in k.allowed_cidrs.split(",") if c)
        return KeyGrant(k.id, k.name, org, k.role, perms, nets, k.expires_ms)

    def record_last_used(self, used: dict[int, int]) -> None:
        """Writes last-use times collected by the request path (one transaction for many keys)."""
        if not used:
            return
        with self.db.session() as s, s.begin():
            for key_id, ms in used.items():
                s.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_ms=ms))
