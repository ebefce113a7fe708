"""Query governance, measured: does ingest keep its capacity while heavy queries run, and is a
query's memory bounded?

``ingest`` (default): starts ``clearsight server`` on a free port in a temporary directory, loads
``--series`` counters x 6 h, then sends remote-write batches (``--batch`` series x 1 sample) at a
steady rate (``--rate`` per second) from a process of its own and records each request's latency: first idle
(``--seconds``), then while ``--queries`` concurrent clients run heavy range queries in a loop.
``--rounds N`` interleaves instead: N rounds of idle then loaded, ``--seconds / N`` each (the
clients pause between rounds and the idle phase starts once no query is in flight), so a noisy
shared machine weighs on both phases alike.
Prints p50/p99/max idle vs loaded, the loaded/idle p99 ratio over all rounds (target: within 2x),
with ``--rounds`` also each round's ratio and their median (the verdict says "met" only when both
the pooled ratio and the median are within 2x: a steadier reading, never an easier one; "not
measured" when other processes kept more than half a core busy during the idle phases), the
machine's CPU use in each phase (``/proc/stat``: the server's own and everything else's, on a
shared machine the main source of noise), and what the query clients got (200s, 503s).
``--max-concurrency`` sets ``query.max_concurrency``;
``--switch-interval`` sets ``server.switch_interval_us`` (given in seconds; Python's default is
0.005, the server's 0.0002); ``--client-nice`` sets the query clients' threads' nice value (the server
and the probe stay at 0); ``--write-pause-max`` sets ``query.write_pause_max`` (``0s``: queries
never step aside for writes); ``--env KEY=VALUE`` passes any other setting to the server.

``memory``: the issue's query ``sum(max_over_time(rate(http_requests_total[5m])[1h:1s]))`` over 12 h
at a 60 s step, in-process against ``--series`` counters at 15 s, printing how it ended, the time
and the process' peak RSS (``ru_maxrss``).

Usage:
  .venv/bin/python bench/governance.py ingest [--series 500] [--queries 20] [--seconds 15]
  .venv/bin/python bench/governance.py memory [--series 1000]
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_write_request, snappy

H = 3_600_000
STEP_MS = 15_000
HEAVY_QUERIES = [
    "sum by (job) (rate(bench_requests_total[5m]))",
    "max_over_time(sum(rate(bench_requests_total[5m]))[30m:15s])",
    "topk(5, avg_over_time(bench_requests_total[10m]))",
    "quantile_over_time(0.9, rate(bench_requests_total[5m])[15m:30s])",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, max_concurrency: int, switch_interval: float | None, write_pause_max: str | None,
                 env_extra: list[str], otlp_http: bool = False) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-governance-"))
        self.port = free_port()
        self.otlp_port = free_port() if otlp_http else None  # the OTLP/HTTP listener (/v1/logs, /v1/traces)
        args = ["server", "--data-dir", str(self.tmp / "data"), "--listen", f"127.0.0.1:{self.port}",
                "--otlp-http-listen", f"127.0.0.1:{self.otlp_port}" if self.otlp_port else "",
                "--otlp-grpc-listen", ""]
        code = (f"import runpy, sys; sys.argv = ['clearsight', *{args!r}]; "
                "runpy.run_module('clearsight', run_name='__main__')")
        env = dict(os.environ)
        if max_concurrency:
            env["CLEARSIGHT_QUERY_MAX_CONCURRENCY"] = str(max_concurrency)
        if switch_interval is not None:
            env["CLEARSIGHT_SERVER_SWITCH_INTERVAL_US"] = str(round(switch_interval * 1e6))
        if write_pause_max is not None:
            env["CLEARSIGHT_QUERY_WRITE_PAUSE_MAX"] = write_pause_max
        for kv in env_extra:
            key, _, value = kv.partition("=")
            env[key] = value
        self.log = open(self.tmp / "server.log", "wb")  # closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.tmp / 'server.log').read_text()[-2000:]}")
            try:
                if self.get("/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server not ready")

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def get(self, path: str) -> tuple[int, bytes]:
        c = self.conn()
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


WRITE_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                 "X-Prometheus-Remote-Write-Version": "0.1.0"}


def write(conn: http.client.HTTPConnection, body: bytes) -> int:
    conn.request("POST", "/api/v1/write", body=body, headers=WRITE_HEADERS)
    r = conn.getresponse()
    r.read()
    return r.status


def load(server: Server, series: int, end_ms: int) -> None:
    """``series`` counters over the 6 h before ``end_ms``, sent in time order."""
    ts_all = np.arange(end_ms - 6 * H, end_ms, STEP_MS, dtype=np.int64)
    conn = server.conn()
    per_req = max(1, 20_000 // series)
    for i in range(0, ts_all.size, per_req):
        ts = ts_all[i:i + per_req].tolist()
        req = WriteRequest([TimeSeries([("__name__", "bench_requests_total"), ("instance", f"i{s}"),
                                        ("job", f"j{s % 10}")], [(t, float(t // STEP_MS * (s % 7 + 1))) for t in ts])
                            for s in range(series)])
        status = write(conn, snappy(encode_write_request(req)))
        if status != 204:
            raise RuntimeError(f"load: remote-write answered {status}")
    conn.close()


def probe_writes(port: int, seconds: float, rate: float, batch: int, label: str) -> list[float]:
    """Remote-write latencies (ms) of ``batch``-series requests sent ``rate`` times a second (run in
    the prober process, see ``run_ingest``)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    out: list[float] = []
    interval = 1.0 / rate
    t_end = time.monotonic() + seconds
    nxt = time.monotonic()
    while time.monotonic() < t_end:
        now_ms = int(time.time() * 1000)
        req = WriteRequest([TimeSeries([("__name__", "bench_probe"), ("phase", label), ("s", str(s))],
                                       [(now_ms, float(s))]) for s in range(batch)])
        body = snappy(encode_write_request(req))
        t0 = time.perf_counter()
        status = write(conn, body)
        out.append((time.perf_counter() - t0) * 1000)
        if status != 204:
            raise RuntimeError(f"probe: remote-write answered {status}")
        nxt += interval
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    conn.close()
    return out


class QueryClients:
    """``n`` clients looping heavy range queries while ``go`` is set; ``pause()`` returns once no
    query is in flight (the interleaved rounds need a quiet server for their idle phase)."""

    def __init__(self, server: Server, n: int, end_ms: int) -> None:
        self.server, self.end_ms = server, end_ms
        self.go, self.stop = threading.Event(), threading.Event()
        self.counts: dict[int, int] = {}
        self.busy = 0
        self.cv = threading.Condition()
        self.threads = [threading.Thread(target=self.loop, args=(i,), daemon=True) for i in range(n)]
        for t in self.threads:
            t.start()

    def loop(self, idx: int) -> None:
        conn = self.server.conn()
        i = idx
        while True:
            self.go.wait()
            with self.cv:
                if self.stop.is_set():
                    break
                if not self.go.is_set():
                    continue
                self.busy += 1
            q = HEAVY_QUERIES[i % len(HEAVY_QUERIES)]
            i += 1
            params = urllib.parse.urlencode({"query": q, "start": (self.end_ms - 6 * H) / 1000,
                                             "end": self.end_ms / 1000, "step": "15"})
            status = -1
            for _attempt in range(2):  # once more on a new connection: the server closed an idle one
                try:
                    conn.request("GET", f"/api/v1/query_range?{params}")
                    r = conn.getresponse()
                    r.read()
                    status = r.status
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = self.server.conn()
            with self.cv:
                self.counts[status] = self.counts.get(status, 0) + 1
                self.busy -= 1
                self.cv.notify_all()
        conn.close()

    def start(self) -> None:
        self.go.set()

    def pause(self) -> None:
        with self.cv:
            self.go.clear()
            self.cv.wait_for(lambda: self.busy == 0, 300)

    def close(self) -> None:
        with self.cv:
            self.stop.set()
        self.go.set()
        for t in self.threads:
            t.join(120)


def server_concurrency(server: Server) -> str:
    """The query slots the server says it has (``/metrics``), not what this script guesses."""
    status, body = server.get("/metrics")
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("clearsight_query_max_concurrency "):
            return str(round(float(line.split()[1])))
    return f"unknown (/metrics: HTTP {status})"


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


TARGET = 2.0  # loaded p99 within 2x of idle p99 (issue 8 point 3)


def p99_ratios(idle_rounds: list[list[float]], loaded_rounds: list[list[float]]) -> tuple[float, list[float]]:
    """The loaded/idle p99 ratio over all rounds pooled, and each round's own ratio."""
    pooled = pct([x for r in loaded_rounds for x in r], 99) / pct([x for r in idle_rounds for x in r], 99)
    return pooled, [pct(lo, 99) / pct(i, 99) for i, lo in zip(idle_rounds, loaded_rounds, strict=True)]


# Cores busy outside the server during the idle phases above which the run says nothing: the
# idle p99 is then other processes' (on 2 cores at load 6.7: 1.8 cores, idle p99 40 ms).
BUSY_ELSEWHERE_MAX = 0.5


def verdict(pooled: float, per_round: list[float], busy_elsewhere: float | None = None) -> str:
    """"met" only when the pooled ratio and the median of the rounds' ratios are both within the
    target; "not measured" when other processes kept more than ``BUSY_ELSEWHERE_MAX`` cores busy
    during the idle phases (``busy_elsewhere``, None where unknown)."""
    if busy_elsewhere is not None and busy_elsewhere > BUSY_ELSEWHERE_MAX:
        return f"not measured (other processes kept {busy_elsewhere:.2f} cores busy in the idle phases)"
    med = statistics.median(per_round)
    return "met" if pooled <= TARGET and med <= TARGET else "not met"


class CpuUse:
    """The machine's busy CPU seconds (``/proc/stat``) and one process' (``/proc/<pid>/stat``), summed
    over the intervals between ``start`` and ``stop``; None where ``/proc`` is not there."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.machine = 0.0
        self.process = 0.0
        self.wall = 0.0
        self._at: tuple[float, float, float] | None = None

    def _read(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                cpu = [int(x) for x in f.readline().split()[1:]]
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        tick = os.sysconf("SC_CLK_TCK")
        busy = sum(cpu) - cpu[3] - (cpu[4] if len(cpu) > 4 else 0)  # all but idle and iowait
        return busy / tick, (int(fields[11]) + int(fields[12])) / tick, time.monotonic()

    def start(self) -> None:
        self._at = self._read()

    def stop(self) -> None:
        now = self._read()
        if self._at is not None and now is not None:
            self.machine += now[0] - self._at[0]
            self.process += now[1] - self._at[1]
            self.wall += now[2] - self._at[2]
        self._at = None

    def elsewhere(self) -> float | None:
        """Cores busy outside the process, on average (None without ``/proc``)."""
        return (self.machine - self.process) / self.wall if self.wall else None

    def describe(self) -> str:
        if not self.wall:
            return "n/a (no /proc)"
        return (f"{self.machine / self.wall:.2f} cores busy: server {self.process / self.wall:.2f}, "
                f"everything else {(self.machine - self.process) / self.wall:.2f}")


def run_ingest(args: argparse.Namespace) -> None:
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    server = Server(args.max_concurrency, args.switch_interval, args.write_pause_max, args.env)
    try:
        end_ms = (int(time.time() * 1000) // STEP_MS) * STEP_MS
        t0 = time.monotonic()
        load(server, args.series, end_ms)
        print(f"loaded {args.series} series x 6 h in {time.monotonic() - t0:.1f} s", flush=True)
        # The probe runs in a process of its own, as a real sender does: in this one it would share
        # the GIL with the query clients' threads (reading responses of megabytes) at Python's
        # 5 ms switch interval, which measured up to ~5 ms before its request left and again after
        # its response arrived.
        with multiprocessing.get_context("spawn").Pool(1) as prober:
            probe = functools.partial(prober.apply, probe_writes)
            probe((server.port, 2, args.rate, args.batch, "warmup"))
            if args.client_nice:  # this thread, then the client threads it starts (Linux: per thread)
                os.setpriority(os.PRIO_PROCESS, 0, args.client_nice)
            clients = QueryClients(server, args.queries, end_ms)
            idle_rounds: list[list[float]] = []
            loaded_rounds: list[list[float]] = []
            cpu_idle, cpu_loaded = CpuUse(server.proc.pid), CpuUse(server.proc.pid)
            phase = args.seconds / args.rounds
            for _ in range(args.rounds):
                cpu_idle.start()
                idle_rounds.append(probe((server.port, phase, args.rate, args.batch, "idle")))
                cpu_idle.stop()
                clients.start()
                time.sleep(1.0)  # let the queries pile up
                cpu_loaded.start()
                loaded_rounds.append(probe((server.port, phase, args.rate, args.batch, "loaded")))
                cpu_loaded.stop()
                clients.pause()
            clients.close()
        idle = [x for r in idle_rounds for x in r]
        loaded = [x for r in loaded_rounds for x in r]
        counts = clients.counts
        conc = server_concurrency(server)
        rounds = f"; {args.rounds} rounds of idle {phase:g} s then loaded {phase:g} s" if args.rounds > 1 else ""
        si = "server default" if args.switch_interval is None else f"{args.switch_interval:g}s"
        print(f"server: query.max_concurrency={conc} switchinterval={si} "
              f"query.write_pause_max={args.write_pause_max or 'default'} {' '.join(args.env)}; "
              f"{args.queries} query clients (nice {args.client_nice}); remote-write {args.batch} series x {args.rate}/s{rounds}")
        print(f"  machine load average before the run: {load_before}")
        for name, xs in (("idle", idle), ("loaded", loaded)):
            print(f"  {name:6s} n={len(xs):4d}  p50={statistics.median(xs):7.1f} ms  p99={pct(xs, 99):7.1f} ms  "
                  f"max={max(xs):7.1f} ms")
        pooled, per_round = p99_ratios(idle_rounds, loaded_rounds)
        print(f"  loaded/idle: p50 x{statistics.median(loaded) / statistics.median(idle):.2f}  "
              f"p99 x{pooled:.2f}  (target: p99 within x{TARGET:g})")
        if args.rounds > 1:
            print(f"  p99 ratio per round: {' '.join(f'x{r:.2f}' for r in per_round)}; "
                  f"median x{statistics.median(per_round):.2f}")
        print(f"  verdict: {verdict(pooled, per_round, cpu_idle.elsewhere())} "
              f"(pooled and median of the rounds both within x{TARGET:g})")
        print(f"  CPU while probing: idle phases {cpu_idle.describe()}; loaded phases {cpu_loaded.describe()}")
        print(f"  query responses during the loaded phase: {json.dumps(dict(sorted(counts.items())))}")
    finally:
        server.stop()


def run_memory(args: argparse.Namespace) -> None:
    from clearsight.query.promql.engine import Engine
    from clearsight.store.memory import MemorySeriesSelector

    s = MemorySeriesSelector()
    ts = np.arange(0, 13 * H + 1, STEP_MS, dtype=np.int64)
    for i in range(args.series):
        s.add((("__name__", "http_requests_total"), ("instance", f"i{i}")), ts, np.cumsum(np.ones(ts.size)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    t0 = time.monotonic()
    q = "sum(max_over_time(rate(http_requests_total[5m])[1h:1s]))"
    try:
        res = Engine(max_samples=args.max_samples).range(s, q, H, 13 * H, 60_000)
        outcome = f"ok: {len(res.series)} series, peak {res.stats.peak_points:,} points held"
    except Exception as e:  # the point: how it ends
        outcome = f"{type(e).__name__}: {e}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{q} over 12 h at 60 s, {args.series} series x 15 s, query.max_samples={args.max_samples:,}")
    print(f"  {outcome}")
    print(f"  {time.monotonic() - t0:.2f} s; peak RSS {peak} MiB (data loaded: {before} MiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    ing = sub.add_parser("ingest")
    mem = sub.add_parser("memory")
    for p in (ap, ing):
        p.add_argument("--series", type=int, default=500)
        p.add_argument("--queries", type=int, default=20)
        p.add_argument("--seconds", type=float, default=15.0)
        p.add_argument("--rate", type=float, default=20.0)
        p.add_argument("--batch", type=int, default=200)
        p.add_argument("--max-concurrency", type=int, default=0)
        p.add_argument("--switch-interval", type=float, default=None)
        p.add_argument("--rounds", type=int, default=1)
        p.add_argument("--write-pause-max", default=None)
        p.add_argument("--client-nice", type=int, default=0,
                       help="nice value of the query clients' threads (the server and the probe stay at 0)")
        p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server (repeatable)")
    mem.add_argument("--series", type=int, default=1000)
    mem.add_argument("--max-samples", type=int, default=50_000_000)
    args = ap.parse_args()
    if args.cmd == "memory":
        run_memory(args)
    else:
        run_ingest(args)


if __name__ == "__main__":
    main()
