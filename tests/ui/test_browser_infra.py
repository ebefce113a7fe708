"""Infrastructure explorer and health map in a real browser against a real server: a host registered
by an agent heartbeat with its container, its metric detail views, and a host that turns critical on
the health map when its memory fills; axe-core on both pages in both themes; keyboard selection on
the map; screenshots in build/ui-screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clearsight.ingest.prompb_encode import TimeSeries
from tests.support.peers import Proc, start_clearsight
from tests.ui.conftest import Tab, host_series, now_ms, open_tab, write_series

CONFIG = """health:
  evaluation_interval: 1s
resources:
  discovery_interval: 1s
"""
CONTAINER = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def heartbeat(base: str) -> None:
    r = httpx.post(
        f"{base}/api/v1/resources/heartbeat",
        json={
            "id": "host:web-1",
            "kind": "host",
            "name": "web-1",
            "hostname": "web-1",
            "os": "Debian GNU/Linux 13",
            "kernel": "6.12.0",
            "agent_version": "0.1.0-uitest",
            "tags": {"env": "uitest"},
            "containers": [{"id": CONTAINER, "name": "nginx", "image": "nginx:1.27", "state": "running"}],
        },
        timeout=10,
    )
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    work: Path = tmp_path_factory.mktemp("ui-infra")
    proc = start_clearsight(work, config_yaml=CONFIG)
    try:
        write_series(proc.url, host_series("web-1", now_ms()))
        heartbeat(proc.url)
        yield proc
    finally:
        proc.stop()


def assert_clean(tab: Tab) -> None:
    assert tab.console_errors() == []


def test_infrastructure_lists_the_host_and_its_container(server: Proc, browser: Any) -> None:
    heartbeat(server.url)
    tab = open_tab(browser, f"{server.url}/ui/infrastructure")
    page = tab.page
    row = page.locator('[data-testid=resources] tr[data-resource="host:web-1"]')
    row.wait_for()
    assert row.locator("[data-liveness]").get_attribute("data-liveness") == "up"
    assert "0.1.0-uitest" in row.inner_text()
    assert "env=uitest" in row.inner_text()
    assert "1 containers" in row.inner_text()
    page.wait_for_function(
        '() => document.querySelector(\'[data-testid=resources] tr[data-resource="host:web-1"]'
        " [data-health]')?.dataset.health === 'healthy'",
        timeout=30_000,
    )
    crow = page.locator(f'[data-testid=resources] tr[data-resource="container:{CONTAINER}"]')
    assert "nginx:1.27" in crow.inner_text()
    # the filter narrows the list
    page.get_by_label("Kind").select_option("container")
    row.wait_for(state="detached")
    assert crow.count() == 1
    page.get_by_label("Kind").select_option("")
    page.get_by_label("Filter by name, id or tag").fill("no-such-host")
    page.get_by_text("No resource matches these filters").wait_for()
    page.get_by_label("Filter by name, id or tag").fill("")
    tab.screenshot("infrastructure-light")
    # the host page: facts, health signals, containers, an expandable metric view
    page.get_by_role("link", name="web-1", exact=True).click()
    page.get_by_role("heading", name="Host web-1").wait_for()
    assert page.url.endswith("/ui/infrastructure/host%3Aweb-1")
    facts = page.get_by_test_id("facts").inner_text()
    assert "Debian GNU/Linux 13" in facts and "6.12.0" in facts
    page.get_by_test_id("signals").wait_for()
    assert "memory_usage" in page.get_by_test_id("signals").inner_text()
    assert "nginx" in page.get_by_test_id("containers").inner_text()
    view = page.get_by_test_id("view-memory")
    view.locator("summary").click()
    view.locator("canvas").wait_for()
    assert "web-1" in view.locator(".legend").inner_text()
    tab.screenshot("host-light")
    # the container page links back to its host
    page.get_by_role("link", name="nginx").click()
    page.get_by_role("heading", name="Container nginx").wait_for()
    assert "nginx:1.27" in page.get_by_test_id("facts").inner_text()
    page.get_by_test_id("facts").get_by_role("link", name="web-1").click()
    page.get_by_role("heading", name="Host web-1").wait_for()
    assert_clean(tab)


def test_health_map_shows_a_host_turning_critical(server: Proc, browser: Any) -> None:
    heartbeat(server.url)
    write_series(server.url, host_series("web-2", now_ms()))
    tab = open_tab(browser, f"{server.url}/ui/health")
    page = tab.page
    node = page.locator('[data-testid=health-map] [data-resource="host:web-1"]')
    node.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=health-map] [data-resource=\"host:web-1\"]')"
        "?.dataset.health === 'healthy'",
        timeout=30_000,
    )
    assert "healthy" in (node.text_content() or "")
    # keyboard: focus the node and select it with Enter
    node.focus()
    page.keyboard.press("Enter")
    assert node.get_attribute("aria-pressed") == "true"
    assert "all" in page.get_by_test_id("map-reason").inner_text()
    # memory fills up: 99 % used is critical (built-in rule, critical at 95 %)
    write_series(
        server.url,
        [
            TimeSeries(
                [("__name__", "node_memory_MemAvailable_bytes"), ("instance", "web-1"), ("job", "node")],
                [(now_ms(), 10.0)],
            )
        ],
    )
    page.wait_for_function(
        "() => document.querySelector('[data-testid=health-map] [data-resource=\"host:web-1\"]')"
        "?.dataset.health === 'critical'",
        timeout=45_000,
    )
    assert "critical" in (node.text_content() or "")
    reason = page.get_by_test_id("map-reason").inner_text()
    assert "memory_usage is 99" in reason, reason
    assert "memory_usage" in page.get_by_test_id("map-detail").get_by_test_id("signals").inner_text()
    assert "critical" in page.get_by_test_id("health-summary").inner_text()
    tab.screenshot("health-map-light")
    # the overview's health summary counts it too (no alert fires on this server)
    page.goto(f"{server.url}/ui/overview")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=health] .health-text')?.textContent === 'Critical'"
    )
    assert "resources: 1 critical" in page.get_by_test_id("health").inner_text()
    assert_clean(tab)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(
    "path,ready",
    [
        ("/ui/infrastructure", "[data-testid=resources]"),
        ("/ui/infrastructure/host%3Aweb-1", "[data-testid=signals]"),
        ("/ui/health", "[data-testid=health-map] [data-resource]"),
    ],
)
def test_infrastructure_pages_have_no_serious_accessibility_violations(
    server: Proc, browser: Any, path: str, ready: str, scheme: str
) -> None:
    tab = open_tab(browser, f"{server.url}{path}", scheme=scheme)
    tab.page.locator(ready).first.wait_for()
    violations = tab.axe_violations()
    tab.screenshot(f"{path.strip('/').replace('/', '-').replace('%3A', '-')}-{scheme}-axe")
    assert violations == []
    assert_clean(tab)


def test_infrastructure_by_keyboard(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/infrastructure")
    page = tab.page
    page.locator('[data-testid=resources] tr[data-resource="host:web-1"]').wait_for()
    page.get_by_label("Kind").focus()
    for _ in range(20):  # Tab through the filters to the first resource link
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('[data-testid=resources]') !== null"):
            break
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") not in ("none", "")
    name = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=re.compile(f"(Host|Container|Service) {re.escape(name)}")).wait_for()
    # a metric view opens with the keyboard (summary elements take Enter)
    page.get_by_test_id("view-cpu").locator("summary").focus()
    page.keyboard.press("Enter")
    assert page.get_by_test_id("view-cpu").get_attribute("open") is not None
    assert_clean(tab)
