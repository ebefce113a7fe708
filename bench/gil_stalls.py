"""Which calls hold the GIL long enough to delay a write? ``bench/governance.py ingest`` with a
watchdog thread inside the server (``bench/gil_site/sitecustomize.py``, on the server's
``PYTHONPATH`` only, enabled by ``GIL_WATCHDOG``; nothing in the product changes).

The watchdog sleeps ``--sleep-us`` (200) in a loop; a wake-up later than ``--threshold-us``
(1,000) is a stall. For each stall it notes how much of the delay it spent waiting for a core
(its own run-queue time: that part is CPU, not the GIL), which thread used the most CPU meanwhile
(the GIL's holder) and that thread's stack when the watchdog got the GIL back: the innermost
frame is the line of the call that held the GIL (a C call, a Cython kernel or a numpy function
is invisible itself; its Python caller's line names it). Stalls are split into the loaded phases
(query clients running) and the rest, and the top call sites are printed with their count, total
("late ms") and max delay, the watchdog's own run-queue wait ("runq ms"), the holder's ("h.runq":
preempted while it held the GIL), what is left ("rest ms": the delay less the longer of the two
waits, at least 0: the holder running with the GIL, the likely long hold, or GIL hand-offs
between other threads) and the holder's CPU ("h.cpu"), ranked
by "rest ms". A site whose delay is mostly run-queue wait was running when other processes (or
the server's own threads) kept both cores busy: CPU, not a long GIL hold. The holder is a guess
(the thread that used the most CPU over the delay): a thread running without the GIL (a
``nogil`` kernel, a numpy call that lets it go) can use more than the one holding it.
``--events FILE`` keeps the raw records and the loaded phases; ``--report FILE`` prints a kept
file again without running anything.

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

import governance  # bench/governance.py, beside this file (on sys.path above)

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


def _rest(e: list | tuple) -> float:
    """A stall's delay less the longer of the watchdog's and the holder's run-queue waits (they
    overlap when both wait for a core at once), at least 0."""
    return max(0.0, e[1] - max(e[2], e[7]))


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
        hrq = sum(e[7] for e in evs)
        rest = [_rest(e) for e in evs]
        per_s = f", {len(evs) / span:.1f} stalls/s" if keep and span else ""
        print(f"\n{phase}: {len(evs):,} stalls{per_s}, {late * 1e3:.0f} ms late in all: the watchdog "
              f"waiting for a core {runq * 1e3:.0f} ms, the holder waiting for one {hrq * 1e3:.0f} ms, "
              f"the rest {sum(rest) * 1e3:.0f} ms ({sum(1 for r in rest if r > 0.002)} stalls with over 2 ms of it)")
        sites: dict[tuple[str, str, str], list[float]] = {}
        for _t, lt, rq, name, inner, cs, du, hrq in evs:
            key = (name.split("_")[0], inner, cs)
            r = sites.setdefault(key, [0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
            r[0] += 1
            r[1] += lt
            r[2] = max(r[2], lt)
            r[3] += rq
            r[4] += du
            r[5] += hrq
            r[6] += _rest((_t, lt, rq, name, inner, cs, du, hrq))
        rows = sorted(sites.items(), key=lambda kv: -kv[1][6])[:top]
        print(f"  {'count':>6} {'late ms':>8} {'max ms':>7} {'runq ms':>7} {'h.runq':>7} {'rest ms':>7} "
              f"{'h.cpu':>7}  holder: site [clearsight caller]")
        for (name, inner, cs), (n, tot, mx, rq, du, hrq, rst) in rows:
            caller = f"  [{cs}]" if cs and cs != inner else ""
            print(f"  {n:6d} {tot * 1e3:8.1f} {mx * 1e3:7.1f} {rq * 1e3:7.1f} {hrq * 1e3:7.1f} "
                  f"{rst * 1e3:7.1f} {du * 1e3:7.1f}  {name}: {inner}{caller}")


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
    ap.add_argument("--report", default=None, help="print the report of a file written with --events, and exit")
    args = ap.parse_args()
    if args.report:
        kept = json.loads(Path(args.report).read_text())
        report(kept, [tuple(w) for w in kept.get("loaded_windows", [])], args.top)
        return
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
            Path(args.events).write_text(json.dumps({**data, "loaded_windows": windows}))
        report(data, windows, args.top)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
