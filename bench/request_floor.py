"""The fixed cost of a small query over HTTP: Clearsight (fast lane on, and off with ``--no-lane``
beside it) and Prometheus 2.42 fed the same data as bench/small_queries.py (node_exporter-like
series, 6 h at 15 s), then one raw-socket client on one kept-alive connection sends each query
``--requests`` times, one at a time (after 300 warm-up requests), and measures:

- p50 latency (send to last byte of the answer, the client's own overhead ~10 us: no HTTP library);
- the server's CPU per request (its threads' on-CPU time from schedstat over the timed requests,
  minus what it burns idle over the same time: bench/small_queries.py's ``cpu_seconds``).

Queries: ``1`` (no store read: the request floor), ``up``, ``node_load1``,
``max_over_time(node_load1[1h])`` at the data's end, and a 5-minute range of ``node_load1`` at
15 s; ``1`` and ``up`` again as form POSTs (as Grafana sends its queries: the body written with the
headers); and Grafana's variable reads: ``/api/v1/labels`` over the last 6 h, the values of
``job`` and of ``instance`` matching ``node_load1`` over 6 h, and ``/api/v1/series`` of ``up``
over 6 h. The request headers are those of a plain HTTP client (Host, User-Agent, Accept).

    .venv/bin/python bench/request_floor.py                   # clearsight, clearsight-nolane, prometheus
    .venv/bin/python bench/request_floor.py --hours 1 --requests 1000   # quick
    .venv/bin/python bench/request_floor.py --targets clearsight,clearsight-nospin,prometheus   # idle spin off

Rounds alternate the servers (``--rounds`` of ``--requests`` each per query and server), so a
change in the machine's load lands on all of them. The client runs on the same cores as the servers:
ratios within one run hold better than absolute numbers, CPU per request best.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
import urllib.parse
from contextlib import ExitStack
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from query import start, wait_idle
from small_queries import (
    build_data,
    cpu_seconds,
    data_args,
    idle_cpu_rates,
    push_all,
    start_all,
    targets_and_args,
)
from tests.support import peers

QUERIES: tuple[tuple[str, str], ...] = (
    ("1", "instant"),
    ("up", "instant"),
    ("node_load1", "instant"),
    ("max_over_time(node_load1[1h])", "instant"),
    ("node_load1", "range 5m"),
    ("1", "POST"),
    ("up", "POST"),
    ("/api/v1/labels", "6h"),
    ("/api/v1/label/job/values", "6h"),
    ("/api/v1/label/instance/values?match[]=node_load1", "6h"),
    ("/api/v1/series?match[]=up", "6h"),
)
ALL_TARGETS = ("clearsight", "clearsight-nolane", "prometheus")
NO_LANE = "server:\n  fast_lane: false\n"
NO_SPIN = "server:\n  idle_spin_us: 0\n"


class Client:
    """One kept-alive connection, raw socket: a GET (or a form POST, its body written with its
    headers) and its whole answer (by content-length)."""

    def __init__(self, url: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.host = f"{u.hostname}:{u.port}"
        self.s = socket.create_connection((u.hostname or "127.0.0.1", u.port or 80), timeout=60)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get(self, path: str) -> bytes:
        path, _, form = path.partition(" ")  # "path form": a POST of the form
        if form:
            self.s.sendall(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: floor\r\nAccept: */*\r\n"
                           "Content-Type: application/x-www-form-urlencoded\r\n"
                           f"Content-Length: {len(form)}\r\n\r\n{form}".encode())
        else:
            self.s.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: floor\r\nAccept: */*\r\n\r\n"
                           .encode())
        buf = b""
        while True:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                continue
            head = buf[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15:].split(b"\r\n")[0])
            if len(buf) >= end + 4 + length:
                if not buf.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"{path}: {buf[:200]!r}")
                return buf

    def close(self) -> None:
        self.s.close()


def path_of(q: str, kind: str, end_s: float) -> str:
    """The request of a query: a path, or "path form" for a form POST."""
    if kind == "instant":
        return "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": f"{end_s:.3f}"})
    if kind == "POST":
        return "/api/v1/query " + urllib.parse.urlencode({"query": q, "time": f"{end_s:.3f}"})
    if kind == "6h":
        span = urllib.parse.urlencode({"start": f"{end_s - 6 * 3600:.3f}", "end": f"{end_s:.3f}"})
        return q + ("&" if "?" in q else "?") + span
    return "/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": q, "start": f"{end_s - 300:.3f}", "end": f"{end_s:.3f}", "step": "15"})


def start_target(target: str, workdir: Path) -> peers.Proc:
    if target == "clearsight-nolane":
        return peers.start_clearsight(workdir, config_yaml=NO_LANE)
    if target == "clearsight-nospin":
        return peers.start_clearsight(workdir, config_yaml=NO_SPIN)
    return start(target, workdir, False)


def measure(clients: dict[str, Client], pids: dict[str, int], idle: dict[str, float], path: str, requests: int,
            rounds: int) -> dict[str, tuple[float, float]]:
    """target -> (p50 latency us, CPU us per request)."""
    procs = {t: psutil.Process(p) for t, p in pids.items()}
    lat: dict[str, list[float]] = {t: [] for t in clients}
    cpu = dict.fromkeys(clients, 0.0)
    for c in clients.values():
        for _ in range(300):
            c.get(path)
    for _ in range(rounds):
        for t, c in clients.items():
            c0, w0 = cpu_seconds(procs[t]), time.perf_counter()
            for _ in range(requests):
                t1 = time.perf_counter()
                c.get(path)
                lat[t].append(time.perf_counter() - t1)
            wall = time.perf_counter() - w0
            cpu[t] += cpu_seconds(procs[t]) - c0 - idle[t] * wall
    n = requests * rounds
    return {t: (statistics.median(lat[t]) * 1e6, cpu[t] / n * 1e6) for t in clients}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_args(p)
    p.add_argument("--requests", type=int, default=2000, help="requests per round (default 2000)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per query, servers alternated (default 3)")
    args, targets = targets_and_args(p, argv, "bench/request_floor.py", ALL_TARGETS)
    payloads = build_data(args.series, args.hours, args.handlers)
    with ExitStack() as stack:
        procs = start_all(stack, targets, "bench-floor-", start_target)
        push_all(procs, payloads)
        print(f"servers idle after {wait_idle(procs):.1f} s")
        pids = {t: pr.pid for t, pr in procs.items()}
        idle = idle_cpu_rates(pids)
        clients = {t: Client(pr.url) for t, pr in procs.items()}
        for c in clients.values():
            stack.callback(c.close)
        end_s = payloads.last_ms / 1000
        load_before = os.getloadavg()[0]
        rows = [(q, kind, measure(clients, pids, idle, path_of(q, kind, end_s), args.requests, args.rounds))
                for q, kind in QUERIES]
        load_after = os.getloadavg()[0]
    ref = "prometheus" if "prometheus" in targets else targets[-1]
    others = [t for t in targets if t != ref]
    print(f"\nload average {load_before:.2f} before, {load_after:.2f} after; {args.rounds} rounds x "
          f"{args.requests} requests per query and server; us per request (CPU: on-CPU time, idle subtracted)")
    print(f"{'query':<38}" + "".join(f"{t[:17]:>18} p50/cpu" for t in targets)
          + "".join(f"{t[:12] + '/' + ref[:4]:>18}" for t in others))
    for q, kind, m in rows:
        line = f"{(q + ('' if kind == 'instant' else ' [' + kind + ']'))[-37:]:<38}"
        line += "".join(f"{m[t][0]:>14.0f} / {m[t][1]:<7.0f}" for t in targets)
        line += "".join(f"{m[t][0] / m[ref][0]:>9.2f}x/{m[t][1] / m[ref][1]:.2f}x" for t in others)
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
