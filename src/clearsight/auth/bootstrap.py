"""First start: the default organisation, the ``admin`` user (a random password printed once to
stderr, or ``CLEARSIGHT_AUTH_ADMIN_PASSWORD``) and optionally an API key
(``CLEARSIGHT_AUTH_BOOTSTRAP_API_KEY``). Nothing happens when the state already has an organisation."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Mapping
from typing import TextIO

from clearsight.auth.directory import Directory
from clearsight.auth.errors import AuthError
from clearsight.auth.keys import ApiKeys
from clearsight.auth.passwords import PasswordPolicyError, check_policy
from clearsight.auth.tokens import is_api_key

ADMIN_USER = "admin"
ADMIN_ROLE = "superadmin"
ENV_PASSWORD = "CLEARSIGHT_AUTH_ADMIN_PASSWORD"
ENV_API_KEY = "CLEARSIGHT_AUTH_BOOTSTRAP_API_KEY"


class BootstrapError(ValueError):
    pass


def bootstrap(directory: Directory, keys: ApiKeys, default_org: str, env: Mapping[str, str],
              out: TextIO | None = None) -> bool:
    """Creates the first organisation, admin and key; True when it did (first start)."""
    if directory.count_orgs():
        return False
    password = env.get(ENV_PASSWORD) or ""
    key = env.get(ENV_API_KEY) or ""
    generated = not password
    if generated:
        password = secrets.token_urlsafe(18)
    if key and not is_api_key(key):
        raise BootstrapError(f"{ENV_API_KEY}: an API key is 'cs_' followed by 20 to 253 characters")
    try:
        check_policy(password, ADMIN_USER)
    except PasswordPolicyError as e:
        raise BootstrapError(f"{ENV_PASSWORD}: {e}") from None
    try:
        directory.create_org(default_org)
        directory.create_user(ADMIN_USER, password, default_org, ADMIN_ROLE)
        if key:
            keys.create(default_org, "bootstrap", ADMIN_ROLE, value=key)
    except AuthError as e:
        raise BootstrapError(f"first start: {e.message}") from None
    if generated:
        stream = out if out is not None else sys.stderr
        # Straight to stderr, never through the (JSON) log: shown once, kept nowhere.
        print(f"\nClearsight first start: created user '{ADMIN_USER}' (organisation '{default_org}') with "
              f"password:\n\n    {password}\n\nIt is shown only this once. Sign in with it, or create API keys with "
              f"`clearsight apikeys create`.\n", file=stream, flush=True)
    return True
