"""Single sign-on with OpenID Connect (Google, AWS Cognito, Azure AD/Entra, Keycloak, any compliant
provider): the authorization code flow with PKCE (S256), ``state`` and ``nonce``; the ID token checked
against the provider's JWKS (signature with an asymmetric algorithm the provider announces, ``iss``,
``aud``, ``azp``, ``exp``, ``iat``, ``nonce``); groups (or any claim) mapped to a role; the user made
just in time.

Configured under ``auth.oidc_providers`` (a mapping: provider name -> settings, see ``parse_providers``
and docs/security.md "Single sign-on"). The HTTP side is api/sso_routes.py.

SSO users are ordinary users whose stored password hash is the marker ``!sso:<provider>:<hash of the
subject>``: no password verifies against it, and it binds the user name to the provider's subject,
so a local user, or another subject that claims the same name, is never taken over (403).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from clearsight.auth.directory import Directory, LoginResult
from clearsight.auth.errors import AuthError, Forbidden, InvalidInput, Unauthenticated

PENDING_TTL_S = 600.0  # a login started must come back within 10 minutes
MAX_PENDING = 10_000
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_USERNAME_BAD = re.compile(r"[^A-Za-z0-9._@+-]")
SSO_MARK = "!sso:"


class ProviderError(AuthError):
    """The identity provider failed or answered something unusable (502)."""

    status = 502
    error_type = "sso_provider"


@dataclass(frozen=True)
class OidcProvider:
    name: str
    issuer: str
    client_id: str
    client_secret: str
    display_name: str = ""
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    org: str = ""  # "" = tenancy.default_tenant
    groups_claim: str = "groups"
    roles: Mapping[str, str] = field(default_factory=dict)  # group -> role; the first listed match wins
    default_role: str = ""  # role when no group matches ("" = refuse the login)
    username_claim: str = "email"
    redirect_uri: str = ""  # "" = <this server's URL>/api/v1/auth/sso/<name>/callback


_KEYS = {
    "issuer",
    "client_id",
    "client_secret",
    "client_secret_env",
    "display_name",
    "scopes",
    "org",
    "groups_claim",
    "roles",
    "default_role",
    "username_claim",
    "redirect_uri",
}


def parse_providers(
    doc: Mapping[str, Any], default_org: str, env: Mapping[str, str] | None = None
) -> list[OidcProvider]:
    """``auth.oidc_providers``; raises ValueError naming the bad key."""
    env = os.environ if env is None else env
    out = []
    for name, raw in doc.items():
        where = f"auth.oidc_providers.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}: provider names are lower-case letters, digits, _ and -")
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: expected a mapping")
        unknown = set(raw) - _KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)} (known: {sorted(_KEYS)})")
        secret = str(raw.get("client_secret") or "")
        if raw.get("client_secret_env"):
            secret = env.get(str(raw["client_secret_env"]), "")
            if not secret:
                raise ValueError(
                    f"{where}.client_secret_env: environment variable {raw['client_secret_env']} is empty"
                )
        for key in ("issuer", "client_id"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise ValueError(f"{where}.{key}: required")
        if not str(raw["issuer"]).startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError(f"{where}.issuer: must be an https:// URL")
        if not secret:
            raise ValueError(
                f"{where}: client_secret or client_secret_env is required (a confidential client)"
            )
        roles = raw.get("roles") or {}
        if not isinstance(roles, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in roles.items()
        ):
            raise ValueError(f"{where}.roles: expected a mapping of group -> role")
        scopes = raw.get("scopes") or ["openid", "email", "profile"]
        if not isinstance(scopes, list) or "openid" not in scopes:
            raise ValueError(f"{where}.scopes: a list that includes openid")
        out.append(
            OidcProvider(
                name=name,
                issuer=str(raw["issuer"]).rstrip("/"),
                client_id=str(raw["client_id"]),
                client_secret=secret,
                display_name=str(raw.get("display_name") or name),
                scopes=tuple(str(s) for s in scopes),
                org=str(raw.get("org") or default_org),
                groups_claim=str(raw.get("groups_claim") or "groups"),
                roles=dict(roles),
                default_role=str(raw.get("default_role") or ""),
                username_claim=str(raw.get("username_claim") or "email"),
                redirect_uri=str(raw.get("redirect_uri") or ""),
            )
        )
    return out


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Pending:
    provider: str
    nonce: str
    verifier: str
    redirect_uri: str
    return_to: str
    created: float


@dataclass(frozen=True)
class SsoIdentity:
    subject: str
    username: str
    groups: tuple[str, ...]
    role: str
    claims: Mapping[str, Any]


class OidcClient:
    """The relying party for every configured provider (the blocking methods run in a worker thread)."""

    def __init__(
        self, providers: list[OidcProvider], *, http: httpx.Client | None = None, clock: Any = time.monotonic
    ) -> None:
        self.providers = {p.name: p for p in providers}
        self._http = http
        self.clock = clock
        self._discovery: dict[str, dict[str, Any]] = {}
        self._jwks: dict[str, jwt.PyJWKClient] = {}
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=10.0, follow_redirects=False)
        return self._http

    def provider(self, name: str) -> OidcProvider:
        p = self.providers.get(name)
        if p is None:
            raise InvalidInput(f"unknown SSO provider {name!r}")
        return p

    def discovery(self, p: OidcProvider) -> dict[str, Any]:
        doc = self._discovery.get(p.name)
        if doc is None:
            try:
                r = self.http.get(p.issuer + "/.well-known/openid-configuration")
                r.raise_for_status()
                doc = r.json()
            except (httpx.HTTPError, ValueError) as e:
                raise ProviderError(f"SSO provider {p.name}: discovery failed: {e}") from None
            if not isinstance(doc, dict) or doc.get("issuer", "").rstrip("/") != p.issuer:
                raise ProviderError(f"SSO provider {p.name}: the discovery document names another issuer")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(doc.get(key), str):
                    raise ProviderError(f"SSO provider {p.name}: discovery lacks {key}")
            self._discovery[p.name] = doc
        return doc

    # -- step 1: the redirect to the provider
    def start(self, name: str, redirect_uri: str, return_to: str) -> tuple[str, str]:
        """``(authorization URL, state)``; the state is remembered for ``PENDING_TTL_S``."""
        p = self.provider(name)
        doc = self.discovery(p)
        state, nonce, verifier = (
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(48),
        )
        challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
        now = self.clock()
        with self._lock:
            for k in [k for k, v in self._pending.items() if now - v.created > PENDING_TTL_S]:
                del self._pending[k]
            if len(self._pending) >= MAX_PENDING:
                raise ProviderError("too many SSO logins in progress; try again later")
            self._pending[state] = Pending(name, nonce, verifier, redirect_uri, return_to, now)
        query = {
            "response_type": "code",
            "client_id": p.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(p.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return doc["authorization_endpoint"] + "?" + urlencode(query), state

    def take(self, state: str) -> Pending:
        """The pending login of ``state``, once (a replayed callback finds nothing)."""
        with self._lock:
            pend = self._pending.pop(state, None)
        if pend is None or self.clock() - pend.created > PENDING_TTL_S:
            raise Unauthenticated("unknown or expired SSO login state: start the sign-in again")
        return pend

    # -- step 2: the callback
    def finish(self, pend: Pending, code: str) -> SsoIdentity:
        """Exchanges ``code`` (with the PKCE verifier), validates the ID token, maps the role."""
        p = self.provider(pend.provider)
        doc = self.discovery(p)
        try:
            r = self.http.post(
                doc["token_endpoint"],
                auth=(p.client_id, p.client_secret),
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": pend.redirect_uri,
                    "code_verifier": pend.verifier,
                },
            )
        except httpx.HTTPError as e:
            raise ProviderError(f"SSO provider {p.name}: token request failed: {e}") from None
        if r.status_code != 200:
            raise Unauthenticated(f"SSO provider {p.name} refused the code ({r.status_code})")
        try:
            id_token = r.json()["id_token"]
        except (ValueError, KeyError, TypeError):
            raise ProviderError(f"SSO provider {p.name}: the token response has no id_token") from None
        claims = self.validate_id_token(p, str(id_token), pend.nonce)
        return self.identity(p, claims)

    def validate_id_token(self, p: OidcProvider, id_token: str, nonce: str) -> dict[str, Any]:
        doc = self.discovery(p)
        allowed = [a for a in doc.get("id_token_signing_alg_values_supported", ["RS256"]) if a in ASYMMETRIC]
        if not allowed:
            raise ProviderError(f"SSO provider {p.name}: no asymmetric ID token algorithm announced")
        jwks = self._jwks.get(p.name)
        if jwks is None:
            jwks = self._jwks[p.name] = jwt.PyJWKClient(doc["jwks_uri"], cache_keys=True, lifespan=3600)
        try:
            key = jwks.get_signing_key_from_jwt(id_token)
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=allowed,
                audience=p.client_id,
                issuer=p.issuer,
                leeway=60,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.PyJWKClientConnectionError as e:
            raise ProviderError(f"SSO provider {p.name}: JWKS unavailable: {e}") from None
        except jwt.PyJWTError as e:
            raise Unauthenticated(f"invalid ID token from {p.name}: {e}") from None
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise Unauthenticated(f"invalid ID token from {p.name}: nonce mismatch")
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != p.client_id:
            raise Unauthenticated(f"invalid ID token from {p.name}: azp is not this client")
        return claims

    def identity(self, p: OidcProvider, claims: Mapping[str, Any]) -> SsoIdentity:
        raw_groups = claims.get(p.groups_claim, [])
        groups = (
            tuple(str(g) for g in raw_groups)
            if isinstance(raw_groups, list)
            else ((str(raw_groups),) if isinstance(raw_groups, str) and raw_groups else ())
        )
        role = next((r for g, r in p.roles.items() if g in groups), p.default_role)
        if not role:
            raise Forbidden(
                f"no role for this account: none of its {p.groups_claim} is mapped in auth.oidc_providers.{p.name}.roles"
            )
        subject = str(claims["sub"])
        name = (
            claims.get(p.username_claim) or claims.get("preferred_username") or claims.get("email") or subject
        )
        username = _USERNAME_BAD.sub("_", str(name))[:128]
        return SsoIdentity(subject, username, groups, role, claims)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


def sso_marker(provider: str, subject: str) -> str:
    return f"{SSO_MARK}{provider}:{hashlib.sha256(subject.encode()).hexdigest()[:40]}"


def sign_in(directory: Directory, p: OidcProvider, ident: SsoIdentity) -> LoginResult:
    """The user of ``ident``, made on first sign-in; its role in ``p.org`` follows the mapping at
    every sign-in (the provider is the source of truth)."""
    return directory.sso_user(ident.username, sso_marker(p.name, ident.subject), p.org, ident.role)
