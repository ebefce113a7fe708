"""The identity subsystem opened from configuration: state database, directory, keys, sessions and
the authenticator the HTTP middleware and gRPC interceptor share (``server.py`` wires it in)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from clearsight.auth.bootstrap import BootstrapError, bootstrap
from clearsight.auth.directory import Directory
from clearsight.auth.keys import ApiKeys
from clearsight.auth.oidc import OidcClient, parse_providers
from clearsight.auth.org_networks import OrgNetworks
from clearsight.auth.resolver import Authenticator
from clearsight.auth.sessions import Sessions
from clearsight.auth.state import StateDb, engine_url
from clearsight.config import Config, ConfigError, parse_duration_ms


@dataclass
class AuthSystem:
    db: StateDb
    directory: Directory
    keys: ApiKeys
    sessions: Sessions
    authenticator: Authenticator
    oidc: OidcClient

    def close(self) -> None:
        self.authenticator.flush_last_used()
        self.oidc.close()
        self.db.close()


def open_state(cfg: Config) -> tuple[StateDb, Directory, ApiKeys]:
    """The state database of ``cfg`` (migrated), for the server and the CLI."""
    db = StateDb(engine_url(cfg.auth.state_url, cfg.storage.data_dir))
    directory = Directory(db)
    return db, directory, ApiKeys(directory)


def sessions_of(cfg: Config, directory: Directory) -> Sessions:
    a = cfg.auth
    return Sessions(directory, parse_duration_ms(a.session_ttl), access_ttl_ms=parse_duration_ms(a.access_token_ttl),
                    reuse_grace_ms=parse_duration_ms(a.refresh_reuse_grace))


def open_auth(cfg: Config, env: Mapping[str, str] | None = None) -> AuthSystem:
    """Opens the state, runs the first-start bootstrap, builds the authenticator. Raises ConfigError."""
    Path(cfg.storage.data_dir).mkdir(parents=True, exist_ok=True)
    db, directory, keys = open_state(cfg)
    try:
        bootstrap(directory, keys, cfg.tenancy.default_tenant, os.environ if env is None else env)
        sessions = sessions_of(cfg, directory)
        authenticator = Authenticator(
            directory, keys, sessions, default_org=cfg.tenancy.default_tenant,
            anonymous=cfg.auth.anonymous == "loopback", anonymous_role=cfg.auth.anonymous_role,
            trust_tenant_header=cfg.tenancy.trust_tenant_header,
            cache_ttl_s=parse_duration_ms(cfg.auth.key_cache_ttl) / 1000,
            org_networks=OrgNetworks(db, parse_duration_ms(cfg.auth.key_cache_ttl) / 1000))
        oidc = OidcClient(parse_providers(cfg.auth.oidc_providers, cfg.tenancy.default_tenant, env))
    except (BootstrapError, ValueError) as e:
        db.close()
        raise ConfigError(str(e)) from None
    return AuthSystem(db, directory, keys, sessions, authenticator, oidc)
