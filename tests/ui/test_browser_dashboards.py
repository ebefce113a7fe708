"""Dashboards in a real browser against a real server (anonymous loopback access acts as editor):
create a dashboard, add a variable and a stat, a time-series and a logs panel in the editor, save it,
see the values for the chosen variable value after a reload, change the variable, edit and delete;
axe-core in both themes; screenshots in build/ui-screenshots/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import Proc, start_clearsight
from tests.ui.conftest import Tab, host_series, now_ms, open_tab, write_series

MEM = '100 * (1 - node_memory_MemAvailable_bytes{instance="$host"} / node_memory_MemTotal_bytes{instance="$host"})'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    work: Path = tmp_path_factory.mktemp("ui-dashboards")
    proc = start_clearsight(work)
    try:
        t = now_ms()
        write_series(proc.url, host_series("web-1", t))  # memory 25 % used
        write_series(proc.url, host_series("web-2", t, mem_avail=100.0))  # memory 90 % used
        r = httpx.post(
            f"{proc.url}/loki/api/v1/push",
            json={
                "streams": [
                    {
                        "stream": {"host": "web-2", "level": "warn"},
                        "values": [[str(time.time_ns()), "disk latency above 50 ms"]],
                    }
                ]
            },
            timeout=10,
        )
        assert r.status_code == 204, r.text
        yield proc
    finally:
        proc.stop()


def assert_clean(tab: Tab) -> None:
    assert tab.console_errors() == []


def test_build_save_and_use_a_dashboard(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/dashboards")
    page = tab.page
    page.get_by_role("heading", name="Dashboards").wait_for()
    page.get_by_label("New dashboard title").fill("Web hosts")
    page.get_by_role("button", name="Create dashboard").click()
    editor = page.get_by_test_id("dash-editor")
    editor.wait_for()
    # a variable: the instance label's values of node_memory_MemTotal_bytes
    page.get_by_role("button", name="Add variable").click()
    page.get_by_label("Variable name").fill("host")
    page.get_by_label("Values of label").fill("instance")
    page.get_by_label("Of series (optional)").fill("node_memory_MemTotal_bytes")
    # three panels: stat, time series, logs
    for i, (title, kind, query, unit) in enumerate(
        [
            ("Memory used", "stat", MEM, "percent"),
            ("Memory over time", "timeseries", MEM, "percent"),
            ("Host logs", "logs", '{host="$host"}', ""),
        ]
    ):
        page.get_by_role("button", name="Add panel").click()
        p = page.get_by_test_id(f"edit-panel-{i}")
        p.get_by_label("Panel title").fill(title)
        p.get_by_label("Type").select_option(kind)
        p.get_by_label("Unit").select_option(unit or "")
        p.get_by_label("query").fill(query)
    page.get_by_role("button", name="Save dashboard").click()
    page.get_by_text("Saved (version 2).").wait_for()
    assert page.get_by_test_id("dash-editor").count() == 0
    # after a reload: web-1 is the first value; its memory is 25 %
    page.reload()
    page.get_by_role("heading", name="Web hosts").wait_for()
    stat = page.get_by_test_id("panel-0").get_by_test_id("stat-value")
    stat.wait_for()
    assert stat.inner_text() == "25.0 %"
    page.get_by_test_id("panel-1").locator("canvas").wait_for()
    assert (
        "No log lines" in page.get_by_test_id("panel-2").inner_text()
        or page.get_by_test_id("panel-2").get_by_role("status").count() == 1
    )
    # choose web-2: the stat and the logs follow the variable
    page.get_by_label("Variable host").select_option("web-2")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=panel-0] [data-testid=stat-value]')"
        "?.textContent === '90.0 %'"
    )
    page.get_by_test_id("panel-2").get_by_text("disk latency above 50 ms").wait_for()
    tab.screenshot("dashboard-light")
    # the list shows it; edit the title, then delete it
    page.get_by_role("button", name="Edit").click()
    page.get_by_label("Title", exact=True).fill("Web hosts (memory)")
    page.get_by_role("button", name="Save dashboard").click()
    page.get_by_role("heading", name="Web hosts (memory)").wait_for()
    page.get_by_role("link", name="All dashboards").click()
    assert "Web hosts (memory)" in page.get_by_test_id("dashboards").inner_text()
    page.get_by_role("link", name="Web hosts (memory)").click()
    page.get_by_role("button", name="Edit").click()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete dashboard").click()
    page.get_by_role("heading", name="Dashboards").wait_for()
    page.get_by_role("link", name="Web hosts (memory)").wait_for(state="detached")
    titles = [d["title"] for d in httpx.get(f"{server.url}/api/v1/dashboards", timeout=10).json()["data"]]
    assert "Web hosts (memory)" not in titles
    assert_clean(tab)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_dashboard_page_has_no_serious_accessibility_violations(
    server: Proc, browser: Any, scheme: str
) -> None:
    r = httpx.post(
        f"{server.url}/api/v1/dashboards",
        timeout=10,
        json={
            "title": f"axe {scheme}",
            "variables": [{"name": "host", "label": "instance"}],
            "panels": [
                {"title": "Memory", "type": "gauge", "query": MEM, "unit": "percent"},
                {"title": "Table", "type": "table", "query": "node_memory_MemTotal_bytes"},
            ],
        },
    )
    assert r.status_code == 200, r.text
    did = r.json()["data"]["id"]
    tab = open_tab(browser, f"{server.url}/ui/dashboards/{did}?edit=1", scheme=scheme)
    tab.page.get_by_test_id("panel-0").locator("meter").first.wait_for()
    tab.page.get_by_test_id("panel-1").locator("table").wait_for()
    violations = tab.axe_violations()
    tab.screenshot(f"dashboard-{scheme}-axe")
    assert violations == []
    assert_clean(tab)


def test_dashboard_by_keyboard(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/dashboards")
    page = tab.page
    field = page.get_by_label("New dashboard title")
    field.focus()
    page.keyboard.type("Keyboard board")
    page.keyboard.press("Enter")  # submits the form
    page.get_by_test_id("dash-editor").wait_for()
    page.get_by_role("button", name="Add panel").focus()
    page.keyboard.press("Enter")
    panel = page.get_by_test_id("edit-panel-0")
    panel.get_by_label("Panel title").focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("Seven")
    page.keyboard.press("Tab")  # to the type select
    assert page.evaluate("document.activeElement.tagName") == "SELECT"
    panel.get_by_label("Type").select_option("stat")
    panel.get_by_label("query").focus()
    # one input event: typed key by key on a loaded machine, a pause past the preview's 500 ms settle
    # could query the prefix `vector(7` (a 400 in the console), which is not what this test is about
    page.keyboard.insert_text("vector(7)")
    save = page.get_by_role("button", name="Save dashboard")
    save.focus()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") not in ("none", "")
    page.keyboard.press("Enter")
    page.get_by_test_id("panel-0").get_by_test_id("stat-value").wait_for()
    assert page.get_by_test_id("panel-0").get_by_test_id("stat-value").inner_text() == "7"
    assert_clean(tab)
