"""Browser fixtures: Debian's Chromium driven by Playwright for Python (no `playwright install`),
a real Clearsight server on a free port, axe-core from web/node_modules, screenshots under
build/ui-screenshots/. A missing Chromium or an unbuilt UI is a failure, never a skip."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from clearsight.api.ui import DIST
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from tests.support.peers import REPO, PeerMissing, Proc, start_clearsight

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = REPO / "build" / "ui-screenshots"
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


def require_ui() -> None:
    if not (DIST / "index.html").is_file():
        raise AssertionError(f"the UI is not built ({DIST}): run `make setup` (npm ci + vite build in web/)")
    if not AXE.is_file():
        raise AssertionError(f"axe-core is missing ({AXE}): run `make setup` (npm ci in web/)")


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread while it
# is started, so a later non-UI test in the same xdist worker could not call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        raise PeerMissing(f"{CHROMIUM} is not installed: run `make peers` (apt-get install chromium)")
    require_ui()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@dataclass
class Tab:
    """A page plus the console errors and uncaught exceptions it produced."""

    page: Any
    errors: list[str] = field(default_factory=list)
    allowed: tuple[str, ...] = ()

    def console_errors(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]

    def screenshot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def axe_violations(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations on the current page (evaluated through the
        DevTools protocol, so the page's Content-Security-Policy stays in force)."""
        self.page.evaluate(AXE.read_text())
        result = self.page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                                    ".map(v => ({id: v.id, impact: v.impact, help: v.help, "
                                    "nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))")
        return [v for v in result if v["impact"] in ("serious", "critical")]


def open_tab(browser: Any, url: str, *, scheme: str = "light", allowed: tuple[str, ...] = ()) -> Tab:
    ctx = browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 900},
                              timezone_id="Europe/Berlin", locale="en-GB")
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    tab = Tab(page, allowed=allowed)

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            loc = msg.location.get("url", "") if isinstance(msg.location, dict) else ""
            tab.errors.append(f"{msg.text} ({loc})")

    page.on("console", on_console)
    page.on("pageerror", lambda e: tab.errors.append(f"uncaught: {e}"))
    page.goto(url)
    return tab


def write_series(base: str, series: list[TimeSeries], headers: dict[str, str] | None = None) -> None:
    r = httpx.post(f"{base}/api/v1/write", content=encode_snappy(WriteRequest(series)),
                   headers={**RW, **(headers or {})}, timeout=30)
    assert r.status_code == 204, r.text


def host_series(instance: str, now_ms: int, *, minutes: int = 10, mem_avail: float = 750.0) -> list[TimeSeries]:
    """node_exporter-style series for one host, a sample every 10 s up to ``now_ms``: CPU 50 % busy,
    memory 25 % used, fullest filesystem 60 %, 1 KiB/s received and 512 B/s sent."""
    ts = [now_ms - 10_000 * k for k in range(minutes * 6, -1, -1)]
    base = [("instance", instance), ("job", "node")]

    def s(name: str, extra: list[tuple[str, str]], f: Any) -> TimeSeries:
        return TimeSeries([("__name__", name), *extra, *base], [(t, float(f(i))) for i, t in enumerate(ts)])

    return [
        s("node_cpu_seconds_total", [("cpu", "0"), ("mode", "idle")], lambda i: 5.0 * i),
        s("node_cpu_seconds_total", [("cpu", "0"), ("mode", "user")], lambda i: 5.0 * i),
        s("node_memory_MemTotal_bytes", [], lambda i: 1000.0),
        s("node_memory_MemAvailable_bytes", [], lambda i: mem_avail),
        s("node_filesystem_size_bytes", [("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/")],
          lambda i: 100.0),
        s("node_filesystem_avail_bytes", [("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/")],
          lambda i: 40.0),
        s("node_network_receive_bytes_total", [("device", "eth0")], lambda i: 10240.0 * i),
        s("node_network_transmit_bytes_total", [("device", "eth0")], lambda i: 5120.0 * i),
    ]


def now_ms() -> int:
    return int(time.time() * 1000)


ADMIN_PASSWORD = "correct horse battery staple"
VIEWER_PASSWORD = "viewer pass phrase 4711"


def start_signed_in_server(work: Path, config_yaml: str = "") -> Proc:
    """A server with ``auth.anonymous: off``, the admin's password set, and a viewer ``vera``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARSIGHT_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        proc = start_clearsight(work, config_yaml='auth:\n  anonymous: "off"\n' + config_yaml)
    try:
        admin_call(proc.url, "POST", "/api/v1/admin/users", {"username": "vera", "password": VIEWER_PASSWORD, "role": "viewer"})
    except BaseException:
        proc.stop()
        raise
    return proc


def admin_call(base: str, method: str, path: str, body: Any = None) -> Any:
    """``method path`` as the admin; asserts a 2xx answer and returns its JSON."""
    token = login_token(base, "admin", ADMIN_PASSWORD)
    r = httpx.request(method, f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, json=body, timeout=30)
    assert r.is_success, r.text
    return r.json()


def login_token(base: str, user: str, password: str) -> str:
    r = httpx.post(f"{base}/api/v1/auth/login", json={"username": user, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["token"])


def signed_in_tab(browser: Any, base: str, path: str, user: str, password: str, scheme: str = "light") -> Tab:
    """A tab whose browser context holds a session of ``user`` (cookies set by the login request)."""
    tab = open_tab(browser, f"{base}/ui/", scheme=scheme, allowed=("status of 401",))
    r = tab.page.request.post(f"{base}/api/v1/auth/login", data={"username": user, "password": password})
    assert r.status == 200, r.text()
    tab.page.goto(f"{base}{path}")
    tab.page.get_by_test_id("user").wait_for()
    return tab
