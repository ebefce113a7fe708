"""The web UI in Chromium (Playwright + /usr/bin/chromium): time to the overview's first meaningful
render, uPlot render time for 10k and 100k points, and the page's JS heap over a stretch of live
updates. Not a test: prints figures (docs/ui.md keeps the latest).

    .venv/bin/python bench/ui.py [--runs 5] [--minutes 1]

- first meaningful render: from navigation start to the hosts table showing a value pushed over
  /ws/metrics (the overview's first useful content), median of ``--runs`` fresh browser contexts;
  also First Contentful Paint;
- uPlot: one series of N points drawn into an 800x300 canvas, from ``new uPlot`` to its ``draw``
  hook, cold (first chart in a fresh page) and warm (median of 5 more);
- memory: JSHeapUsedSize (Chrome DevTools) after a forced garbage collection, every minute of
  ``--minutes`` of live updates (1 tick/s, a new sample written every 10 s), and the growth from the
  2nd minute to the last (the first minute holds the page's start-up).

- logs explorer with 5,000 lines (one query, the windowed list): from navigation to the list
  rendered (the first row and the "5000+ lines" count in the page), the rows actually in the DOM,
  and the longest frame while scrolling the list from top to bottom in 60 animation frames (jank
  shows as long frames);

``--heap-only`` skips the render and uPlot figures (for the 30-minute memory run:
``--heap-only --minutes 30``); ``--logs-only`` prints only the logs explorer figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.peers import start_clearsight  # noqa: E402
from tests.ui.conftest import CHROMIUM, FLAGS, host_series, now_ms, require_ui, write_series  # noqa: E402

UPLOT = REPO / "web" / "node_modules" / "uplot" / "dist" / "uPlot.iife.min.js"
FIRST_VALUE = (
    "() => { const c = document.querySelector('tr[data-host] td[data-panel=memory]');"
    " return c && c.textContent !== '\u2013' ? performance.now() : false }"
)
UPLOT_RUN = """async (n) => {
  const el = document.createElement('div'); document.body.appendChild(el);
  const x = new Float64Array(n), y = new Float64Array(n);
  for (let i = 0; i < n; i++) { x[i] = 1.7e9 + i; y[i] = Math.sin(i / 50) * 100 + Math.random() * 10; }
  let t1 = 0;
  const t0 = performance.now();
  const u = new uPlot({width: 800, height: 300, series: [{}, {stroke: 'red'}],
                       hooks: {draw: [() => { t1 = performance.now(); }]}}, [x, y], el);
  await new Promise(r => setTimeout(r, 0));
  while (!t1) await new Promise(r => requestAnimationFrame(r));
  u.destroy(); el.remove();
  return t1 - t0;
}"""


def first_render(browser: Any, url: str, runs: int) -> tuple[list[float], list[float]]:
    fmr, fcp = [], []
    for _ in range(runs):
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(url)
        fmr.append(float(page.wait_for_function(FIRST_VALUE, polling="raf", timeout=30_000).json_value()))
        fcp.append(
            float(
                page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN")
            )
        )
        ctx.close()
    return fmr, fcp


def uplot_times(browser: Any, n: int) -> tuple[float, list[float]]:
    ctx = browser.new_context()
    page = ctx.new_page()
    page.set_content("<!doctype html><html><body></body></html>")
    page.evaluate(UPLOT.read_text())
    cold = float(page.evaluate(UPLOT_RUN, n))
    warm = [float(page.evaluate(UPLOT_RUN, n)) for _ in range(5)]
    ctx.close()
    return cold, warm


def heap_over_time(browser: Any, url: str, base: str, minutes: float) -> list[tuple[float, float]]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(url)
    page.wait_for_function(FIRST_VALUE, timeout=30_000)
    out = []
    t0 = time.monotonic()
    end = t0 + minutes * 60
    next_mark = t0
    while True:
        now = time.monotonic()
        if now >= next_mark:
            cdp.send("HeapProfiler.collectGarbage")
            m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
            out.append(((now - t0) / 60, m["JSHeapUsedSize"] / 2**20))
            next_mark = now + 60
        if now >= end:
            break
        write_series(base, host_series("web-1", now_ms(), minutes=0))  # a fresh sample each 10 s
        page.wait_for_timeout(10_000)
    ctx.close()
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--heap-only", action="store_true")
    ap.add_argument("--logs-only", action="store_true", help="only the logs explorer figures")
    args, _ = ap.parse_known_args(argv)
    require_ui()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        proc = start_clearsight(Path(tmp))
        try:
            write_series(proc.url, host_series("web-1", now_ms()))
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
                if args.logs_only:
                    logs_figures(browser, proc.url, args.runs)
                    browser.close()
                    return 0
                if not args.heap_only:
                    render_figures(browser, proc.url, args.runs)
                heap = heap_over_time(browser, f"{proc.url}/", proc.url, args.minutes)
                print(
                    "overview JS heap after GC (minute: MiB): "
                    + ", ".join(f"{m:.0f}: {v:.1f}" for m, v in heap)
                )
                if len(heap) >= 3:
                    steady = [v for _, v in heap[1:]]
                    print(
                        f"heap growth from minute {heap[1][0]:.0f} to {heap[-1][0]:.0f}: "
                        f"{steady[-1] - steady[0]:+.2f} MiB (min {min(steady):.1f}, max {max(steady):.1f} MiB)"
                    )
                browser.close()
        finally:
            proc.stop()
    return 0


SCROLL = """async () => {
  const box = document.querySelector('[data-testid=log-scroll]');
  const frames = []; let last = performance.now();
  const max = box.scrollHeight - box.clientHeight;
  for (let i = 1; i <= 60; i++) {
    box.scrollTop = max * i / 60;
    await new Promise(r => requestAnimationFrame(r));
    const now = performance.now(); frames.push(now - last); last = now;
  }
  frames.sort((a, b) => a - b);
  return {max: frames[frames.length - 1], median: frames[30]};
}"""


LOG_LINES = 5000
LIST_SHOWN = (
    "() => { const row = document.querySelector('[data-testid=log-lines] li.logrow');"
    " const count = [...document.querySelectorAll('p.muted')].some(p => p.textContent === '5000+ lines');"
    " return row && count ? performance.now() : false }"
)


def logs_figures(browser: Any, base: str, runs: int) -> None:
    now = time.time_ns()
    values = [
        [str(now - (LOG_LINES - i) * 1_000_000), f"request {i} served in {i % 97} ms path=/api/item/{i}"]
        for i in range(LOG_LINES)
    ]
    r = httpx.post(
        f"{base}/loki/api/v1/push",
        json={"streams": [{"stream": {"job": "bench", "level": "info"}, "values": values}]},
        timeout=30,
    )
    assert r.status_code == 204, r.text
    shown, frames, in_dom = [], [], []
    for _ in range(runs):
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(f"{base}/ui/logs?q=%7Bjob%3D%22bench%22%7D&range=1h")
        shown.append(float(page.wait_for_function(LIST_SHOWN, polling="raf", timeout=60_000).json_value()))
        in_dom.append(int(page.evaluate("document.querySelectorAll('li.logrow').length")))
        frames.append(page.evaluate(SCROLL))
        ctx.close()
    print(
        f"logs explorer, {LOG_LINES:,} lines: list rendered after median {statistics.median(shown):.0f} ms "
        f"(min {min(shown):.0f}, max {max(shown):.0f}; {max(in_dom)} rows in the DOM); scrolling: longest frame "
        f"median {statistics.median(f['max'] for f in frames):.0f} ms, median frame "
        f"{statistics.median(f['median'] for f in frames):.0f} ms"
    )


def render_figures(browser: Any, base: str, runs: int) -> None:
    fmr, fcp = first_render(browser, f"{base}/", runs)
    print(
        f"overview first meaningful render (live value in the hosts table): median "
        f"{statistics.median(fmr):.0f} ms (min {min(fmr):.0f}, max {max(fmr):.0f}, {runs} runs); "
        f"first contentful paint median {statistics.median(fcp):.0f} ms"
    )
    for n in (10_000, 100_000):
        cold, warm = uplot_times(browser, n)
        print(f"uPlot {n:>7,} points: cold {cold:.1f} ms, warm median {statistics.median(warm):.1f} ms")
    logs_figures(browser, base, runs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
