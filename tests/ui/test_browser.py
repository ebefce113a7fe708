"""The UI in a real browser (Debian's Chromium through Playwright) against a real server: the live
overview updating over /ws/metrics, the metrics explorer's editor, table, graph and legend, logs,
alerts, keyboard navigation, themes, axe-core on every page, no console errors; screenshots in
build/ui-screenshots/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clearsight.ingest.prompb_encode import TimeSeries
from tests.support.peers import Proc, start_clearsight
from tests.ui.conftest import Tab, host_series, now_ms, open_tab, write_series

RULES = """groups:
- name: ui
  interval: 1s
  rules:
  - alert: UiTestAlwaysFiring
    expr: vector(1)
    labels: {severity: critical}
    annotations: {summary: always firing (UI test)}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    work: Path = tmp_path_factory.mktemp("ui-server")
    (work / "rules.yml").write_text(RULES)
    proc = start_clearsight(work, config_yaml="rules:\n  files: rules.yml\n")
    try:
        t = now_ms()
        write_series(proc.url, host_series("web-1", t))
        write_series(proc.url, [
            TimeSeries([("__name__", "ui_demo_value"), ("job", "demo"), ("instance", "a")],
                       [(t - 60_000 * k, 42.0) for k in range(10, -1, -1)]),
            TimeSeries([("__name__", "ui_demo_value"), ("job", "demo"), ("instance", "b")],
                       [(t - 60_000 * k, 7.5) for k in range(10, -1, -1)]),
        ])
        line_ns = str(time.time_ns())
        r = httpx.post(f"{proc.url}/loki/api/v1/push", json={"streams": [
            {"stream": {"job": "uitest", "level": "error"}, "values": [[line_ns, "payment failed for order 4711"]]}]})
        assert r.status_code == 204, r.text
        yield proc
    finally:
        proc.stop()


def assert_clean(tab: Tab) -> None:
    assert tab.console_errors() == []


def table_values(page: Any, selector: str) -> dict[str, str]:
    rows = page.locator(f"{selector} tbody tr")
    return {rows.nth(i).locator("td.series").inner_text(): rows.nth(i).locator("td.value").inner_text()
            for i in range(rows.count())}


def test_overview_updates_live_over_the_websocket(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/")
    page = tab.page
    page.get_by_role("heading", name="Overview").wait_for()
    mem = page.locator('tr[data-host="web-1"] td[data-panel="memory"]')
    page.wait_for_function("() => document.querySelector('tr[data-host=\"web-1\"] td[data-panel=\"memory\"]')"
                           "?.textContent === '25.0 %'")
    assert page.locator('tr[data-host="web-1"] td[data-panel="cpu"]').inner_text() == "50.0 %"
    assert page.locator('tr[data-host="web-1"] td[data-panel="disk"]').inner_text() == "60.0 %"
    assert page.locator('tr[data-host="web-1"] td[data-panel="net_rx"]').inner_text() == "1.0 KiB/s"
    assert page.locator("[data-testid=live-status]").get_attribute("data-state") == "live"
    for key in ("cpu", "memory", "disk", "net_rx"):
        chart = page.locator(f"[data-testid=chart-{key}]")
        assert chart.locator("canvas").count() == 1
        assert "web-1" in chart.locator(".legend").inner_text()
    # a new sample reaches the page through the WebSocket (no reload)
    nav_count = page.evaluate("performance.getEntriesByType('navigation').length")
    write_series(server.url, [TimeSeries([("__name__", "node_memory_MemAvailable_bytes"), ("instance", "web-1"),
                                          ("job", "node")], [(now_ms(), 400.0)])])
    page.wait_for_function("() => document.querySelector('tr[data-host=\"web-1\"] td[data-panel=\"memory\"]')"
                           "?.textContent === '60.0 %'", timeout=10_000)
    assert mem.inner_text() == "60.0 %"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == nav_count
    # firing alerts and the health summary
    page.get_by_text("UiTestAlwaysFiring").wait_for()
    assert "always firing (UI test)" in page.locator("[data-testid=firing-alerts]").inner_text()
    assert page.locator("[data-testid=health] .health-text").inner_text() == "Critical"
    tab.screenshot("overview-light")
    assert_clean(tab)


def test_explorer_runs_a_query_and_shows_its_values(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/metrics?q=ui_demo_value&view=table&range=1h")
    page = tab.page
    page.locator("[data-testid=table-0] td.value").first.wait_for()
    assert table_values(page, "[data-testid=table-0]") == {
        'ui_demo_value{instance="a", job="demo"}': "42",
        'ui_demo_value{instance="b", job="demo"}': "7.5",
    }
    # type a new expression in the PromQL editor and run it with Shift+Enter
    editor = page.get_by_role("textbox", name="PromQL query A")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("sum by (job) (ui_demo_value)")
    page.keyboard.press("Escape")  # closes the completion list
    page.keyboard.press("Shift+Enter")
    page.wait_for_function("() => document.querySelector('[data-testid=table-0] td.series')?.textContent"
                           " === '{job=\"demo\"}'")
    assert table_values(page, "[data-testid=table-0]") == {'{job="demo"}': "49.5"}
    assert "q=sum+by+%28job%29+%28ui_demo_value%29" in page.url or "q=sum%20by" in page.url
    # the URL is shareable: a new tab opened on it shows the same result
    tab2 = open_tab(browser, page.url)
    tab2.page.locator("[data-testid=table-0] td.value").first.wait_for()
    assert table_values(tab2.page, "[data-testid=table-0]") == {'{job="demo"}': "49.5"}
    tab.screenshot("metrics-table-light")
    assert_clean(tab)
    assert_clean(tab2)


def test_explorer_completes_metric_names_and_marks_errors(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/metrics")
    page = tab.page
    editor = page.get_by_role("textbox", name="PromQL query A")
    editor.click()
    page.keyboard.type("ui_dem")
    option = page.locator(".cm-tooltip-autocomplete li", has_text="ui_demo_value")
    option.first.click()  # accept the completion
    page.wait_for_function("() => document.querySelector('.cm-content')?.textContent === 'ui_demo_value'")
    editor.click()
    page.keyboard.press("End")
    page.keyboard.type(" + sum(")
    page.locator(".cm-lintRange-error").first.wait_for()  # the inline parse error (offline linter)
    page.keyboard.press("Escape")
    page.get_by_test_id("run-queries").click()
    err = page.get_by_test_id("query-error-0")
    err.wait_for()
    assert "parse error" in err.inner_text() or "unexpected" in err.inner_text()
    tab.screenshot("metrics-error-light")
    # the server's 400 for the bad query is the only console message expected here
    assert [e for e in tab.console_errors() if "status of 400" not in e] == []


def test_explorer_graph_with_legend_toggling_and_several_queries(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/metrics?q=ui_demo_value&q=ui_demo_value%20*%202&range=15m&view=graph")
    page = tab.page
    chart = page.get_by_test_id("explorer-chart")
    chart.locator("canvas").wait_for()
    legend = chart.locator(".legend-item")
    # both queries' results render (each answers on its own): wait for their four series
    page.wait_for_function("() => document.querySelectorAll('[data-testid=explorer-chart] .legend-item').length >= 4")
    assert legend.count() == 4  # two series per query
    labels = legend.all_inner_texts()
    assert any(t.startswith("A: ui_demo_value") for t in labels) and any(t.startswith("B: ") for t in labels)
    first = legend.first
    assert first.get_attribute("aria-pressed") == "true"
    first.click()
    assert first.get_attribute("aria-pressed") == "false"
    first.press("Enter")  # keyboard too
    assert first.get_attribute("aria-pressed") == "true"
    # zoom by dragging on the graph: the range in the URL becomes absolute (end=...)
    box = chart.locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    page.wait_for_function("() => location.search.includes('end=')")
    rng = re.search(r"range=([0-9a-z]+)", page.url)
    assert rng is not None and rng.group(1) != "15m"
    page.get_by_role("button", name="Add query").click()
    query_c = page.get_by_role("textbox", name="PromQL query C")
    query_c.wait_for()  # rendered after the click, not synchronously with it
    assert query_c.count() == 1
    # the catalog browser lists metrics with their labels
    page.locator(".catalog summary").click()
    page.get_by_role("button", name="ui_demo_value", exact=True).click()
    detail = page.locator(".catalog-detail")
    detail.get_by_text("instance").first.wait_for()
    assert "a, b" in detail.inner_text()
    tab.screenshot("metrics-graph-light")
    assert_clean(tab)


def test_logs_page_finds_a_pushed_line(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/logs?q=%7Bjob%3D%22uitest%22%7D")
    page = tab.page
    page.get_by_test_id("log-lines").wait_for()
    assert "payment failed for order 4711" in page.get_by_test_id("log-lines").inner_text()
    tab.screenshot("logs-light")
    assert_clean(tab)


def test_alerts_page_lists_firing_alerts_and_rules(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/alerts")
    page = tab.page
    page.get_by_role("cell", name="UiTestAlwaysFiring").first.wait_for()
    assert "vector(1)" in page.locator("#rules-title + div, section[aria-labelledby=rules-title]").first.inner_text()
    tab.screenshot("alerts-light")
    assert_clean(tab)


PAGES = {"overview": "/", "metrics": "/ui/metrics?q=ui_demo_value&view=graph&range=15m",
         "logs": "/ui/logs?q=%7Bjob%3D%22uitest%22%7D", "alerts": "/ui/alerts"}
READY = {"overview": "[data-testid=hosts]", "metrics": "[data-testid=explorer-chart] canvas",
         "logs": "[data-testid=log-lines]", "alerts": "section[aria-labelledby=rules-title] table"}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", list(PAGES))
def test_pages_have_no_serious_accessibility_violations(server: Proc, browser: Any, name: str, scheme: str) -> None:
    tab = open_tab(browser, f"{server.url}{PAGES[name]}", scheme=scheme)
    tab.page.locator(READY[name]).first.wait_for()
    assert tab.page.evaluate("document.documentElement.dataset.theme") == scheme
    violations = tab.axe_violations()
    tab.screenshot(f"{name}-{scheme}-axe")
    assert violations == []
    assert_clean(tab)


def test_keyboard_navigation_with_visible_focus(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/overview")
    page = tab.page
    page.get_by_role("heading", name="Overview").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    seen = []
    for _ in range(6):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.textContent"))
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("none", ""), f"no visible focus on {seen[-1]!r}"
    assert seen == ["Clearsight", "Overview", "Infrastructure", "Health map", "Dashboards", "Metrics"]
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Metrics explorer").wait_for()
    assert page.url.endswith("/ui/metrics")
    assert page.get_by_role("link", name="Metrics").get_attribute("aria-current") == "page"
    # the theme button switches and the choice survives a reload
    before = page.evaluate("document.documentElement.dataset.theme")
    page.get_by_role("button", name=re.compile("Switch to")).click()
    after = page.evaluate("document.documentElement.dataset.theme")
    assert {before, after} == {"light", "dark"}
    page.reload()
    page.get_by_role("heading", name="Metrics explorer").wait_for()
    assert page.evaluate("document.documentElement.dataset.theme") == after
    # local time shown, UTC on hover
    page.goto(f"{server.url}/ui/overview")
    stamp = page.locator("[data-testid=live-status] time")
    stamp.wait_for()
    assert (stamp.get_attribute("title") or "").endswith(" UTC")
    assert "Europe/Berlin" in page.locator(".tz").inner_text()
    assert_clean(tab)


def test_sign_in_when_anonymous_access_is_off(browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEARSIGHT_AUTH_ADMIN_PASSWORD", "correct horse battery staple")
    proc = start_clearsight(tmp_path, config_yaml="auth:\n  anonymous: \"off\"\n")
    try:
        # 401s on /api/v1/auth/me (not signed in) and on the wrong password are expected here
        tab = open_tab(browser, f"{proc.url}/", allowed=("status of 401",))
        page = tab.page
        page.get_by_role("heading", name="Sign in to Clearsight").wait_for()
        assert page.get_by_role("navigation").count() == 0
        tab.screenshot("signin-light")
        assert tab.axe_violations() == []
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("alert").inner_text() == "Wrong user name or password."
        page.get_by_label("Password").fill("correct horse battery staple")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Overview").wait_for()
        assert "admin" in page.get_by_test_id("user").inner_text()
        # the WebSocket is authenticated by the session cookie
        page.wait_for_function("() => document.querySelector('[data-testid=live-status]')?.dataset.state === 'live'")
        assert_clean(tab)
    finally:
        proc.stop()
