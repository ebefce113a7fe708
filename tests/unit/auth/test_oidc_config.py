"""``auth.oidc_providers`` parsing: good settings, and each bad one refused with the key named."""

from __future__ import annotations

from typing import Any

import pytest

from clearsight.auth.oidc import OidcClient, parse_providers
from clearsight.config import ConfigError, load_config

GOOD: dict[str, Any] = {"issuer": "https://idp.example/", "client_id": "c", "client_secret": "s"}


def test_defaults_and_secret_from_the_environment() -> None:
    (p,) = parse_providers(
        {"google": {**GOOD, "client_secret": None, "client_secret_env": "G"}}, "default", {"G": "x"}
    )
    assert (p.name, p.issuer, p.client_secret, p.org, p.display_name) == (
        "google",
        "https://idp.example",
        "x",
        "default",
        "google",
    )
    assert p.scopes == ("openid", "email", "profile") and p.groups_claim == "groups" and p.default_role == ""


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ({"Bad Name": GOOD}, "provider names"),
        ({"g": "x"}, "expected a mapping"),
        ({"g": {**GOOD, "colour": "red"}}, "unknown keys"),
        ({"g": {**GOOD, "issuer": ""}}, "issuer: required"),
        ({"g": {**GOOD, "issuer": "http://idp.example"}}, "https"),
        ({"g": {**GOOD, "client_secret": ""}}, "client_secret"),
        ({"g": {**GOOD, "client_secret_env": "NOPE_NOT_SET"}}, "NOPE_NOT_SET"),
        ({"g": {**GOOD, "roles": ["admin"]}}, "roles"),
        ({"g": {**GOOD, "scopes": ["email"]}}, "openid"),
    ],
)
def test_bad_settings(doc: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_providers(doc, "default", {})


def test_a_bad_provider_stops_the_start(tmp_path: Any) -> None:
    from clearsight.auth.system import open_auth

    cfg = load_config(
        env={}, overrides={"storage.data_dir": str(tmp_path), "auth.oidc_providers": {"g": {"issuer": "x"}}}
    )
    with pytest.raises(ConfigError, match=r"auth\.oidc_providers\.g"):
        open_auth(cfg, env={})


def test_no_providers_means_an_empty_list() -> None:
    assert OidcClient([]).providers == {}
