"""`clearsight login` against a real server with `auth.anonymous: off`: before it `clearsight query`
is refused (401), after it the stored session (a 0600 file) is sent; a wrong password stores nothing."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from clearsight.cli import auth as cli_auth
from clearsight.cli.auth import credentials_path
from clearsight.cli.main import app
from tests.support.peers import start_clearsight


def test_login_then_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    cs = start_clearsight(tmp_path / "cs", config_yaml="auth:\n  anonymous: off\n  refresh_reuse_grace: 0s\n")
    try:
        password = re.findall(r"with password:\s+(\S+)", cs.log())[0]
        runner = CliRunner()
        r = runner.invoke(app, ["query", "vector(1)", "--url", cs.url, "-o", "json"])
        assert r.exit_code == 1 and "unauthorized" in r.output
        r = runner.invoke(app, ["login", "--url", cs.url, "--password-stdin"], input="wrong password!\n")
        assert r.exit_code == 1 and "401" in r.output
        assert not credentials_path().exists()
        r = runner.invoke(app, ["login", "--url", cs.url + "/", "--password-stdin"], input=password + "\n")
        assert r.exit_code == 0, r.output
        assert "as admin (superadmin in default)" in r.output
        assert stat.S_IMODE(credentials_path().stat().st_mode) == 0o600
        assert password not in credentials_path().read_text()
        stored = orjson.loads(credentials_path().read_bytes())[cs.url]
        assert stored.startswith("csr_")  # the refresh token; each command run exchanges it
        r = runner.invoke(app, ["query", "vector(1)", "--url", cs.url, "-o", "json"])
        assert r.exit_code == 0, r.output
        assert '"resultType":"vector"' in r.output.replace(" ", "")
        rotated = orjson.loads(credentials_path().read_bytes())[cs.url]
        assert rotated.startswith("csr_") and rotated != stored
        cli_auth._access_tokens.clear()  # a new command process
        r = runner.invoke(app, ["query", "vector(1)", "--url", cs.url, "-o", "json"])
        assert r.exit_code == 0, r.output
        assert orjson.loads(credentials_path().read_bytes())[cs.url] not in (stored, rotated)
        # the first refresh token, replayed (stolen from a backup, say): the sign-in is revoked
        assert httpx.post(cs.url + "/api/v1/auth/refresh", json={"refresh_token": stored}).status_code == 401
        cli_auth._access_tokens.clear()
        r = runner.invoke(app, ["query", "vector(1)", "--url", cs.url, "-o", "json"])
        assert r.exit_code == 1 and "run clearsight login" in r.output, r.output
        assert cs.url not in orjson.loads(credentials_path().read_bytes())
    finally:
        cs.stop()
