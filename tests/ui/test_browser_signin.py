"""Sign-in with a second factor in a real browser against a real server (`auth.anonymous: off`):
a user with TOTP gives a wrong then a right code (pyotp) after the password; a user whose
organisation requires MFA enrols on the sign-in page (QR code and secret shown, first code turns MFA
on) and sees the recovery codes once; axe-core on the code step; screenshots in build/ui-screenshots/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.support.peers import Proc, start_clearsight
from tests.ui.conftest import ADMIN_PASSWORD, login_token, open_tab

PASSWORD = "mia's long pass phrase 99"
ALLOWED = ("status of 401",)  # not signed in yet, and the wrong code


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    work: Path = tmp_path_factory.mktemp("ui-signin")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARSIGHT_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        proc = start_clearsight(work, config_yaml='auth:\n  anonymous: "off"\n')
    try:
        admin = {"Authorization": f"Bearer {login_token(proc.url, 'admin', ADMIN_PASSWORD)}"}
        for user in ("mia", "eve"):
            r = httpx.post(
                f"{proc.url}/api/v1/admin/users",
                headers=admin,
                timeout=30,
                json={"username": user, "password": PASSWORD, "role": "viewer"},
            )
            assert r.status_code == 200, r.text
        yield proc
    finally:
        proc.stop()


def fill_password(page: Any, user: str) -> None:
    page.get_by_role("heading", name="Sign in to Clearsight").wait_for()
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_with_a_totp_code(server: Proc, browser: Any) -> None:
    mia = {"Authorization": f"Bearer {login_token(server.url, 'mia', PASSWORD)}"}
    r = httpx.post(f"{server.url}/api/v1/auth/mfa/enrol", headers=mia, timeout=30)
    assert r.status_code == 200, r.text
    totp = pyotp.TOTP(r.json()["data"]["secret"])
    r = httpx.post(
        f"{server.url}/api/v1/auth/mfa/confirm",
        headers=mia,
        json={"code": totp.at(time.time() - 30)},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    tab = open_tab(browser, f"{server.url}/ui/overview", allowed=ALLOWED)
    page = tab.page
    fill_password(page, "mia")
    page.get_by_role("heading", name="Two-factor sign-in").wait_for()
    assert page.get_by_test_id("user").count() == 0  # no session yet
    assert tab.axe_violations() == []
    tab.screenshot("signin-mfa-light")
    page.get_by_label("Authentication code").fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    assert "wrong or used code" in page.get_by_role("alert").inner_text()
    page.get_by_label("Authentication code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("heading", name="Overview").wait_for()
    assert "mia" in page.get_by_test_id("user").inner_text()
    assert tab.console_errors() == []


def test_enrolment_required_by_the_organisation(server: Proc, browser: Any) -> None:
    admin = {"Authorization": f"Bearer {login_token(server.url, 'admin', ADMIN_PASSWORD)}"}
    r = httpx.put(f"{server.url}/api/v1/admin/mfa", headers=admin, json={"required": True}, timeout=30)
    assert r.status_code == 200, r.text
    try:
        tab = open_tab(browser, f"{server.url}/ui/alerts", allowed=ALLOWED)
        page = tab.page
        fill_password(page, "eve")
        page.get_by_role("heading", name="Set up two-factor sign-in").wait_for()
        enrol = page.get_by_test_id("enrolment")
        enrol.wait_for()
        img = enrol.get_by_role("img", name="QR code of the authenticator secret")
        assert img.evaluate("i => i.complete && i.naturalWidth > 0")  # the SVG rendered under the page's CSP
        secret = page.get_by_test_id("totp-secret").inner_text()
        tab.screenshot("signin-enrol-light")
        page.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Verify").click()
        codes = page.get_by_test_id("recovery-codes")
        codes.wait_for()
        assert codes.locator("li").count() == 10
        page.get_by_role("button", name="I saved them, continue").click()
        page.get_by_role("heading", name="Alerts").wait_for()
        assert "eve" in page.get_by_test_id("user").inner_text()
        assert tab.console_errors() == []
    finally:
        r = httpx.put(f"{server.url}/api/v1/admin/mfa", headers=admin, json={"required": False}, timeout=30)
        assert r.status_code == 200, r.text


def test_sso_buttons_for_the_configured_providers(browser: Any, tmp_path: Path) -> None:
    cfg = (
        "oidc_providers:\n"
        "    corp:\n"
        '      issuer: "http://127.0.0.1:9/"\n'
        "      client_id: clearsight\n"
        "      client_secret: not-a-real-secret\n"
        '      display_name: "Corp SSO"\n'
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARSIGHT_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        proc = start_clearsight(tmp_path, config_yaml='auth:\n  anonymous: "off"\n  ' + cfg)
    try:
        tab = open_tab(browser, f"{proc.url}/ui/dashboards", allowed=ALLOWED)
        link = tab.page.get_by_role("link", name="Sign in with Corp SSO")
        link.wait_for()
        assert link.get_attribute("href") == "/api/v1/auth/sso/corp/login?return_to=%2Fui%2Fdashboards"
        assert tab.axe_violations() == []
        tab.screenshot("signin-sso-light")
        assert tab.console_errors() == []
    finally:
        proc.stop()
