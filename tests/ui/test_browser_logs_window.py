"""The logs explorer's windowed list in a real browser against a real server: 5,000 lines pushed over
Loki's push API and queried in the explorer keep far fewer rows than that in the page; scrolling to
the end shows the oldest line, a JSON line near the end expands (and stays expanded after scrolling
away and back), Home/End/arrow keys move the focus across rows that were not in the page; a short
result is not windowed. Screenshot in build/ui-screenshots/."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import Proc, start_clearsight
from tests.ui.conftest import open_tab

N = 5000
JSON_AT = 3  # the 4th oldest line is a JSON object
DOC = {"msg": "card declined", "order": 4711, "user": {"id": "u-17"}}


def text_of(i: int) -> str:
    return json.dumps(DOC) if i == JSON_AT else f"bulk line {i:04d} served path=/api/item/{i}"


def push(base: str, labels: dict[str, str], values: list[list[str]]) -> None:
    r = httpx.post(f"{base}/loki/api/v1/push", json={"streams": [{"stream": labels, "values": values}]}, timeout=30)
    assert r.status_code == 204, r.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    work: Path = tmp_path_factory.mktemp("ui-logs-window")
    proc = start_clearsight(work)
    try:
        now = time.time_ns()
        push(proc.url, {"job": "bulk", "level": "info"}, [[str(now - (N - i) * 1_000_000), text_of(i)] for i in range(N)])
        push(proc.url, {"job": "few"}, [[str(now), "only line"]])
        yield proc
    finally:
        proc.stop()


def rows_in_page(page: Any) -> int:
    return int(page.locator("[data-testid=log-lines] li.logrow").count())


def test_5000_lines_are_windowed_scrolled_to_the_end_and_a_json_line_expands(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/logs?q=%7Bjob%3D%22bulk%22%7D&range=1h")
    page = tab.page
    box = page.get_by_test_id("log-scroll")
    box.wait_for()
    assert box.get_attribute("data-windowed") == "true"
    assert page.get_by_text(f"{N}+ lines").count() == 1
    rows = page.locator("[data-testid=log-lines] li.logrow")
    assert f"bulk line {N - 1:04d}" in rows.first.inner_text()  # newest first
    assert rows.first.get_attribute("aria-setsize") == str(N)
    shown = rows_in_page(page)
    assert 0 < shown < 200, shown
    # scroll to the end: the oldest line comes into the page, the newest leaves it
    box.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    oldest = page.locator("li.logrow", has_text="bulk line 0000 ")
    oldest.wait_for()
    box.evaluate("el => { el.scrollTop = el.scrollHeight; }")  # measured rows may have grown the list
    page.wait_for_function(
        "() => { const el = document.querySelector('[data-testid=log-scroll]');"
        " const rows = el.querySelectorAll('li.logrow'); const last = rows[rows.length - 1];"
        f" return last && last.dataset.index === '{N - 1}' &&"
        " last.getBoundingClientRect().bottom <= el.getBoundingClientRect().bottom + 1 }"
    )
    assert oldest.get_attribute("aria-posinset") == str(N)
    assert page.locator("li.logrow", has_text=f"bulk line {N - 1:04d} ").count() == 0
    assert rows_in_page(page) < 200
    # expand the JSON line near the end
    row = page.locator("li.logrow", has_text="card declined")
    row.locator("button.logrow-head").click()
    assert row.locator("button.logrow-head").get_attribute("aria-expanded") == "true"
    assert json.loads(row.get_by_test_id("json-view").inner_text()) == DOC
    tab.screenshot("logs-5000-json-light")
    # away to the top (the row leaves the page) and back: still expanded
    box.evaluate("el => { el.scrollTop = 0; }")
    page.locator("li.logrow", has_text=f"bulk line {N - 1:04d} ").wait_for()
    assert page.locator("li.logrow", has_text="card declined").count() == 0
    box.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    row.get_by_test_id("json-view").wait_for()
    assert tab.console_errors() == []


def test_keys_move_the_focus_across_rows_not_yet_in_the_page(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/logs?q=%7Bjob%3D%22bulk%22%7D&range=1h")
    page = tab.page
    first = page.locator("li.logrow").first
    first.wait_for()
    first.locator("button.logrow-head").focus()
    page.keyboard.press("ArrowDown")
    focused = "() => document.activeElement?.closest('li.logrow')?.textContent ?? ''"
    assert f"bulk line {N - 2:04d} " in page.evaluate(focused)
    page.keyboard.press("End")
    page.wait_for_function(f"() => ({focused})().includes('bulk line 0000 ')")
    page.keyboard.press("ArrowUp")
    assert "bulk line 0001 " in page.evaluate(focused)
    page.keyboard.press("Enter")  # the focused row's button toggles it
    assert page.evaluate("document.activeElement.getAttribute('aria-expanded')") == "true"
    page.keyboard.press("Home")
    page.wait_for_function(f"() => ({focused})().includes('bulk line {N - 1:04d} ')")
    assert rows_in_page(page) < 200
    # the focus ring is visible on the row reached by keyboard
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    assert tab.console_errors() == []


def test_a_short_result_is_not_windowed(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/logs?q=%7Bjob%3D%22few%22%7D&range=1h")
    page = tab.page
    page.get_by_test_id("log-scroll").wait_for()
    assert page.get_by_test_id("log-scroll").get_attribute("data-windowed") == "false"
    assert rows_in_page(page) == 1
    assert tab.console_errors() == []


def test_live_tail_into_a_windowed_list_keeps_the_rows_being_read_in_place(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/logs?q=%7Bjob%3D%22tailed%22%7D&range=1h")
    page = tab.page
    page.get_by_test_id("tail-start").click()
    page.wait_for_function("() => document.querySelector('[data-testid=tail-status]')?.dataset.state === 'live'")
    now = time.time_ns()
    push(server.url, {"job": "tailed"}, [[str(now + i), f"tailed line {i:03d} of the tail"] for i in range(300)])
    box = page.get_by_test_id("log-scroll")
    page.locator("li.logrow", has_text="tailed line 299 of").wait_for(timeout=15_000)
    assert box.get_attribute("data-windowed") == "true"
    page.wait_for_function("() => document.querySelector('[data-testid=log-scroll] li.logrow')?.getAttribute('aria-setsize') === '300'")
    # read in the middle: the row at the top of the box, and where it is
    box.evaluate("el => { el.scrollTop = 150 * 27; }")
    top_row = (  # the first row visible in the box and its offset from the box's top, once two frames agree
        "async () => { const el = document.querySelector('[data-testid=log-scroll]');"
        " const read = () => { const top = el.getBoundingClientRect().top;"
        " const row = [...el.querySelectorAll('li.logrow')].find(r => r.getBoundingClientRect().bottom > top + 1);"
        " return row ? JSON.stringify([row.querySelector('.logline').textContent,"
        " Math.round(row.getBoundingClientRect().top - top)]) : null; };"
        # read at once after setting scrollTop, the rows of the new position are not rendered yet (they are by the
        # next frame, before it is painted): wait until two frames apart agree on a row
        " const frame = () => new Promise(r => requestAnimationFrame(r));"
        " let prev = read(); for (;;) { await frame(); await frame(); const cur = read();"
        " if (cur !== null && cur === prev) return JSON.parse(cur); prev = cur; } }"
    )
    reading = page.evaluate(top_row)
    assert reading[0].startswith("tailed line 1")
    # new lines arrive at the top: the row being read stays where it was
    push(server.url, {"job": "tailed"}, [[str(now + 1000 + i), f"tailed newer {i} of the tail"] for i in range(20)])
    page.wait_for_function("() => document.querySelector('[data-testid=log-scroll] li.logrow')?.getAttribute('aria-setsize') === '320'")
    after = page.evaluate(top_row)
    assert after[0] == reading[0] and abs(after[1] - reading[1]) <= 2, (reading, after)
    box.evaluate("el => { el.scrollTop = 0; }")
    page.locator("li.logrow", has_text="tailed newer 19 of").wait_for()
    page.get_by_test_id("tail-stop").click()
    assert tab.console_errors() == []
