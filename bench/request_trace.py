"""Where a small query's latency goes, from the kernel's own clock: the client's send, the server
thread's wake-up, its read, its processing, its write, and the client's receive.

Clearsight and Prometheus 2.42 are fed the data of bench/small_queries.py; one raw-socket client
sends the query to each server in turn, one request at a time (as bench/small_queries.py does:
each server sleeps while the other answers), while the kernel's tracer (tracefs,
``raw_syscalls`` and ``sched`` events of the client and the servers' threads only) records every
syscall and scheduler event with a monotonic timestamp. Per request, medians in us:

- ``wake``: client's ``sendto`` entry -> the first event of a server thread (its ``epoll_pwait``
  returning); ``sched``: -> the kernel's wake-up of a server thread;
- ``to_read``: -> the server's ``read`` of the request returning;
- ``proc``: -> the server's ``write`` of the answer entering (its whole processing);
- ``write``: the ``write`` syscall itself (TCP over loopback, waking the client);
- ``back``: -> the client's ``recvfrom`` returning the answer; ``total``: send to receive.

Then, per server, where the kernel woke its thread: on the CPU the client sent from (the client
then blocks and the server runs there) or on another one (on these 2-vCPU virtual machines, a
halted vCPU woken by an interrupt: ~25 us more of ``wake``, and a slower ``write`` back), with the
share of requests and their medians. The placement is the scheduler's (an idle previous CPU is
preferred); bench/README.md, "Thirteenth session", has what it was.

Needs root (writes /sys/kernel/tracing); tracing adds a few us per syscall to both servers.

    sudo .venv/bin/python bench/request_trace.py [--query up] [--requests 600]
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from query import wait_idle
from request_floor import Client, path_of, start_target
from small_queries import build_data, push_all, start_all

TRACING = Path("/sys/kernel/tracing")
EVENT = re.compile(r"^\s*\S+-(\d+)\s+\[(\d+)\].*?\s(\d+\.\d+): (\w+): (.*)$")
# (time s, thread id, event, its text, CPU)
Event = tuple[float, int, str, str, int]
SENDTO, RECVFROM, READ, WRITE, WRITEV = "NR 44 ", "NR 45 ", "NR 0 ", "NR 1 ", "NR 20 "


def _set(name: str, value: str) -> None:
    (TRACING / name).write_text(value)


def trace(targets: list[str], query: str, requests: int, gap_s: float = 0.0) -> tuple[list[Event],
                                                                    dict[str, set[int]],
                                                                    list[tuple[str, float, float]]]:
    payloads = build_data(2360, 1, 1)
    with ExitStack() as stack:
        procs = start_all(stack, targets, "bench-trace-", start_target)
        push_all(procs, payloads)
        wait_idle(procs)
        clients = {t: Client(procs[t].url) for t in targets}
        path = path_of(query, "instant", payloads.last_ms / 1000)
        for _ in range(300):
            for t in targets:
                clients[t].get(path)
        threads = {t: {int(x) for x in os.listdir(f"/proc/{procs[t].pid}/task")} for t in targets}
        _set("tracing_on", "0")
        _set("trace", "")
        _set("trace_clock", "mono")
        _set("buffer_size_kb", "65536")
        _set("set_event_pid", " ".join(str(x) for x in [os.getpid(), *sorted(set().union(*threads.values()))]))
        _set("set_event", "raw_syscalls:sys_enter raw_syscalls:sys_exit sched:sched_switch sched:sched_wakeup")
        marks = []
        try:
            _set("tracing_on", "1")
            for _ in range(requests):
                for t in targets:
                    t0 = time.monotonic()
                    clients[t].get(path)
                    marks.append((t, t0, time.monotonic()))
                    if gap_s:
                        time.sleep(gap_s)
        finally:
            _set("tracing_on", "0")
            text = (TRACING / "trace").read_text()
            _set("set_event", "")
            _set("set_event_pid", "")
            _set("trace", "")
        for c in clients.values():
            c.close()
    events = []
    for line in text.splitlines():
        m = EVENT.match(line)
        if m:
            events.append((float(m.group(3)), int(m.group(1)), m.group(4), m.group(5), int(m.group(2))))
    events.sort()
    return events, threads, marks


def decompose(events: list[Event], threads: dict[str, set[int]], marks: list[tuple[str, float, float]],
              me: int) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[tuple[bool, float, float]]]]:
    """Per target, the parts of each request's latency (s); and per request, whether the server's
    thread was woken on the CPU the client sent from, with its ``wake`` and ``total``."""
    owner = {tid: t for t, tids in threads.items() for tid in tids}
    times = [e[0] for e in events]
    out: dict[str, dict[str, list[float]]] = {}
    placed: dict[str, list[tuple[bool, float, float]]] = {}
    for t, a, b in marks:
        win = events[bisect.bisect_left(times, a):bisect.bisect_right(times, b)]
        sent = next((e for e in win if e[1] == me and e[2] == "sys_enter" and e[3].startswith(SENDTO)), None)
        if sent is None:
            continue
        send = sent[0]
        srv = [e for e in win if owner.get(e[1]) == t and e[0] >= send]
        wakeup = next((e for e in win if e[2] == "sched_wakeup" and e[0] >= send
                       and owner.get(int(re.search(r"pid=(\d+)", e[3]).group(1))) == t), None)  # type: ignore[union-attr]
        woken = wakeup[0] if wakeup is not None else None
        target_cpu = re.search(r"target_cpu=(\d+)", wakeup[3]) if wakeup is not None else None
        read = next((e[0] for e in srv if e[2] == "sys_exit" and re.match(r"NR 0 = [1-9]", e[3])), None)
        w_in = next((e[0] for e in srv if e[2] == "sys_enter" and e[3].startswith((WRITE, WRITEV))), None)
        w_out = next((e[0] for e in srv if e[2] == "sys_exit" and e[3].startswith((WRITE.rstrip(), WRITEV.rstrip()))
                      and w_in is not None and e[0] >= w_in), None)
        recv = [e[0] for e in win if e[1] == me and e[2] == "sys_exit" and re.match(r"NR 45 = [1-9]", e[3])]
        if not srv or None in (read, w_in, w_out, woken) or not recv:
            continue
        assert read is not None and w_in is not None and w_out is not None and woken is not None
        r = out.setdefault(t, {k: [] for k in ("wake", "sched", "to_read", "proc", "write", "back", "total")})
        r["wake"].append(srv[0][0] - send)
        r["sched"].append(woken - send)
        r["to_read"].append(read - srv[0][0])
        r["proc"].append(w_in - read)
        r["write"].append(w_out - w_in)
        r["back"].append(recv[-1] - w_out)
        r["total"].append(recv[-1] - send)
        if target_cpu is not None:
            placed.setdefault(t, []).append((int(target_cpu.group(1)) == sent[4], srv[0][0] - send, recv[-1] - send))
    return out, placed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--query", default="up")
    p.add_argument("--requests", type=int, default=600)
    p.add_argument("--targets", default="clearsight,prometheus")
    p.add_argument("--gap-ms", type=float, default=0.0,
                   help="the client sleeps this long after each answer (every server idle before each request)")
    args = p.parse_args(argv)
    if not os.access(TRACING / "trace", os.W_OK):
        print(f"bench/request_trace.py: {TRACING} is not writable (needs root and tracefs)", file=sys.stderr)
        return 2
    load = os.getloadavg()[0]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    events, threads, marks = trace(targets, args.query, args.requests, args.gap_ms / 1000)
    got, placed = decompose(events, threads, marks, os.getpid())
    print(f"{args.query!r}, {args.requests} requests per server, alternated; load {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; medians in us")
    for t, r in got.items():
        print(f"  {t:<12} n={len(r['total']):<5}" + "  ".join(f"{k} {statistics.median(v) * 1e6:.0f}"
                                                          for k, v in r.items()))
    print("where the kernel woke the server's thread: on the CPU the client sent from, or on another")
    for t, rows in placed.items():
        parts = []
        for same, name in ((True, "client's CPU"), (False, "another CPU")):
            got_here = [(w, tot) for s, w, tot in rows if s == same]
            if got_here:
                parts.append(f"{name} {len(got_here) / len(rows):.0%} (wake {statistics.median(w for w, _ in got_here) * 1e6:.0f}, "
                             f"total {statistics.median(tot for _, tot in got_here) * 1e6:.0f})")
        print(f"  {t:<12} " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
