"""GIL-stall watchdog for ``bench/gil_stalls.py``: imported by any Python started with this
directory on ``PYTHONPATH``, it does nothing unless ``GIL_WATCHDOG`` names an output file.

Then a daemon thread sleeps ``GIL_WATCHDOG_SLEEP_US`` (200) in a loop and times each
wake-up. At every wake-up it reads the CPU and run-queue time (``/proc/self/task/<tid>/schedstat``)
of the threads whose names start with one of ``GIL_WATCHDOG_THREADS`` (``MainThread,clearsight-``);
when a wake-up is later than ``GIL_WATCHDOG_THRESHOLD_US`` (1,000), it records the delay, how much
of it the watchdog itself spent runnable but not running (waiting for a core, not for the GIL),
the thread that used the most CPU meanwhile (the likely GIL holder), that thread's own run-queue
wait (a holder preempted with the GIL held: CPU again) and its stack (its innermost frame is the
line right after the call that held the GIL, or where it runs without it). The records are
written as JSON to the output file every 2 s and at exit.
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
        # the threads watched (name prefixes): their CPU and run-queue time read at every wake-up
        self.prefixes = tuple(os.environ.pop("GIL_WATCHDOG_THREADS", "MainThread,clearsight-").split(","))
        self.lock = threading.Lock()
        # per stall: (monotonic, late s, own run-queue s, culprit's name, its innermost site, its
        # innermost clearsight site, its CPU s, its run-queue s)
        self.events: list[tuple[float, float, float, str, str, str, float, float]] = []
        self.wakes = 0
        self.late_total = 0.0
        self.runq_total = 0.0
        self.started = time.monotonic()

    def run(self) -> None:
        me = threading.get_ident()
        own = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        fds: dict[int, tuple[int, str]] = {}  # native id -> (schedstat fd, thread name)
        prev: dict[int, tuple[int, int]] = {}
        refresh = 0.0
        last_dump = time.monotonic()

        def stat(fd: int) -> tuple[int, int]:
            f = os.pread(fd, 128, 0).split()
            return int(f[0]), int(f[1])  # ns on a CPU, ns runnable but waiting for one

        rq = stat(own)[1]
        while True:
            now = time.monotonic()
            if now - refresh > 0.5:
                refresh = now
                alive = {t.native_id: t.name for t in threading.enumerate()
                         if t.ident != me and t.native_id is not None and t.name.startswith(self.prefixes)}
                for tid in [t for t in fds if t not in alive]:
                    os.close(fds.pop(tid)[0])
                    prev.pop(tid, None)
                for tid, name in alive.items():
                    if tid not in fds:
                        try:
                            fds[tid] = (os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY), name)
                        except OSError:
                            pass
            if now - last_dump > 2.0:
                last_dump = now
                self.dump()
            t0 = time.perf_counter()
            time.sleep(self.sleep)
            late = time.perf_counter() - t0 - self.sleep
            self.wakes += 1
            new: dict[int, tuple[int, int]] = {}
            for tid, (fd, _name) in fds.items():
                try:
                    new[tid] = stat(fd)
                except OSError:
                    pass
            rq2 = stat(own)[1]
            if late > self.threshold:
                waited = (rq2 - rq) / 1e9
                frames = sys._current_frames()
                used = sorted((((v[0] - prev[t][0]) / 1e9, (v[1] - prev[t][1]) / 1e9, t)
                               for t, v in new.items() if t in prev), reverse=True)
                du, held_rq, culprit = used[0] if used else (0.0, 0.0, 0)
                name = fds[culprit][1] if culprit in fds else "?"
                ident = next((t.ident for t in threading.enumerate() if t.native_id == culprit), None)
                frame = frames.get(ident) if ident is not None else None
                inner, cs = _stack_key(frame) if frame is not None else ("<no frame>", "")
                with self.lock:
                    self.late_total += late
                    self.runq_total += waited
                    if len(self.events) < 200_000:
                        self.events.append((time.monotonic(), late, waited, name, inner, cs, du, held_rq))
            prev = new
            rq = rq2

    def dump(self) -> None:
        with self.lock:
            data = {"wakes": self.wakes, "late_total": self.late_total, "runq_total": self.runq_total,
                    "sleep": self.sleep, "threshold": self.threshold, "started": self.started,
                    "events": self.events}
        tmp = f"{self.out}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.out)


if _OUT:
    _wd = _Watchdog(_OUT)
    threading.Thread(target=_wd.run, name="gil-watchdog", daemon=True).start()
    atexit.register(_wd.dump)
