"""Which calls hold the GIL long enough to delay a write? ``bench/governance.py ingest`` with a
watchdog thread inside the server (``bench/gil_site/sitecustomize.py``, on the server's
``PYTHONPATH`` only, enabled by ``GIL_WATCHDOG``; nothing in the product changes).

The watchdog sleeps ``--sleep-us`` (200) in a loop; a wake-up later than ``--threshold-us``
(1,000) is a stall. For each stall it notes how much of the delay it spent waiting for a core
(its own run-queue time: that part is CPU, not the GIL), which thread used the most CPU meanwhile
(the GIL's holder) and that thread's stack when the watchdog got the GIL back: the innermost
frame is the line of the call that held the GIL (a C call, a Cython kernel or a numpy function
is invisible itself; its Python caller's line names it). Stalls are split into the loaded phases
(query clients running) and the rest, and the top call sites are printed with count, total and
max delay, the culprit's CPU over those delays and the watchdog's run-queue wait.

The watchdog takes the GIL every ``--sleep-us`` itself (as a write's hand-offs do), so the bench's
latencies under it are not comparable with governance.py's; use it for attribution only.

Usage (from the repository root):
  CLEARSIGHT_SHARED=/work/shared PYTHONPATH=src .venv/bin/python bench/gil_stalls.py \\
      --seconds 24 --rounds 4 [--threshold-us 1000] [--top 25] [--events out.json]
Every other option is governance.py ingest's (``--max-concurrency``, ``--env KEY=VALUE``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import governance  # noqa: E402  (bench/governance.py, beside this file)

SITE_DIR = Path(__file__).resolve().parent / "gil_site"


def loaded_windows() -> list[tuple[float, float]]:
    """Record the loaded phases (``time.monotonic``, the same clock as the server's watchdog): from
    ``QueryClients.start`` to the end of ``QueryClients.pause``."""
    windows: list[tuple[float, float]] = []
    start, pause = governance.QueryClients.start, governance.QueryClients.pause
    began: list[float] = []

    def start_(self: governance.QueryClients) -> None:
        began.append(time.monotonic())
        start(self)

    def pause_(self: governance.QueryClients) -> None:
        pause(self)
        windows.append((began.pop(), time.monotonic()))

    governance.QueryClients.start = start_  # type: ignore[method-assign]
    governance.QueryClients.pause = pause_  # type: ignore[method-assign]
    return windows


def report(data: dict, windows: list[tuple[float, float]], top: int) -> None:
    events = data["events"]

    def loaded(t: float) -> bool:
        return any(a <= t <= b for a, b in windows)

    span = sum(b - a for a, b in windows)
    print(f"\nwatchdog: {data['wakes']:,} wake-ups of {data['sleep'] * 1e6:.0f} us; stalls (> "
          f"{data['threshold'] * 1e3:g} ms late): {len(events):,}, {data['late_total']:.2f} s late in all, "
          f"{data['runq_total']:.2f} s of it waiting for a core")
    for phase, keep in (("loaded phases", True), ("elsewhere (idle phases, loading, start-up)", False)):
        evs = [e for e in events if loaded(e[0]) == keep]
        late = sum(e[1] for e in evs)
        runq = sum(e[2] for e in evs)
        per_s = f", {len(evs) / span:.1f} stalls/s" if keep and span else ""
        print(f"\n{phase}: {len(evs):,} stalls{per_s}, {late * 1e3:.0f} ms late in all "
              f"({runq * 1e3:.0f} ms waiting for a core)")
        sites: dict[tuple[str, str, str], list[float]] = {}
        for _t, lt, rq, name, inner, cs, du in evs:
            key = (name.split("_")[0], inner, cs.split(" | ")[0])
            r = sites.setdefault(key, [0, 0.0, 0.0, 0.0, 0.0])
            r[0] += 1
            r[1] += lt
            r[2] = max(r[2], lt)
            r[3] += du
            r[4] += rq
        rows = sorted(sites.items(), key=lambda kv: -kv[1][1])[:top]
        print(f"  {'count':>6} {'total ms':>9} {'max ms':>7} {'cpu ms':>7} {'runq ms':>7}  thread / site [clearsight caller]")
        for (name, inner, cs), (n, tot, mx, du, rq) in rows:
            caller = f"  [{cs}]" if cs and cs != inner else ""
            print(f"  {n:6d} {tot * 1e3:9.1f} {mx * 1e3:7.1f} {du * 1e3:7.1f} {rq * 1e3:7.1f}  {name}: {inner}{caller}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=500)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=24.0)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--max-concurrency", type=int, default=0)
    ap.add_argument("--switch-interval", type=float, default=None)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--write-pause-max", default=None)
    ap.add_argument("--client-nice", type=int, default=0)
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--threshold-us", type=int, default=1000)
    ap.add_argument("--sleep-us", type=int, default=200)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--events", default=None, help="also write the watchdog's raw JSON here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gil-stalls-"))
    out = tmp / "watchdog.json"
    pythonpath = os.pathsep.join([str(SITE_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    pythonpath = os.pathsep.join(str(Path(p).resolve()) for p in pythonpath.split(os.pathsep))
    args.env = [*args.env, f"PYTHONPATH={pythonpath}", f"GIL_WATCHDOG={out}",
                f"GIL_WATCHDOG_THRESHOLD_US={args.threshold_us}",
                f"GIL_WATCHDOG_SLEEP_US={args.sleep_us}"]
    windows = loaded_windows()
    try:
        governance.run_ingest(args)
        data = json.loads(out.read_text())
        if args.events:
            shutil.copy(out, args.events)
        report(data, windows, args.top)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
