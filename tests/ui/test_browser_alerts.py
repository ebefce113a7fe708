"""The alerts page's silences in a real browser against a real server with `auth.anonymous: off`: an
editor-level admin silences a firing alert from its row (matchers prefilled), sees it active in the
page and in the Alertmanager API, then expires it; a viewer sees no silence controls and the API
refuses the viewer's silence (403); axe-core in both themes; screenshots in build/ui-screenshots/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import Proc
from tests.ui.conftest import (
    ADMIN_PASSWORD,
    VIEWER_PASSWORD,
    login_token,
    signed_in_tab,
    start_signed_in_server,
)

RULES = """groups:
- name: ui-alerts
  interval: 1s
  rules:
  - alert: UiDiskAlmostFull
    expr: vector(1)
    labels: {severity: warning, team: storage}
    annotations: {summary: disk almost full (UI test)}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    work: Path = tmp_path_factory.mktemp("ui-alerts")
    (work / "rules.yml").write_text(RULES)
    proc = start_signed_in_server(work, "rules:\n  files: rules.yml\n")
    try:
        yield proc
    finally:
        proc.stop()


def silences(base: str) -> list[dict[str, Any]]:
    token = login_token(base, "admin", ADMIN_PASSWORD)
    r = httpx.get(f"{base}/api/v2/silences", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json())


def wait_for_alert(base: str, name: str, timeout: float = 60.0) -> None:
    """Until the rule's alert is active in the API: the page lists the alerts it loads, and a page
    opened before the rule's first evaluation (a loaded machine starts the rules later) has none."""
    token = login_token(base, "admin", ADMIN_PASSWORD)
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{base}/api/v1/alerts", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 200, r.text
        if any(a["labels"].get("alertname") == name for a in r.json()["data"]["alerts"]):
            return
        assert time.monotonic() < deadline, f"{name} not active after {timeout} s: {r.text[:500]}"
        time.sleep(0.2)


def test_silence_a_firing_alert_then_expire_it(server: Proc, browser: Any) -> None:
    wait_for_alert(server.url, "UiDiskAlmostFull")
    tab = signed_in_tab(browser, server.url, "/ui/alerts", "admin", ADMIN_PASSWORD)
    page = tab.page
    page.get_by_role("cell", name="UiDiskAlmostFull").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Silence UiDiskAlmostFull").click()
    form = page.get_by_test_id("silence-form")
    matchers = form.get_by_label("Matchers")
    assert 'alertname="UiDiskAlmostFull"' in matchers.input_value()
    assert 'team="storage"' in matchers.input_value()
    # a bad matcher and a missing comment are refused in the page, nothing is written
    matchers.fill('alertname="UiDiskAlmostFull", team=storage')
    form.get_by_label("Comment").fill("disk swap scheduled")
    form.get_by_role("button", name="Create silence").click()
    assert "cannot read a matcher" in form.get_by_role("alert").inner_text()
    assert silences(server.url) == []
    matchers.fill('alertname="UiDiskAlmostFull", team="storage"')
    form.get_by_label("For").select_option(label="2 hours")
    form.get_by_role("button", name="Create silence").click()
    page.get_by_test_id("alerts-notice").wait_for()
    assert "created" in page.get_by_test_id("alerts-notice").inner_text()
    got = silences(server.url)
    assert len(got) == 1
    sil = got[0]
    assert sil["status"]["state"] == "active" and sil["comment"] == "disk swap scheduled"
    assert sil["createdBy"] == "admin"
    assert {(m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in sil["matchers"]} == {
        ("alertname", "UiDiskAlmostFull", False, True),
        ("team", "storage", False, True),
    }
    row = page.locator(f'[data-testid=silences] tr[data-silence="{sil["id"]}"]')
    row.wait_for()
    assert row.get_attribute("data-state") == "active"
    assert 'team="storage"' in row.inner_text()
    tab.screenshot("alerts-silence-light")
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Expire silence").click()
    page.get_by_text(f"Silence {sil['id']} expired.").wait_for()
    assert silences(server.url)[0]["status"]["state"] == "expired"
    assert row.count() == 0  # expired silences are hidden until "Show expired"
    page.get_by_label("Show expired").check()
    assert row.get_attribute("data-state") == "expired"
    assert [e for e in tab.console_errors() if "status of 401" not in e] == []


def test_viewer_sees_no_silence_controls_and_the_api_refuses(server: Proc, browser: Any) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/alerts", "vera", VIEWER_PASSWORD)
    page = tab.page
    page.get_by_role("cell", name="UiDiskAlmostFull").first.wait_for(timeout=30_000)
    page.get_by_test_id("silences").wait_for()
    assert page.get_by_role("button", name="Silence UiDiskAlmostFull").count() == 0
    assert page.get_by_role("button", name="New silence").count() == 0
    assert page.get_by_test_id("rule-editor").count() == 0
    token = login_token(server.url, "vera", VIEWER_PASSWORD)
    r = httpx.post(
        f"{server.url}/api/v2/silences",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "matchers": [
                {"name": "alertname", "value": "UiDiskAlmostFull", "isRegex": False, "isEqual": True}
            ],
            "endsAt": "2099-01-01T00:00:00Z",
            "createdBy": "vera",
            "comment": "x",
        },
        timeout=30,
    )
    assert r.status_code == 403, r.text
    tab.screenshot("alerts-viewer-light")
    assert [e for e in tab.console_errors() if "status of 401" not in e] == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_alerts_page_has_no_serious_accessibility_violations(server: Proc, browser: Any, scheme: str) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/alerts", "admin", ADMIN_PASSWORD, scheme=scheme)
    tab.page.get_by_role("cell", name="UiDiskAlmostFull").first.wait_for(timeout=30_000)
    tab.page.get_by_role("button", name="New silence").click()
    tab.page.get_by_test_id("silence-form").wait_for()
    violations = tab.axe_violations()
    tab.screenshot(f"alerts-{scheme}-axe")
    assert violations == []


def test_viewer_sees_dashboards_without_edit_controls(server: Proc, browser: Any) -> None:
    admin = {"Authorization": f"Bearer {login_token(server.url, 'admin', ADMIN_PASSWORD)}"}
    r = httpx.post(
        f"{server.url}/api/v1/dashboards",
        headers=admin,
        json={"title": "Shared board", "panels": [{"title": "Up", "type": "stat", "query": "vector(7)"}]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    tab = signed_in_tab(browser, server.url, "/ui/dashboards", "vera", VIEWER_PASSWORD)
    page = tab.page
    page.get_by_role("link", name="Shared board").click()
    assert page.get_by_test_id("panel-0").get_by_test_id("stat-value").inner_text() == "7"
    assert page.get_by_role("button", name="Edit").count() == 0
    page.get_by_role("link", name="All dashboards").click()
    page.get_by_test_id("dashboards").wait_for()
    assert page.get_by_label("New dashboard title").count() == 0
    assert [e for e in tab.console_errors() if "status of 401" not in e] == []


EDITED = """groups:
- name: ui-editor
  interval: 1s
  rules:
  - alert: UiFromEditor
    expr: vector(2)
    labels: {severity: info}
"""


def test_rules_created_edited_and_tested_in_the_page(server: Proc, browser: Any) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/alerts", "admin", ADMIN_PASSWORD)
    page = tab.page
    editor = page.get_by_test_id("rule-editor")
    editor.get_by_label("Namespace").fill("team-a")
    editor.get_by_role("button", name="Load").click()
    status = editor.get_by_test_id("rule-editor-status")
    status.get_by_text('No namespace "team-a" yet').wait_for()
    text = editor.get_by_label("Rule file (YAML, Prometheus format)")
    text.fill(EDITED)
    editor.get_by_role("button", name="Save namespace").click()
    status.get_by_text('Saved namespace "team-a"').wait_for()
    # the new group and its rule are listed
    page.get_by_role("button", name="Edit rule group ui-editor").wait_for()
    page.get_by_role("cell", name="UiFromEditor").first.wait_for()
    # a bad expression is refused with the reason and nothing changes
    text.fill(EDITED.replace("vector(2)", "sum(rate("))
    editor.get_by_role("button", name="Save namespace").click()
    editor.get_by_text("Not saved (nothing changed)").wait_for()
    assert "UiFromEditor" in status.inner_text() or "expr" in status.inner_text()
    token = login_token(server.url, "admin", ADMIN_PASSWORD)
    r = httpx.get(
        f"{server.url}/api/v1/rules/team-a", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert r.status_code == 200 and "vector(2)" in r.text, r.text
    # Edit loads the stored namespace back
    text.fill("")
    page.get_by_role("button", name="Edit rule group ui-editor").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=rule-editor] textarea')?.value.includes('vector(2)')"
    )
    # test an expression against the data
    editor.get_by_label("Test an expression now").fill("vector(3)")
    editor.get_by_role("button", name="Test").click()
    assert editor.get_by_test_id("rule-test-result").locator("td.value").inner_text() == "3"
    tab.screenshot("alerts-rule-editor-light")
    page.once("dialog", lambda d: d.accept())
    editor.get_by_role("button", name="Delete namespace").click()
    status.get_by_text('Deleted namespace "team-a"').wait_for()
    page.get_by_role("button", name="Edit rule group ui-editor").wait_for(state="detached")
    allowed = ("status of 401", "status of 400", "status of 404")
    assert [e for e in tab.console_errors() if not any(a in e for a in allowed)] == []
