"""The logs explorer in a real browser against a real server: the LogQL editor (completion of stream
labels and values from the server, inline syntax errors), lines with level and a JSON view, the volume
chart, live tail over Loki's tail WebSocket (a line pushed after the tail started shows up without a
reload), axe-core in both themes; screenshots in build/ui-screenshots/."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import Proc, start_clearsight
from tests.ui.conftest import Tab, open_tab


def push(base: str, labels: dict[str, str], lines: list[str]) -> None:
    now = time.time_ns()
    values = [[str(now - (len(lines) - i) * 1000), line] for i, line in enumerate(lines)]
    r = httpx.post(
        f"{base}/loki/api/v1/push", json={"streams": [{"stream": labels, "values": values}]}, timeout=10
    )
    assert r.status_code == 204, r.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    work: Path = tmp_path_factory.mktemp("ui-logs")
    proc = start_clearsight(work)
    try:
        push(
            proc.url,
            {"job": "checkout", "level": "error"},
            [json.dumps({"msg": "card declined", "order": 4711, "user": {"id": "u-17"}})],
        )
        push(proc.url, {"job": "checkout", "level": "info"}, [f"served request {i}" for i in range(30)])
        push(proc.url, {"job": "billing", "level": "warn"}, ["invoice queue is slow"])
        yield proc
    finally:
        proc.stop()


def assert_clean(tab: Tab) -> None:
    assert tab.console_errors() == []


def test_logql_editor_completes_labels_and_values_and_runs(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/logs")
    page = tab.page
    editor = page.get_by_role("textbox", name="LogQL query")
    editor.click()
    page.keyboard.type("{jo")
    page.locator(".cm-tooltip-autocomplete li", has_text="job").first.click()
    page.keyboard.type('="')
    page.locator(".cm-tooltip-autocomplete li", has_text="checkout").first.wait_for()
    assert page.locator(".cm-tooltip-autocomplete li", has_text="billing").count() == 1
    page.locator(".cm-tooltip-autocomplete li", has_text="checkout").first.click()
    page.wait_for_function(
        "() => document.querySelector('.cm-content')?.textContent === '{job=\"checkout\"}'"
    )
    page.keyboard.press("End")
    page.keyboard.type(' |= "declined"')
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    lines = page.get_by_test_id("log-lines")
    lines.wait_for()
    rows = lines.locator("li.logrow")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-level") == "error"
    assert "error" in rows.first.locator(".lvl").inner_text()
    assert "q=%7Bjob%3D%22checkout%22%7D" in page.url
    # the JSON viewer: expand the line
    rows.first.locator("button.logrow-head").click()
    assert rows.first.locator("button.logrow-head").get_attribute("aria-expanded") == "true"
    shown = json.loads(rows.first.get_by_test_id("json-view").inner_text())
    assert shown == {"msg": "card declined", "order": 4711, "user": {"id": "u-17"}}
    assert "checkout" in rows.first.locator(".logrow-detail table").inner_text()
    tab.screenshot("logs-json-light")
    assert_clean(tab)


def test_logs_volume_and_inline_syntax_error(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/logs?q=%7Bjob%3D%22checkout%22%7D&range=1h")
    page = tab.page
    page.get_by_test_id("log-lines").wait_for()
    assert page.get_by_test_id("log-lines").locator("li.logrow").count() == 31
    volume = page.get_by_test_id("log-volume")
    volume.locator("canvas").wait_for()
    legend = volume.locator(".legend").inner_text()
    assert "error" in legend and "info" in legend
    editor = page.get_by_role("textbox", name="LogQL query")
    editor.click()
    page.keyboard.press("End")
    page.keyboard.type(" |= ")
    page.locator(".cm-lintRange-error").first.wait_for()
    tab.screenshot("logs-volume-light")
    assert_clean(tab)


def test_live_tail_shows_a_new_line(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/logs?q=%7Bjob%3D%22billing%22%7D")
    page = tab.page
    page.get_by_test_id("log-lines").wait_for()
    page.get_by_test_id("tail-start").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=tail-status]')?.dataset.state === 'live'"
    )
    nav_count = page.evaluate("performance.getEntriesByType('navigation').length")
    push(server.url, {"job": "billing", "level": "error"}, ["invoice 991 failed to render"])
    page.get_by_test_id("log-lines").get_by_text("invoice 991 failed to render").wait_for(timeout=15_000)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == nav_count
    first = page.get_by_test_id("log-lines").locator("li.logrow").first
    assert "invoice 991 failed to render" in first.inner_text()
    tab.screenshot("logs-tail-light")
    page.get_by_test_id("tail-stop").click()
    assert page.get_by_test_id("tail-status").get_attribute("data-state") == "off"
    assert_clean(tab)


def test_log_context_around_a_line_with_its_own_filter(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/logs?q=%7Bjob%3D%22checkout%22%2Clevel%3D%22info%22%7D")
    page = tab.page
    row = page.get_by_test_id("log-lines").locator("li.logrow", has_text="served request 15")
    row.locator("button.logrow-head").click()
    row.get_by_role("button", name="Show context").click()
    ctx = row.get_by_test_id("log-context")
    ctx.locator("li.ctx-at").wait_for()
    lines = ctx.locator(".logline").all_inner_texts()
    assert lines == [f"served request {i}" for i in range(5, 26)]
    assert ctx.locator("li.ctx-at").inner_text().endswith("served request 15")
    ctx.get_by_label("Context lines containing").fill("request 2")
    ctx.get_by_role("button", name="Filter context").click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=log-context] .logline').length === 12"
    )
    assert ctx.locator(".logline").all_inner_texts() == [
        "served request 2",
        "served request 15",
        *[f"served request {i}" for i in range(20, 30)],
    ]
    assert_clean(tab)


def test_a_trace_id_in_a_line_finds_its_lines_in_other_streams(server: Proc, browser: Any) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    push(server.url, {"job": "gateway", "level": "info"}, [f"GET /pay 200 trace_id={trace}"])
    push(
        server.url,
        {"job": "payments", "level": "error"},
        [json.dumps({"msg": "card declined", "traceId": trace})],
    )
    push(server.url, {"job": "payments", "level": "info"}, ["unrelated line"])
    tab = open_tab(browser, f"{server.url}/ui/logs?q=%7Bjob%3D%22gateway%22%7D")
    page = tab.page
    row = page.get_by_test_id("log-lines").locator("li.logrow").first
    row.locator("button.logrow-head").click()
    row.get_by_role("button", name=f"Lines of trace {trace}").click()
    lines = row.get_by_test_id("trace-lines")
    lines.locator("li").nth(1).wait_for()
    text = lines.inner_text()
    assert lines.locator("li").count() == 2
    assert "job=gateway" in text and "job=payments" in text and "card declined" in text
    assert "unrelated" not in text
    assert_clean(tab)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_logs_page_has_no_serious_accessibility_violations(server: Proc, browser: Any, scheme: str) -> None:
    tab = open_tab(browser, f"{server.url}/ui/logs?q=%7Bjob%3D%22checkout%22%7D", scheme=scheme)
    tab.page.get_by_test_id("log-volume").locator("canvas").wait_for()
    tab.page.locator("li.logrow button").first.click()
    violations = tab.axe_violations()
    tab.screenshot(f"logs-{scheme}-axe")
    assert violations == []
    assert_clean(tab)
