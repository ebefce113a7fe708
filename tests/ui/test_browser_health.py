"""The health map as a graph and the correlation timeline in a real browser against a real server: a host
and its container from an agent heartbeat, services discovered from remote-written metrics (`up` of a
node_exporter on the host, an OTLP-style `target_info` of a service in the container), drawn as layered
nodes joined by "runs on" edges; the host turns critical with its reason when its memory fills; the
keyboard moves along the edges with visible focus; a change event followed by a CPU rise becomes a
correlation placed on the timeline at its time, with its details on focus in the browser's time zone;
axe-core in both themes; screenshots in build/ui-screenshots/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from clearsight.ingest.prompb_encode import TimeSeries
from tests.integration.test_health_server import _gauge, _idle_counter
from tests.support.peers import Proc, start_clearsight
from tests.ui.conftest import Tab, host_series, now_ms, open_tab, write_series
from tests.ui.test_browser_infra import CONTAINER, heartbeat

CONFIG = """health:
  evaluation_interval: 1s
resources:
  discovery_interval: 1s
correlation:
  interval: 1s
"""
STEP = 15_000
GRAPH = "[data-testid=health-graph]"
TZ = "Europe/Berlin"  # the browser's (tests/ui/conftest.py open_tab)


def node(rid: str) -> str:
    return f'{GRAPH} [data-resource="{rid}"]'


def wait_data(fn: Any, timeout: float = 60) -> Any:  # a guard against hanging, not a timing assertion
    deadline = time.monotonic() + timeout
    while not (v := fn()) and time.monotonic() < deadline:
        time.sleep(0.25)
    return v


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    work: Path = tmp_path_factory.mktemp("ui-health")
    proc = start_clearsight(work, config_yaml=CONFIG)
    try:
        now = now_ms()
        write_series(proc.url, host_series("web-1", now))
        heartbeat(proc.url)  # host:web-1 with container nginx (its parent)
        write_series(proc.url, [
            _gauge("up", 1, now - 60_000, now, instance="web-1:9100", job="node"),  # node_exporter on web-1
            _gauge("target_info", 1, now - 60_000, now, instance="checkout-1", job="checkout", host_name="web-1",
                   container_id=CONTAINER, container_name="nginx"),  # a service in the container
        ])
        yield proc
    finally:
        proc.stop()


_CPU_RISE: dict[str, int] = {}


def seed_cpu_rise(url: str) -> int:
    """host:i-123 (heartbeat) whose CPU is 12 % busy for an hour, then 95 % from two minutes after
    ``te`` (eight minutes ago); once per server. Returns ``te``, when the change is said to happen."""
    if url not in _CPU_RISE:
        now = now_ms() // STEP * STEP
        te = now - 8 * 60_000
        r = httpx.post(f"{url}/api/v1/resources/heartbeat", json={"id": "host:i-123", "kind": "host",
                                                                  "hostname": "i-123"}, timeout=10)
        assert r.status_code == 200, r.text
        write_series(url, [_idle_counter("i-123", te - 66 * 60_000, now,
                                         lambda t: 0.95 if t >= te + 2 * 60_000 else 0.12)])
        _CPU_RISE[url] = te
    return _CPU_RISE[url]


def post_change(url: str, te: int) -> list[dict[str, Any]]:
    """The change on i-123 at ``te`` (the same event id each time: the correlator examines it once);
    waits for its correlation and returns the correlations of host:i-123."""
    change = {"id": "chg-ui-1", "type": "change", "message": "sg-123 opened port 22", "origin": "terraform",
              "timestamp": te * 1_000_000, "resource": {"host.name": "i-123"}}
    assert httpx.post(f"{url}/api/v1/events", json=change, timeout=10).status_code == 200
    corrs: list[dict[str, Any]] = wait_data(lambda: httpx.get(
        f"{url}/api/v1/correlations", params={"resource": "host:i-123"}, timeout=10).json()["data"]["correlations"])
    return corrs


def box(tab: Tab, selector: str) -> dict[str, float]:
    b = tab.page.locator(selector).bounding_box()
    assert b is not None, selector
    return dict(b)


def assert_clean(tab: Tab) -> None:
    assert tab.console_errors() == []


def test_graph_edges_critical_reason_and_keyboard(server: Proc, browser: Any) -> None:
    tab = open_tab(browser, f"{server.url}/ui/health")
    page = tab.page
    heartbeat(server.url)  # keeps the host live (heartbeat interval) while the test runs
    host, ctr = "host:web-1", f"container:{CONTAINER}"
    for rid in (host, ctr, "service:node", "service:checkout"):
        page.locator(node(rid)).wait_for(timeout=45_000)
    # edges: the container runs on the host, node_exporter on the host, checkout in the container
    edges = {(e["s"], e["t"]) for e in page.eval_on_selector_all(
        f"{GRAPH} path.graph-edge", "els => els.map(e => ({s: e.dataset.source, t: e.dataset.target}))")}
    assert edges == {(ctr, host), ("service:node", host), ("service:checkout", ctr)}
    # drawn in layers (hosts, containers, services) and each edge joins its two boxes
    hb, cb, sb, eb = page.evaluate(  # measured at once (a refresh may re-render between separate calls)
        "sels => sels.map(s => { const r = document.querySelector(s).getBoundingClientRect();"
        " return {left: r.left, right: r.right}; })",
        [f"{node(r)} .gnode-box" for r in (host, ctr, "service:checkout")]
        + [f'{GRAPH} path[data-source="{ctr}"][data-target="{host}"]'])
    assert hb["right"] < cb["left"] and cb["right"] < sb["left"]
    assert abs(eb["left"] - hb["right"]) < 1 and abs(eb["right"] - cb["left"]) < 1

    # no edge crosses a node other than its two ends (service:node -> host passes the container column)
    crossings = page.evaluate("""() => {
      const nodes = [...document.querySelectorAll('[data-testid=health-graph] .gnode')];
      const out = [];
      for (const p of document.querySelectorAll('[data-testid=health-graph] path.graph-edge')) {
        const m = p.getScreenCTM(), len = p.getTotalLength();
        const boxes = nodes.filter(g => g.dataset.resource !== p.dataset.source && g.dataset.resource !== p.dataset.target)
          .map(g => [g.dataset.resource, g.querySelector('.gnode-box').getBoundingClientRect()]);
        for (let i = 0; i <= 200; i++) {
          const pt = p.getPointAtLength(len * i / 200).matrixTransform(m);
          for (const [id, b] of boxes)
            if (pt.x > b.left && pt.x < b.right && pt.y > b.top && pt.y < b.bottom) out.push([p.dataset.source, id]);
        }
      }
      return out;
    }""")
    assert crossings == []
    page.wait_for_function(f"() => document.querySelector('{node(host)}')?.dataset.health === 'healthy'",
                           timeout=30_000)
    assert "healthy" in (page.locator(node(host)).text_content() or "")
    # memory fills up: 99 % used is critical (built-in rule, critical at 95 %)
    write_series(server.url, [TimeSeries(
        [("__name__", "node_memory_MemAvailable_bytes"), ("instance", "web-1"), ("job", "node")],
        [(now_ms(), 10.0)])])
    page.wait_for_function(f"() => document.querySelector('{node(host)}')?.dataset.health === 'critical'",
                           timeout=45_000)
    hn = page.locator(node(host))
    assert "✖ critical" in (hn.text_content() or "")  # icon and word, not colour alone
    assert "memory_usage is 99" in (hn.get_attribute("aria-label") or "")
    assert "critical" in page.get_by_test_id("health-summary").inner_text()

    # keyboard: Tab into the graph (one node in the tab order), focus selects, arrows follow the edges
    page.get_by_role("heading", name="Health map").click()
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('gnode')"):
            break
    # the tab stop is the first host by name (host:i-123 when another test of this module added it)
    assert page.evaluate("document.activeElement.dataset.resource").startswith("host:")
    for _ in range(3):
        if page.evaluate("document.activeElement.dataset.resource") == host:
            break
        page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.resource") == host
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") not in ("none", "")
    assert page.locator(node(host)).get_attribute("aria-pressed") == "true"
    reason = page.get_by_test_id("map-reason").inner_text()
    assert "memory_usage is 99" in reason, reason
    assert "memory_usage" in page.get_by_test_id("map-detail").get_by_test_id("signals").inner_text()
    here = page.get_by_test_id("running-here").inner_text()
    assert "container nginx" in here and "service node" in here
    tab.screenshot("health-graph-critical-light")
    page.keyboard.press("ArrowRight")  # to what runs on the host: its container (first row)
    assert page.evaluate("document.activeElement.dataset.resource") == ctr
    page.get_by_role("heading", name="container nginx").wait_for()
    assert "host web-1" in page.get_by_test_id("runs-on").inner_text()
    page.keyboard.press("ArrowRight")  # to the service in the container
    assert page.evaluate("document.activeElement.dataset.resource") == "service:checkout"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.dataset.resource") == host
    page.keyboard.press("ArrowDown")  # web-1 is the last host of the column: focus stays
    assert page.evaluate("document.activeElement.dataset.resource") == host
    assert_clean(tab)


def test_correlation_on_the_timeline(server: Proc, browser: Any) -> None:
    te = seed_cpu_rise(server.url)  # a change on i-123 at te; its CPU rises from 12 % to 95 % two minutes later
    tab = open_tab(browser, f"{server.url}/ui/health")
    page = tab.page
    page.locator(node("host:i-123")).wait_for(timeout=45_000)
    corrs = post_change(server.url, te)
    assert len(corrs) == 1, corrs
    at_ms = int(corrs[0]["timestamp_ns"]) // 1_000_000
    assert te < at_ms <= te + 5 * 60_000  # the anomaly began inside the change's window
    # the page picks it up at its next refresh (every 15 s; at once if another test of this module
    # made the correlation first)
    mark = page.locator(f'[data-testid=timeline] .tl-mark[data-id="{corrs[0]["id"]}"]')
    mark.wait_for(timeout=45_000)
    assert page.locator("[data-testid=timeline] .tl-row").get_attribute("data-row") == "host:i-123"
    assert "host:i-123" in (page.locator("[data-testid=timeline] .tl-label").text_content() or "")
    # placed at its time on the axis: diamond at the anomaly's start, ring at the change; on the last 24 h,
    # then on the last hour, where the two minutes between them are apart on screen
    plot = page.get_by_test_id("timeline-plot")
    for label, span in (("24 h", 86400_000), ("1 h", 3600_000)):
        page.get_by_role("group", name="Correlation time range").get_by_role("button", name=label).click()
        page.wait_for_function("span => { const p = document.querySelector('[data-testid=timeline-plot]');"
                               " return p && p.dataset.endMs - p.dataset.startMs === span; }", arg=span)
        assert page.get_by_role("heading", name=f"Correlations (last {label})").is_visible()
        start, end = (int(plot.get_attribute(a) or "0") for a in ("data-start-ms", "data-end-ms"))
        assert start <= te < at_ms <= end
        pb = box(tab, "[data-testid=timeline-plot]")
        centre = {}
        for selector, t in (("timeline-anomaly", at_ms), ("timeline-cause", te)):
            b = box(tab, f'[data-testid=timeline] .tl-mark[data-id="{corrs[0]["id"]}"] [data-testid={selector}]')
            centre[selector] = b["x"] + b["width"] / 2
            expected = pb["x"] + (t - start) / (end - start) * pb["width"]
            assert abs(centre[selector] - expected) < 1.5, (label, selector, b, expected)
    assert centre["timeline-anomaly"] - centre["timeline-cause"] > 10  # the last hour: 2 min are visible
    # keyboard focus (Tab from the range buttons) shows the details; the time in the browser's zone, UTC on hover
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.id") == corrs[0]["id"]
    detail = page.get_by_test_id("correlation-detail")
    assert detail.get_attribute("data-id") == corrs[0]["id"]
    text = detail.inner_text()
    assert "cpu_usage on host:i-123 rose from 12% to 95%" in text and "sg-123 opened port 22" in text
    first = detail.locator("time").first
    local = datetime.fromtimestamp(at_ms / 1000, ZoneInfo(TZ)).strftime("%Y-%m-%d %H:%M:%S")
    utc = datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert (first.inner_text(), first.get_attribute("title")) == (local, utc)
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") not in ("none", "")
    # the resource's own panel lists it too
    page.locator(node("host:i-123")).click()
    assert "cpu_usage on host:i-123 rose" in page.get_by_test_id("node-correlations").inner_text()
    tab.screenshot("health-correlation-timeline-light")
    assert_clean(tab)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_health_map_has_no_serious_accessibility_violations(server: Proc, browser: Any, scheme: str) -> None:
    assert post_change(server.url, seed_cpu_rise(server.url))  # a correlation on the timeline
    tab = open_tab(browser, f"{server.url}/ui/health", scheme=scheme)
    tab.page.locator(node("host:web-1")).wait_for(timeout=45_000)
    tab.page.locator(node("host:web-1")).focus()  # the detail panel with its signals
    tab.page.get_by_test_id("map-detail").get_by_test_id("signals").wait_for()
    tab.page.locator("[data-testid=timeline] .tl-mark").first.focus()  # the correlation's details
    tab.page.get_by_test_id("correlation-detail").wait_for()
    violations = tab.axe_violations()
    tab.screenshot(f"health-graph-{scheme}-axe")
    assert violations == []
    assert_clean(tab)
