"""The administration and events pages in a real browser (Debian's Chromium) against a real server
with `auth.anonymous: off`: an API key created by an admin is shown once and works as a bearer
token, then is revoked; a viewer sees no administration and the API answers 403; an event logged
from the UI is found in the table; axe-core on both pages; screenshots in build/ui-screenshots/."""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.peers import Proc
from tests.ui.conftest import (
    ADMIN_PASSWORD,
    VIEWER_PASSWORD,
    admin_call,
    login_token,
    signed_in_tab,
    start_signed_in_server,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    proc = start_signed_in_server(tmp_path_factory.mktemp("ui-admin"), "usage:\n  flush_interval: 1s\n")
    try:
        admin_call(
            proc.url,
            "POST",
            "/api/v1/admin/roles",
            {"name": "keyman", "permissions": ["keys:manage", "metrics:read"]},
        )
        admin_call(
            proc.url,
            "POST",
            "/api/v1/admin/users",
            {"username": "kim", "password": VIEWER_PASSWORD, "role": "keyman"},
        )
        yield proc
    finally:
        proc.stop()


def test_admin_creates_a_key_shown_once_that_works_and_revokes_it(server: Proc, browser: Any) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/admin", "admin", ADMIN_PASSWORD)
    page = tab.page
    page.once("dialog", lambda d: d.accept())
    assert page.get_by_role("link", name="Administration").get_attribute("aria-current") == "page"
    page.get_by_role("heading", name="API keys").wait_for()
    assert "admin" in page.get_by_test_id("users").inner_text()  # the users list
    page.get_by_label("Key name").fill("ci-reader")
    page.get_by_label("Key role").select_option("viewer")
    page.get_by_label("Expires after").select_option("30d")
    page.get_by_role("button", name="Create key").click()
    shown = page.get_by_test_id("new-key")
    shown.wait_for()
    assert "shown only this once" in shown.inner_text()
    key = page.get_by_label("New API key").input_value()
    assert key.startswith("cs_")
    row = page.get_by_test_id("apikeys").locator("tr", has_text="ci-reader")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "viewer" and key.startswith(cells[2].rstrip("…")) and cells[5] != "never"
    tab.screenshot("admin-key-created-light")
    # the key is a bearer token for the query API
    r = httpx.get(
        f"{server.url}/api/v1/query",
        params={"query": "vector(1)"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["result"][0]["value"][1] == "1"
    # shown once: after "Done" and a reload the page holds only the prefix
    page.get_by_role("button", name="Done").click()
    page.reload()
    page.get_by_test_id("apikeys").wait_for()
    assert key not in page.content()
    # revoke from the page: the key is refused from then on
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Revoke ci-reader").click()
    page.get_by_test_id("apikeys").locator("tr", has_text="ci-reader").get_by_text(
        re.compile("revoked")
    ).wait_for()
    r = httpx.get(
        f"{server.url}/api/v1/query",
        params={"query": "vector(1)"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert r.status_code == 401, r.text
    assert tab.console_errors() == []


def test_viewer_sees_no_administration_and_the_api_refuses(server: Proc, browser: Any) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/admin", "vera", VIEWER_PASSWORD)
    page = tab.page
    page.get_by_test_id("admin-denied").wait_for()
    assert page.get_by_role("link", name="Administration").count() == 0
    assert page.get_by_role("link", name="Events").count() == 1
    assert page.get_by_role("button", name="Create key").count() == 0
    assert page.get_by_test_id("apikeys").count() == 0
    tab.screenshot("admin-viewer-light")
    # the viewer may read events but not log them: no form
    page.get_by_role("link", name="Events").click()
    page.get_by_role("heading", name="Events").wait_for()
    assert page.get_by_role("button", name="Log event").count() == 0
    token = login_token(server.url, "vera", VIEWER_PASSWORD)
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.get(f"{server.url}/api/v1/admin/apikeys", headers=auth, timeout=30)
    assert r.status_code == 403, r.text
    r = httpx.post(
        f"{server.url}/api/v1/admin/apikeys", headers=auth, json={"name": "x", "role": "viewer"}, timeout=30
    )
    assert r.status_code == 403, r.text
    r = httpx.get(f"{server.url}/api/v1/admin/users", headers=auth, timeout=30)
    assert r.status_code == 403, r.text
    assert tab.console_errors() == []


def test_key_manager_without_users_manage_sees_keys_but_no_users(server: Proc, browser: Any) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/admin", "kim", VIEWER_PASSWORD)
    page = tab.page
    page.get_by_role("heading", name="API keys").wait_for()
    assert page.get_by_role("link", name="Administration").count() == 1
    assert page.get_by_role("heading", name="Users").count() == 0
    # a key of a role with more permissions than kim's is refused with the reason
    page.get_by_label("Key name").fill("too-strong")
    page.get_by_label("Key role").select_option("admin")
    page.get_by_role("button", name="Create key").click()
    assert "permissions you do not hold" in page.get_by_role("alert").inner_text()
    assert page.get_by_test_id("new-key").count() == 0
    r = httpx.get(
        f"{server.url}/api/v1/admin/apikeys",
        timeout=30,
        headers={"Authorization": f"Bearer {login_token(server.url, 'admin', ADMIN_PASSWORD)}"},
    )
    assert "too-strong" not in [k["name"] for k in r.json()["data"]]  # nothing written
    assert tab.console_errors() == [
        f"Failed to load resource: the server responded with a status of 403 (Forbidden) "
        f"({server.url}/api/v1/admin/apikeys)"
    ]


def test_event_logged_from_the_page_is_found_with_filters(server: Proc, browser: Any) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/events", "admin", ADMIN_PASSWORD)
    page = tab.page
    page.get_by_role("heading", name="Events").wait_for()
    page.get_by_label("Event message").fill("deployed checkout v2.7 from the UI test")
    page.get_by_label("Event type").fill("deploy")
    page.get_by_label("Event level").select_option("WARN")
    page.get_by_label("Event origin").fill("uitest")
    page.get_by_role("button", name="Log event").click()
    page.get_by_role("status").filter(has_text="Event logged.").wait_for()
    row = page.get_by_test_id("events").locator("tr", has_text="deployed checkout v2.7")
    row.wait_for()
    assert row.locator("td").all_inner_texts()[1:5] == ["WARN", "▲ medium", "deploy", "uitest"]
    # filters: a level that does not match hides it, the matching type and origin show it
    page.get_by_label(re.compile(r"^Level")).select_option("ERROR")
    page.get_by_role("button", name="Apply").click()
    page.get_by_text("No events match").wait_for()
    page.get_by_label(re.compile(r"^Level")).select_option("")
    page.get_by_label(re.compile(r"^Type")).fill("deploy")
    page.get_by_label(re.compile(r"^Origin")).fill("uitest")
    page.get_by_role("button", name="Apply").click()
    page.get_by_test_id("events").locator("tr", has_text="deployed checkout v2.7").wait_for()
    # the same event through the API
    token = login_token(server.url, "admin", ADMIN_PASSWORD)
    r = httpx.get(
        f"{server.url}/api/v1/events",
        params={"type": "deploy", "since": "1h"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert [e["message"] for e in r.json()["data"]["events"]] == ["deployed checkout v2.7 from the UI test"]
    tab.screenshot("events-light")
    assert tab.console_errors() == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("path,ready", [("/ui/admin", "[data-testid=users]"), ("/ui/events", "form")])
def test_admin_and_events_pages_have_no_serious_accessibility_violations(
    server: Proc, browser: Any, path: str, ready: str, scheme: str
) -> None:
    tab = signed_in_tab(browser, server.url, path, "admin", ADMIN_PASSWORD, scheme=scheme)
    tab.page.locator(ready).first.wait_for()
    # every "Loading…" status gone (several sections load at once: a single-element wait is ambiguous)
    tab.page.wait_for_function(
        "() => ![...document.querySelectorAll('[role=status]')].some(e => e.textContent.includes('Loading'))")
    violations = tab.axe_violations()
    tab.screenshot(f"{path.rsplit('/', 1)[-1]}-{scheme}-axe")
    assert violations == []
    assert tab.console_errors() == []


def test_admin_reads_the_audit_log_and_usage(server: Proc, browser: Any) -> None:
    # a failed sign-in and some samples to find
    r = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"username": "admin", "password": "wrong"}, timeout=30
    )
    assert r.status_code == 401
    token = login_token(server.url, "admin", ADMIN_PASSWORD)
    r = httpx.get(
        f"{server.url}/api/v1/query",
        params={"query": "vector(1)"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200
    now_ns = time.time_ns()
    spans = [{"traceId": f"{0xC5:032x}", "spanId": f"{i + 1:016x}", "name": "op", "startTimeUnixNano": str(now_ns),
              "endTimeUnixNano": str(now_ns + 10)} for i in range(3)]
    r = httpx.post(f"{server.url}/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]},
                   headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    tab = signed_in_tab(browser, server.url, "/ui/admin", "admin", ADMIN_PASSWORD)
    page = tab.page
    audit = page.get_by_test_id("audit")
    audit.wait_for()
    assert audit.locator('tr[data-action="auth.login"]').count() >= 2
    page.get_by_label("Outcome").select_option("failure")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=audit] tbody tr')]"
        ".every(r => r.textContent.includes('failure'))"
    )
    assert "auth.login" in audit.inner_text()
    # usage: the read requests of this test are counted (flushed every second here)
    page.reload()
    page.get_by_test_id("usage-months").wait_for(timeout=30_000)
    queries = page.get_by_test_id("usage-months").locator("tbody tr").first.locator("td").nth(4).inner_text()
    assert float(queries.rstrip("k")) > 0
    head = page.get_by_test_id("usage-months").locator("thead th").all_inner_texts()
    row = page.get_by_test_id("usage-months").locator("tbody tr").first.locator("td").all_inner_texts()
    assert row[head.index("Trace spans")] == "3"  # the spans sent above, counted for this organisation
    page.get_by_test_id("usage-queries").locator("canvas").wait_for()
    page.get_by_test_id("usage-spans").locator("canvas").wait_for()
    tab.screenshot("admin-audit-usage-light")
    assert tab.axe_violations() == []
    assert [e for e in tab.console_errors() if "status of 401" not in e] == []


def test_security_events_show_the_falco_rule_and_resource(server: Proc, browser: Any) -> None:
    token = login_token(server.url, "admin", ADMIN_PASSWORD)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    alert = {
        "output": "Terminal shell in container (user=root shell=bash container_id=abc123def456)",
        "priority": "Critical",
        "rule": "Terminal shell in container",
        "time": now,
        "source": "syscall",
        "tags": ["container", "shell"],
        "hostname": "web-1",
        "output_fields": {"container.id": "abc123def456", "proc.cmdline": "bash", "user.name": "root"},
    }
    r = httpx.post(
        f"{server.url}/api/v1/falco", json=alert, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert r.status_code == 200, r.text
    tab = signed_in_tab(browser, server.url, "/ui/events", "admin", ADMIN_PASSWORD)
    page = tab.page
    page.get_by_test_id("events").wait_for()
    page.get_by_role("button", name="Security events (Falco)").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=events] tr[data-event]')]"
        ".every(r => r.textContent.includes('falco_alert'))"
    )
    row = page.get_by_test_id("events").locator("tr[data-event]").first
    row.get_by_text("Terminal shell in container (user=root").wait_for()
    assert page.get_by_test_id("events").locator("tr[data-event]").count() == 1
    assert "critical" in row.inner_text()
    row.get_by_role("button").click()
    detail = page.get_by_test_id("event-detail")
    assert "Terminal shell in container" in detail.locator("dd").first.inner_text()
    fields = detail.get_by_test_id("output-fields").inner_text()
    assert "proc.cmdline" in fields and "bash" in fields
    assert (
        detail.get_by_test_id("event-resource").get_by_role("link", name="host web-1").get_attribute("href")
        == "/ui/infrastructure/host%3Aweb-1"
    )
    tab.screenshot("events-falco-light")
    assert tab.axe_violations() == []
    assert [e for e in tab.console_errors() if "status of 401" not in e] == []


def test_admin_manages_users_and_roles(server: Proc, browser: Any) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/admin", "admin", ADMIN_PASSWORD)
    page = tab.page
    auth = {"Authorization": f"Bearer {login_token(server.url, 'admin', ADMIN_PASSWORD)}"}

    def members() -> dict[str, str]:
        r = httpx.get(f"{server.url}/api/v1/admin/users", headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        return {m["username"]: m["role"] for m in r.json()["data"]}

    # a custom role from permissions
    page.get_by_label("New role name").fill("dash-editor")
    page.get_by_label("dashboards:manage").check()
    page.get_by_role("button", name="Create role").click()
    role_row = page.get_by_test_id("roles").locator('tr[data-role="dash-editor"]')
    role_row.wait_for()
    assert "dashboards:manage, metrics:read" in role_row.inner_text()
    # a user, then a role change, then removal
    page.get_by_label("New user name").fill("olga")
    page.get_by_label("Initial password").fill("olga's pass phrase 2026")
    page.get_by_label("New user role").select_option("viewer")
    page.get_by_role("button", name="Add user").click()
    page.get_by_text("User olga added.").wait_for()
    assert members()["olga"] == "viewer"
    page.get_by_label("Role of olga").select_option("dash-editor")
    page.get_by_test_id("users").locator('tr[data-user="olga"]').get_by_role(
        "button", name="Change role"
    ).click()
    page.get_by_text("olga is now dash-editor.").wait_for()
    assert members()["olga"] == "dash-editor"
    r = httpx.post(
        f"{server.url}/api/v1/auth/login",
        json={"username": "olga", "password": "olga's pass phrase 2026"},
        timeout=30,
    )
    perms = httpx.get(
        f"{server.url}/api/v1/auth/me",
        timeout=30,
        headers={"Authorization": f"Bearer {r.json()['data']['token']}"},
    ).json()["data"]["permissions"]
    assert perms == ["dashboards:manage", "metrics:read"]
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Remove olga from this organisation").click()
    page.get_by_text("olga removed.").wait_for()
    assert "olga" not in members()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete role dash-editor").click()
    role_row.wait_for(state="detached")
    tab.screenshot("admin-users-roles-light")
    assert tab.axe_violations() == []
    assert [e for e in tab.console_errors() if "status of 401" not in e] == []


def test_superadmin_creates_and_deletes_an_organisation(server: Proc, browser: Any) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/admin", "admin", ADMIN_PASSWORD)
    page = tab.page
    auth = {"Authorization": f"Bearer {login_token(server.url, 'admin', ADMIN_PASSWORD)}"}

    def orgs() -> list[str]:
        r = httpx.get(f"{server.url}/api/v1/admin/orgs", headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        return [o["name"] for o in r.json()["data"]]

    table = page.get_by_test_id("orgs")
    table.wait_for()
    assert "(this one)" in table.inner_text()
    page.get_by_label("New organisation name").fill("team-x")
    page.get_by_role("button", name="Create organisation").click()
    table.locator('tr[data-org="team-x"]').wait_for()
    assert "team-x" in orgs()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete organisation team-x").click()
    table.locator('tr[data-org="team-x"]').wait_for(state="detached")
    assert "team-x" not in orgs()
    assert [e for e in tab.console_errors() if "status of 401" not in e] == []
