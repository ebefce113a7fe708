"""Recurring silences on the alerts page in a real browser against a real server (`auth.anonymous: off`):
the admin creates one (matchers, days, times, time zone) and reads it back from the API; a whole-day
window's silence appears in the Silences table at once and mutes the firing alert; deleting the schedule
expires it; bad input is refused in the page and writes nothing; a viewer sees no controls; axe-core
with the form open. Screenshots in build/ui-screenshots/."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.peers import Proc
from tests.ui import test_browser_alerts
from tests.ui.conftest import (
    ADMIN_PASSWORD,
    VIEWER_PASSWORD,
    login_token,
    signed_in_tab,
)

# the alerts page's server fixture (a rule keeps UiDiskAlmostFull firing, team=storage), a fresh one for this module
server = test_browser_alerts.server


def api(base: str, path: str) -> Any:
    token = login_token(base, "admin", ADMIN_PASSWORD)
    r = httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def schedules(base: str) -> list[dict[str, Any]]:
    return list(api(base, "/api/v1/silence_schedules")["data"])


def fill(form: Any, matchers: str, days: list[str], start: str, end: str, zone: str, comment: str) -> None:
    form.get_by_label("Matchers").fill(matchers)
    for d in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
        box = form.get_by_role("checkbox", name=d)
        box.set_checked(d in days)
    form.get_by_label("From", exact=True).fill(start)
    form.get_by_label("To", exact=True).fill(end)
    form.get_by_label("Time zone").fill(zone)
    form.get_by_label("Comment").fill(comment)


def test_create_a_recurring_silence_see_its_window_mute_then_delete_it(server: Proc, browser: Any) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/alerts", "admin", ADMIN_PASSWORD)
    page = tab.page
    section = page.get_by_test_id("schedules")
    section.get_by_text("No recurring silence").wait_for()
    section.get_by_role("button", name="New recurring silence").click()
    form = page.get_by_test_id("schedule-form")
    # refused in the page: a bad matcher, no day; then by the server: an unknown time zone. Nothing written.
    fill(form, "alertname=UiDiskAlmostFull", ["Sunday"], "02:00", "04:00", "Europe/Berlin", "backups")
    form.get_by_role("button", name="Create recurring silence").click()
    assert "cannot read a matcher" in form.get_by_role("alert").inner_text()
    fill(form, 'alertname="UiDiskAlmostFull"', [], "02:00", "04:00", "Europe/Berlin", "backups")
    form.get_by_role("button", name="Create recurring silence").click()
    assert "at least one day" in form.get_by_role("alert").inner_text()
    fill(form, 'alertname="UiDiskAlmostFull"', ["Sunday"], "02:00", "04:00", "Mars/Olympus", "backups")
    form.get_by_role("button", name="Create recurring silence").click()
    form.get_by_text("unknown time zone").wait_for()
    assert schedules(server.url) == []
    # a weekend window overnight in Berlin (for another team: whether it runs now does not touch the alert below)
    fill(form, 'alertname="UiDiskAlmostFull", team="db"', ["Saturday", "Sunday"], "22:00", "06:00", "Europe/Berlin",
         "weekend backups")
    form.get_by_role("button", name="Create recurring silence").click()
    page.get_by_test_id("alerts-notice").get_by_text("Recurring silence").wait_for()
    (weekend,) = schedules(server.url)
    assert (weekend["weekdays"], weekend["startTime"], weekend["endTime"], weekend["timeZone"]) == (
        ["saturday", "sunday"], "22:00", "06:00", "Europe/Berlin")
    assert weekend["createdBy"] == "admin" and weekend["comment"] == "weekend backups"
    row = section.locator(f'tr[data-schedule="{weekend["id"]}"]')
    row.wait_for()
    assert "Sat, Sun" in row.inner_text() and "22:00–06:00" in row.inner_text()
    # a whole-day window every day (00:00 to 00:00): its silence is active now and mutes the firing alert
    section.get_by_role("button", name="New recurring silence").click()
    fill(form, 'alertname="UiDiskAlmostFull", team="storage"',
         ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"], "00:00", "00:00", "UTC",
         "all day")
    form.get_by_role("button", name="Create recurring silence").click()
    section.locator("tr[data-schedule]").nth(1).wait_for()  # listed once created
    allday = next(s for s in schedules(server.url) if s["comment"] == "all day")
    assert (allday["startTime"], allday["endTime"]) == ("00:00", "24:00")
    all_row = section.locator(f'tr[data-schedule="{allday["id"]}"]')
    all_row.wait_for()
    assert "every day" in all_row.inner_text() and "running until" in all_row.inner_text()
    mine = [s for s in api(server.url, "/api/v2/silences") if allday["id"] in s["comment"]]
    active = [s for s in mine if s["status"]["state"] == "active"]
    assert len(active) == 1
    sil_row = page.locator(f'[data-testid=silences] tr[data-silence="{active[0]["id"]}"]')
    sil_row.wait_for()
    assert sil_row.get_attribute("data-state") == "active" and "all day" in sil_row.inner_text()
    page.wait_for_function(  # the rule fires within a few evaluations
        "async () => (await (await fetch('/api/v2/alerts')).json()).some(a => a.status.silencedBy.length)"
    )
    muted = [a for a in api(server.url, "/api/v2/alerts") if a["labels"]["alertname"] == "UiDiskAlmostFull"]
    assert muted and all(a["status"]["silencedBy"] == [active[0]["id"]] for a in muted)
    tab.screenshot("alerts-recurring-light")
    # delete it: its silences expire, the other schedule stays
    page.once("dialog", lambda d: d.accept())
    all_row.get_by_role("button", name="Delete recurring silence").click()
    page.get_by_text(f"Recurring silence {allday['id']} deleted.").wait_for()
    assert [s["id"] for s in schedules(server.url)] == [weekend["id"]]
    states = {s["status"]["state"] for s in api(server.url, "/api/v2/silences") if allday["id"] in s["comment"]}
    assert states == {"expired"}
    sil_row.wait_for(state="detached")  # expired silences are hidden until "Show expired"
    assert [e for e in tab.console_errors() if "status of 401" not in e and "status of 400" not in e] == []


def test_a_recurring_silence_from_an_alerts_row(server: Proc, browser: Any) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/alerts", "admin", ADMIN_PASSWORD)
    page = tab.page
    page.get_by_role("cell", name="UiDiskAlmostFull").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Recurring silence for UiDiskAlmostFull").click()
    form = page.get_by_test_id("schedule-form")
    matchers = form.get_by_label("Matchers")
    # the form is filled and focused after the click has re-rendered the page: wait for both
    page.wait_for_function(
        "() => document.activeElement === document.querySelector('[data-testid=schedule-form] input')",
        timeout=10_000)
    assert 'alertname="UiDiskAlmostFull"' in matchers.input_value() and 'team="storage"' in matchers.input_value()
    assert tab.console_errors() == []


def test_viewer_sees_recurring_silences_without_controls(server: Proc, browser: Any) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/alerts", "vera", VIEWER_PASSWORD)
    section = tab.page.get_by_test_id("schedules")
    section.wait_for()
    section.locator("table, p.empty").first.wait_for()
    assert section.get_by_role("button", name="New recurring silence").count() == 0
    assert section.get_by_role("button", name="Delete").count() == 0


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_recurring_form_has_no_serious_accessibility_violations(server: Proc, browser: Any, scheme: str) -> None:
    tab = signed_in_tab(browser, server.url, "/ui/alerts", "admin", ADMIN_PASSWORD, scheme=scheme)
    tab.page.get_by_test_id("schedules").get_by_role("button", name="New recurring silence").click()
    tab.page.get_by_test_id("schedule-form").wait_for()
    violations = tab.axe_violations()
    tab.screenshot(f"alerts-recurring-{scheme}-axe")
    assert violations == []
