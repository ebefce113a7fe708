"""Cold start and cold caches, side by side: Clearsight, Prometheus 2.42 and VictoriaMetrics 1.79 fed
the small_queries workload (bench/small_queries.py: node_exporter-like series plus a request-duration
histogram, ``--hours`` of data at 15 s), stopped cleanly, restarted on the same data directory, and
asked the small queries once (cold) and again (warm).

    .venv/bin/python bench/cold_start.py                       # 2,464 series x 6 h, one restart each
    .venv/bin/python bench/cold_start.py --drop-page-cache     # the data files out of the page cache too
    .venv/bin/python bench/cold_start.py --hours 1 --targets clearsight,prometheus   # quick

Every server starts on 127.0.0.1 on a free port in a temp dir (Clearsight as ``make run`` starts it,
with default settings). All are loaded first (the same remote-write requests, in order), each waits
until idle, then each is stopped with SIGTERM (time to exit printed: Clearsight compacts its head
and checkpoints, Prometheus writes its head chunks, VictoriaMetrics flushes). Then, **one server at
a time** (the others stay stopped, so the restart has both cores to itself):

0. Python's bytecode cache is on for the servers, as a user's Python has it (the first start
   writes the .pyc files, the restart reads them): a ``PYTHONDONTWRITEBYTECODE`` in the
   environment is cleared, which the output says;
1. with ``--drop-page-cache``, ``sync; echo 3 > /proc/sys/vm/drop_caches`` (root only): the data
   files are read from the disk again, as after a reboot; without it (the default) they are still in
   the page cache, as after a restart of the service alone. The output says which mode ran;
2. the same command on the same data directory and a new port; **ready** = the wall time from the
   process' spawn until its readiness endpoint first answers 200 (Clearsight ``/ready``,
   Prometheus ``/-/ready``, VictoriaMetrics ``/health``; polled every 5 ms), the process tree's CPU
   seconds by then (user + system from /proc, dead threads included) and its RSS;
3. **cold**: each of the 11 small queries (small_queries.QUERIES: instant queries at the newest
   sample, 1 h range panels at a 15 s step) and a wide range query (``sum by (instance)
   (rate(node_cpu_seconds_total[5m]))`` over the whole ``--hours`` at a 60 s step), once each, in
   that order, straight after ready, as a dashboard opened right after a restart would: wall
   latency and the server's CPU during the request (all its threads, so background work started at
   open counts; the idle rate cannot be subtracted this early);
4. **warm**: the same queries again, once each, in the same order;
5. the answers: each server's cold answers compared with Prometheus' (``small_queries.judge``: equal,
   or why not), RSS after the queries, and ratios to Prometheus.

``--cycles N`` repeats the stop/restart/query steps N times on the same data (a second cycle
starts from the state the first restart left: for Clearsight, a data dir that has been through a
clean stop twice). The first query after a restart pays for every lazy start-up cost, so read the
first row (``up``) as "the first request", not as "``up``".
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from query import start, wait_idle
from small_queries import QUERIES, Conn, _canon, build_data, cpu_seconds, geomean, judge, push_all, query_path
from tests.support import peers

ALL_TARGETS = ("clearsight", "prometheus", "victoriametrics")
READY_PATH = {"clearsight": "/ready", "prometheus": "/-/ready", "victoriametrics": "/health"}
WIDE = ("wide cpu rate, all h", "wide", "sum by (instance) (rate(node_cpu_seconds_total[5m]))")


@dataclass
class Query:
    name: str
    kind: str  # "instant", "range" (1 h at 15 s) or "wide" (the whole data at 60 s)
    q: str

    def path(self, q: str, end_s: float, hours: float) -> str:
        if self.kind == "wide":
            return query_path("range", q, end_s, range_s=hours * 3600 - 60, step_s=60)
        return query_path(self.kind, q, end_s)


@dataclass
class Restart:
    target: str
    ready_s: float = math.nan
    ready_cpu_s: float = math.nan
    rss_ready: int = 0
    rss_after: int = 0
    stop_s: float = math.nan
    cold_ms: dict[str, float] = field(default_factory=dict)
    cold_cpu_ms: dict[str, float] = field(default_factory=dict)
    warm_ms: dict[str, float] = field(default_factory=dict)
    warm_cpu_ms: dict[str, float] = field(default_factory=dict)
    bodies: dict[str, bytes | None] = field(default_factory=dict)
    verdict: dict[str, str] = field(default_factory=dict)


def tree_rss(p: psutil.Process) -> int:
    with contextlib.suppress(psutil.Error):
        return int(p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True)))
    return 0


def tree_cpu_times(p: psutil.Process) -> float:
    """User + system seconds of ``p`` and its children since they started (ticks, dead threads too)."""
    total = 0.0
    for proc in [p, *p.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system
    return total


def drop_page_cache() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def restart(target: str, wd: Path, port: int) -> tuple[peers.Proc, float]:
    """Starts ``target`` again on its data under ``wd`` on ``port``; returns it and the seconds from
    spawn to its first 200 on the readiness endpoint."""
    if target == "clearsight":
        argv = [sys.executable, "-m", "clearsight", "server", "--data-dir", str(wd / "data"),
                "--listen", f"127.0.0.1:{port}", "--otlp-http-listen", "", "--otlp-grpc-listen", ""]
    elif target == "prometheus":
        argv = [peers.require_binary("prometheus"), f"--config.file={wd / 'prometheus.yml'}",
                f"--storage.tsdb.path={wd / 'prom-data'}", f"--web.listen-address=127.0.0.1:{port}",
                "--storage.remote.flush-deadline=1s", "--web.enable-remote-write-receiver",
                "--web.enable-admin-api"]
    elif target == "victoriametrics":
        # as bench/query.py starts it: no rollup result cache, no latency offset
        argv = [peers.require_binary("victoria-metrics"), f"-storageDataPath={wd / 'vm-data'}",
                f"-httpListenAddr=127.0.0.1:{port}", "-search.latencyOffset=0s", "-search.disableCache"]
    else:
        raise ValueError(target)
    t0 = time.perf_counter()
    proc = peers._spawn(target, argv, wd, f"http://127.0.0.1:{port}")
    while True:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{target} exited with {proc.popen.returncode}:\n{proc.log()}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", READY_PATH[target])
            status = c.getresponse().status
            c.close()
            if status == 200:
                return proc, time.perf_counter() - t0
        except OSError:
            pass
        if time.perf_counter() - t0 > 300:
            proc.stop()
            raise AssertionError(f"{target} not ready after 300 s:\n{proc.log()}")
        time.sleep(0.005)


def stop(proc: peers.Proc) -> float:
    t0 = time.perf_counter()
    rc = proc.stop(timeout=120)
    if rc not in (0, None):
        print(f"  {proc.name} exited with {rc} on SIGTERM")
    return time.perf_counter() - t0


def run_queries(
    r: Restart, proc: peers.Proc, queries: list[Query], end_s: float, hours: float, first_s: float,
    prom_bodies: dict[str, bytes | None],
) -> None:
    conn = Conn(proc.url)
    ps = psutil.Process(proc.pid)
    for rnd, (lat, cpu) in enumerate(((r.cold_ms, r.cold_cpu_ms), (r.warm_ms, r.warm_cpu_ms))):
        for qu in queries:
            c0 = cpu_seconds(ps)
            t0 = time.perf_counter()
            st, body = conn.get(qu.path(qu.q, end_s, hours))
            lat[qu.name] = (time.perf_counter() - t0) * 1e3
            cpu[qu.name] = (cpu_seconds(ps) - c0) * 1e3
            if rnd == 0:
                r.bodies[qu.name] = body if st == 200 else None
                if st != 200:
                    print(f"  {r.target} {qu.name}: HTTP {st} {body[:200]!r}")
    r.rss_after = tree_rss(ps)
    for qu in queries:  # after the timings: judge may send the query again (2.42's closed windows)
        body = r.bodies[qu.name]
        answer: dict[str, list[float]] | str = _canon(body) if body is not None else "error"
        r.verdict[qu.name] = judge(
            r.target, qu.q, answer, prom_bodies.get(qu.name),
            lambda q2, qu=qu: conn.get(qu.path(q2, end_s, hours)), first_s,
        )


FLAGS = {
    "same": "",
    "same with 2.42 windows": " (2.42 window)",
    "same with 2.42 windows, tie": " (2.42 window, tie)",
    "same with 2.42 windows, 3.x extrapolation at the start": " (2.42 window, 3.x start)",
}


def report(results: list[Restart], queries: list[Query], targets: list[str], cycle: int) -> None:
    by = {r.target: r for r in results}
    ref = "prometheus" if "prometheus" in by else targets[0]
    others = [t for t in targets if t != ref]
    print(f"\ncycle {cycle}: restart (ratio = server / {ref})")
    print(f"{'':<24}" + "".join(f"{t[:12]:>13}" for t in targets) + "".join(f"{t[:6] + '/' + ref[:4]:>13}" for t in others))
    for label, get, fmt in (
        ("stop (SIGTERM) s", lambda r: r.stop_s, "{:>13.2f}"),
        ("spawn -> ready s", lambda r: r.ready_s, "{:>13.2f}"),
        ("CPU to ready s", lambda r: r.ready_cpu_s, "{:>13.2f}"),
        ("RSS at ready MiB", lambda r: r.rss_ready / 2**20, "{:>13.0f}"),
        ("RSS after queries MiB", lambda r: r.rss_after / 2**20, "{:>13.0f}"),
    ):
        vals = {t: float(get(by[t])) for t in targets}
        print(f"{label:<24}" + "".join(fmt.format(vals[t]) for t in targets)
              + "".join(f"{vals[t] / vals[ref]:>12.2f}x" if vals[ref] > 0 else f"{'':>13}" for t in others))
    for title, attr in (
        ("cold: first execution after ready, latency (ms)", "cold_ms"),
        ("cold: server CPU during the first execution (ms)", "cold_cpu_ms"),
        ("warm: second execution, latency (ms)", "warm_ms"),
        ("warm: server CPU during the second execution (ms)", "warm_cpu_ms"),
    ):
        print(f"\n{title}; ratio = server / {ref}")
        print(f"{'query':<24}" + "".join(f"{t[:12]:>13}" for t in targets) + "".join(f"{t[:6] + '/' + ref[:4]:>13}" for t in others))
        ratios: dict[str, list[float]] = {t: [] for t in others}
        for qu in queries:
            m = {t: getattr(by[t], attr)[qu.name] for t in targets}
            line = f"{qu.name:<24}" + "".join(f"{m[t]:>13.2f}" for t in targets)
            for t in others:
                ratio = m[t] / m[ref] if m[ref] > 0 else math.nan
                ratios[t].append(ratio)
                line += f"{ratio:>12.2f}x" + FLAGS.get(by[t].verdict[qu.name], f" ({by[t].verdict[qu.name]})")
            print(line)
        print(f"{'sum':<24}" + "".join(f"{sum(getattr(by[t], attr).values()):>13.2f}" for t in targets)
              + "".join(f"{sum(getattr(by[t], attr).values()) / sum(getattr(by[ref], attr).values()):>12.2f}x"
                        for t in others))
        print(f"{'geomean':<24}" + "".join(f"{geomean(list(getattr(by[t], attr).values())):>13.2f}" for t in targets)
              + "".join(f"{geomean(ratios[t]):>12.2f}x" for t in others))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=2360, help="node_exporter-like series (default 2360)")
    p.add_argument("--handlers", type=int, default=8, help="histogram handlers (13 series each)")
    p.add_argument("--hours", type=float, default=6.0, help="hours of data at 15 s (default 6)")
    p.add_argument("--targets", default=",".join(ALL_TARGETS))
    p.add_argument("--cycles", type=int, default=1, help="stop/restart/query cycles (default 1)")
    p.add_argument("--drop-page-cache", action="store_true",
                   help="sync and drop the page cache before each restart (root only)")
    p.add_argument("--json", type=Path, help="write the results here")
    args, unknown = p.parse_known_args(argv)
    if unknown:
        print(f"bench/cold_start.py: ignoring {' '.join(unknown)}")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    # Prometheus first: the others' answers are compared with its
    targets.sort(key=lambda t: t != "prometheus")
    if args.drop_page_cache and os.geteuid() != 0:
        p.error("--drop-page-cache needs root (it writes /proc/sys/vm/drop_caches)")
    mode = ("page cache dropped before each restart (cold disk)" if args.drop_page_cache
            else "page cache kept (the data files stay cached: a service restart, not a reboot)")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # A user's Python caches bytecode: the first start writes the .pyc files, a restart reads
        # them. Without the cache every Clearsight start compiles its ~300 modules (~0.35 s of CPU).
        print("PYTHONDONTWRITEBYTECODE is set here: cleared for the servers (bytecode cached, as by default)")
        os.environ["PYTHONDONTWRITEBYTECODE"] = ""
    queries = [Query(*q) for q in (*QUERIES, WIDE)]
    payloads = build_data(args.series, args.hours, args.handlers)
    print(f"mode: {mode}")
    end_s, first_s = payloads.last_ms / 1000, payloads.first_ms / 1000
    all_results: list[list[Restart]] = []
    load: list[tuple[float, float, float]] = [os.getloadavg()]
    with ExitStack() as stack:
        wd = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cold-")))
        procs: dict[str, peers.Proc] = {}
        for t in targets:
            procs[t] = start(t, wd / t, False)
            stack.callback(lambda t=t: procs[t].stop(timeout=120))  # the restarted process, at the end
        push_all(procs, payloads)
        print(f"servers idle after {wait_idle(procs):.1f} s")
        stop_s = {t: stop(procs[t]) for t in targets}
        for cycle in range(1, args.cycles + 1):
            results: list[Restart] = []
            prom_bodies: dict[str, bytes | None] = {}
            for t in targets:
                r = Restart(t, stop_s=stop_s[t])
                if args.drop_page_cache:
                    drop_page_cache()
                procs[t], r.ready_s = restart(t, wd / t, peers.free_port())
                ps = psutil.Process(procs[t].pid)
                r.ready_cpu_s = tree_cpu_times(ps)
                r.rss_ready = tree_rss(ps)
                run_queries(r, procs[t], queries, end_s, args.hours, first_s, prom_bodies)
                if t == "prometheus":
                    prom_bodies = dict(r.bodies)
                stop_s[t] = stop(procs[t])
                results.append(r)
                load.append(os.getloadavg())
            all_results.append(results)
            report(results, queries, targets, cycle)
    print(f"\nmode: {mode}")
    print("load average (1 min) at start and after each restart: " + ", ".join(f"{x[0]:.2f}" for x in load))
    if args.json:
        doc: dict[str, Any] = {
            "mode": mode,
            "loadavg": load,
            "cycles": [[{k: v for k, v in vars(r).items() if k != "bodies"} for r in res] for res in all_results],
        }
        args.json.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
