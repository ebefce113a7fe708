"""GIL-stall watchdog for ``bench/gil_stalls.py``: imported by any Python started with this
directory on ``PYTHONPATH``, it does nothing unless ``GIL_WATCHDOG`` names an output file.

Then a daemon thread sleeps ``GIL_WATCHDOG_SLEEP_US`` (200) in a loop and times each
wake-up. Between wake-ups it reads every Python thread's CPU clock; when a wake-up is later than
``GIL_WATCHDOG_THRESHOLD_US`` (1,000), it records the delay, how much of it the watchdog
spent runnable but not running (its own ``/proc/thread-self/schedstat``: waiting for a core, not
for the GIL), which threads used CPU meanwhile, and the stack of the thread that used the most
(it just let the GIL go: its innermost frame is the line right after the call that held it). The
records are aggregated by call site and written as JSON to the output file every 2 s and at exit.
Not part of the product: it only lives under ``bench/``.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time

_OUT = os.environ.pop("GIL_WATCHDOG", None)  # popped: processes it starts stay unwatched


def _site(frame: object) -> str:
    code = frame.f_code  # type: ignore[attr-defined]
    fn = code.co_filename
    i = fn.find("clearsight/")
    if i >= 0:
        fn = fn[i:]
    else:
        for marker in ("site-packages/", "lib/python"):
            j = fn.find(marker)
            if j >= 0:
                fn = fn[j + len(marker):]
                break
    return f"{fn}:{frame.f_lineno} {code.co_name}"  # type: ignore[attr-defined]


def _stack_key(frame: object) -> tuple[str, str]:
    """(innermost site, innermost clearsight site) of a stack."""
    inner = _site(frame)
    f = frame
    while f is not None:
        if "clearsight/" in f.f_code.co_filename:  # type: ignore[attr-defined]
            return inner, _site(f)
        f = f.f_back  # type: ignore[attr-defined]
    return inner, ""


class _Watchdog:
    def __init__(self, out: str) -> None:
        self.out = out
        self.sleep = int(os.environ.pop("GIL_WATCHDOG_SLEEP_US", "200")) / 1e6
        self.threshold = int(os.environ.pop("GIL_WATCHDOG_THRESHOLD_US", "1000")) / 1e6
        self.lock = threading.Lock()
        # (site, clearsight site, thread name) -> [count, total late s, max late s, culprit cpu s]
        self.sites: dict[tuple[str, str, str], list[float]] = {}
        self.events: list[tuple[float, float, float, str, str, str, float]] = []
        self.wakes = 0
        self.late_total = 0.0
        self.runq_total = 0.0
        self.started = time.monotonic()

    def run(self) -> None:
        me = threading.get_ident()
        sched = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        clocks: dict[int, tuple[int, str]] = {}
        cpu: dict[int, float] = {}
        refresh = 0.0
        last_dump = time.monotonic()

        def runq() -> float:
            return int(os.pread(sched, 128, 0).split()[1]) / 1e9

        rq = runq()
        while True:
            now = time.monotonic()
            if now - refresh > 0.5:
                refresh = now
                clocks = {}
                for t in threading.enumerate():
                    if t.ident is None or t.ident == me:
                        continue
                    try:
                        clocks[t.ident] = (time.pthread_getcpuclockid(t.ident), t.name)
                    except OSError:
                        pass
                cpu = {k: cpu.get(k, 0.0) for k in clocks}
            if now - last_dump > 2.0:
                last_dump = now
                self.dump()
            t0 = time.perf_counter()
            time.sleep(self.sleep)
            late = time.perf_counter() - t0 - self.sleep
            self.wakes += 1
            new = {}
            for ident, (clk, _name) in clocks.items():
                try:
                    new[ident] = time.clock_gettime(clk)
                except OSError:
                    new[ident] = cpu.get(ident, 0.0)
            rq2 = runq()
            if late > self.threshold:
                waited = rq2 - rq
                frames = sys._current_frames()
                used = sorted(((new[i] - cpu.get(i, new[i]), i) for i in new), reverse=True)
                du, culprit = used[0] if used else (0.0, 0)
                name = clocks.get(culprit, (0, "?"))[1]
                frame = frames.get(culprit)
                inner, cs = _stack_key(frame) if frame is not None else ("<no frame>", "")
                others = ",".join(f"{clocks[i][1]}:{d * 1e3:.1f}" for d, i in used[1:3] if d > 1e-4)
                with self.lock:
                    self.late_total += late
                    self.runq_total += waited
                    rec = self.sites.setdefault((inner, cs, name), [0, 0.0, 0.0, 0.0, 0.0])
                    rec[0] += 1
                    rec[1] += late
                    rec[2] = max(rec[2], late)
                    rec[3] += du
                    rec[4] += waited
                    if len(self.events) < 200_000:
                        self.events.append((time.monotonic(), late, waited, name, inner, cs + " | " + others, du))
            cpu = new
            rq = rq2

    def dump(self) -> None:
        with self.lock:
            data = {"wakes": self.wakes, "late_total": self.late_total, "runq_total": self.runq_total,
                    "sleep": self.sleep, "threshold": self.threshold, "started": self.started,
                    "sites": [[*k, *v] for k, v in self.sites.items()], "events": self.events}
        tmp = f"{self.out}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.out)


if _OUT:
    _wd = _Watchdog(_OUT)
    threading.Thread(target=_wd.run, name="gil-watchdog", daemon=True).start()
    atexit.register(_wd.dump)
