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
EVENT = re.compile(r"^\s*\S+-(\d+)\s+\[\d+\].*?\s(\d+\.\d+): (\w+): (.*)$")
SENDTO, RECVFROM, READ, WRITE, WRITEV = "NR 44 ", "NR 45 ", "NR 0 ", "NR 1 ", "NR 20 "


def _set(name: str, value: str) -> None:
    (TRACING / name).write_text(value)


def trace(targets: list[str], query: str, requests: int) -> tuple[list[tuple[float, int, str, str]],
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
            events.append((float(m.group(2)), int(m.group(1)), m.group(3), m.group(4)))
    events.sort()
    return events, threads, marks


def decompose(events: list[tuple[float, int, str, str]], threads: dict[str, set[int]],
              marks: list[tuple[str, float, float]], me: int) -> dict[str, dict[str, list[float]]]:
    owner = {tid: t for t, tids in threads.items() for tid in tids}
    times = [e[0] for e in events]
    out: dict[str, dict[str, list[float]]] = {}
    for t, a, b in marks:
        win = events[bisect.bisect_left(times, a):bisect.bisect_right(times, b)]
        send = next((e[0] for e in win if e[1] == me and e[2] == "sys_enter" and e[3].startswith(SENDTO)), None)
        if send is None:
            continue
        srv = [e for e in win if owner.get(e[1]) == t and e[0] >= send]
        woken = next((e[0] for e in win if e[2] == "sched_wakeup" and e[0] >= send
                      and owner.get(int(re.search(r"pid=(\d+)", e[3]).group(1))) == t), None)  # type: ignore[union-attr]
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
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--query", default="up")
    p.add_argument("--requests", type=int, default=600)
    p.add_argument("--targets", default="clearsight,prometheus")
    args = p.parse_args(argv)
    if not os.access(TRACING / "trace", os.W_OK):
        print(f"bench/request_trace.py: {TRACING} is not writable (needs root and tracefs)", file=sys.stderr)
        return 2
    load = os.getloadavg()[0]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    events, threads, marks = trace(targets, args.query, args.requests)
    got = decompose(events, threads, marks, os.getpid())
    print(f"{args.query!r}, {args.requests} requests per server, alternated; load {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; medians in us")
    for t, r in got.items():
        print(f"  {t:<12} n={len(r['total']):<5}" + "  ".join(f"{k} {statistics.median(v) * 1e6:.0f}"
                                                          for k, v in r.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
