"""Small dashboard queries, side by side: Clearsight, Prometheus 2.42 and VictoriaMetrics 1.79 fed
the same remote-write data (node_exporter-like series plus Prometheus' own request-duration
histogram), then the queries a Grafana dashboard sends most: instant selectors, instant
``max_over_time``, ``count by (__name__)``, a wide regex selector, and 1 h range panels (rate by
label, ``histogram_quantile``, ``topk``, a ratio).

    .venv/bin/python bench/small_queries.py                   # 2,360 series x 6 h at 15 s
    .venv/bin/python bench/small_queries.py --hours 1 --rounds 10 --concurrent-requests 200  # quick

Every server starts on 127.0.0.1 on a free port in a temp dir (Clearsight as ``make run`` starts it,
with default settings) and is stopped by PID. After loading, the script waits until every server is
idle, then:

1. latency and CPU: each query once to warm up, then ``--rounds`` rounds, round-robin across
   servers, one request at a time over a kept-alive connection (``http.client``: the client adds
   ~0.1 ms); per query and server the median wall latency and the server's CPU per request (its
   threads' and children's on-CPU time from /proc/<pid>/task/*/schedstat over all the rounds,
   minus what the server burnt idle over the same time, measured before), the ratios to
   Prometheus and the geometric means. CPU per request holds on a loaded machine, where wall latency is mostly
   waiting for a core;
2. correctness: whether each answer equals Prometheus' (same series, values within 1e-6 relative).
   Clearsight follows Prometheus 3's left-open range windows ``(t - range, t]``, Prometheus 2.42
   closes them, ``[t - range, t]``, so a sample exactly ``range`` before a step (the scrape jitter
   of one host in the workload lands there) is in 2.42's window only. When the literal answers
   differ, the query is sent to Clearsight again with every range widened by 1 ms (``[5m]`` ->
   ``[300001ms]``: on millisecond timestamps the same samples as 2.42's closed window) and compared
   within 1e-5 (the 1 ms moves rate's extrapolation by ~3e-6 relative): equal there is marked
   ``(2.42 window)``. ``topk`` over counters rounded to centiseconds meets exact ties, which two
   engines may break differently when their sums differ in the last bit: if every step holds the
   same values (within 1e-5) but other series, it is marked ``(2.42 window, tie)``. Prometheus 3
   also changed ``rate``'s extrapolation where a counter starts inside the window (3.x first caps the
   distance to the window's start at half a sample interval, then at the counter's zero point;
   2.42 did it the other way round), which moves the steps whose window begins before the data's
   first sample: equal on the other steps is marked ``(2.42 window, 3.x start)``. Anything else
   is ``(differs)``. See bench/README.md;
3. concurrency: 4 and 16 client threads, each with its own connection, send the same query mix
   until ``--concurrent-requests`` requests are done; requests/s, p50/p99 and server CPU per
   request, and the throughput ratio to Prometheus';
4. peak RSS of each server's process over the whole run (sampled every 0.2 s).

The client threads run on the same 2 cores as the servers: absolute numbers mean little, ratios
within one run hold better, CPU ratios best.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import itertools
import json
import math
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload
from query import start, wait_idle
from tests.conformance.compliance import runner
from tests.support import peers

ALL_TARGETS = ("clearsight", "prometheus", "victoriametrics")

# (name, kind, query): kind "instant" is evaluated at the newest sample; "range" over the last hour
# at a 15 s step (Grafana's default panel on a 1 h dashboard).
QUERIES: tuple[tuple[str, str, str], ...] = (
    ("up", "instant", "up"),
    ("node_load1", "instant", "node_load1"),
    ("max_over_time 1h", "instant", "max_over_time(node_load1[1h])"),
    ("count by __name__", "instant", 'count by (__name__) ({job="node"})'),
    (
        "wide regex",
        "instant",
        'sum by (instance) (node_network_receive_bytes_total{device=~"eth.*|ens.*|lo"})',
    ),
    ("cpu rate by mode", "range", 'sum by (mode) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))'),
    ("net rate by instance", "range", "sum by (instance) (rate(node_network_receive_bytes_total[5m]))"),
    (
        "histogram_quantile p99",
        "range",
        "histogram_quantile(0.99, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[5m])))",
    ),
    (
        "topk 5 cpu",
        "range",
        'topk(5, sum by (instance, cpu) (rate(node_cpu_seconds_total{mode="user"}[5m])))',
    ),
    (
        "memory used ratio",
        "range",
        "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
    ),
    ("load1 raw", "range", "node_load1"),
)


class Conn:
    """One kept-alive HTTP connection to a server."""

    def __init__(self, url: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.c = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            self.c.request("GET", path)
            r = self.c.getresponse()
            return r.status, r.read()
        except (http.client.HTTPException, OSError):
            self.c.close()
            self.c = http.client.HTTPConnection(self.host, self.port, timeout=120)
            raise


def query_path(kind: str, q: str, end_s: float, range_s: float = 3600, step_s: float = 15) -> str:
    if kind == "instant":
        return "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": f"{end_s:.3f}"})
    return "/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": q, "start": f"{end_s - range_s:.3f}", "end": f"{end_s:.3f}", "step": f"{step_s:g}"}
    )


def _canon(body: bytes, after_s: float | None = None) -> dict[str, list[float]]:
    """Values per series (points at ``after_s`` or later only, when given)."""
    doc = json.loads(body)
    out: dict[str, list[float]] = {}
    res = doc["data"]["result"]
    for s in res if isinstance(res, list) else []:
        key = json.dumps(s.get("metric", {}), sort_keys=True)
        pts = s.get("values") or ([s["value"]] if "value" in s else [])
        out[key] = [float(v) for ts, v in pts if after_s is None or float(ts) >= after_s]
    return out


def same(a: dict[str, list[float]], b: dict[str, list[float]], rel: float = 1e-6) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if len(x) != len(y):
            return False
        for u, v in zip(x, y, strict=True):
            if not (u == v or (math.isnan(u) and math.isnan(v)) or abs(u - v) <= rel * max(abs(u), abs(v))):
                return False
    return True


def _by_step(body: bytes) -> dict[str, list[float]]:
    """The values each step holds across all series, sorted: what a ``topk`` answer must agree on
    when tied series (equal up to float rounding) may be chosen differently."""
    steps: dict[str, list[float]] = {}
    res = json.loads(body)["data"]["result"]
    for s in res if isinstance(res, list) else []:
        for ts, v in s.get("values") or ([s["value"]] if "value" in s else []):
            steps.setdefault(f"{float(ts):.3f}", []).append(float(v))
    return {k: sorted(v) for k, v in steps.items()}


_RANGE = re.compile(r"\[(\d+)([smh])\]")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000}


def longest_range_s(q: str) -> float:
    """The longest range selector's duration in ``q``, in seconds (0 without one)."""
    return max((int(m.group(1)) * _UNIT_MS[m.group(2)] / 1000 for m in _RANGE.finditer(q)), default=0.0)


def closed_windows(q: str) -> str:
    """``q`` with every range widened by 1 ms: under left-open windows (Clearsight, Prometheus 3)
    the samples Prometheus 2.42's closed ``[t - range, t]`` sees, on millisecond timestamps."""
    return _RANGE.sub(lambda m: f"[{int(m.group(1)) * _UNIT_MS[m.group(2)] + 1}ms]", q)


def cpu_seconds(p: psutil.Process) -> float:
    """CPU time of ``p`` and its live children: the sum of every thread's on-CPU nanoseconds
    (/proc/<pid>/task/<tid>/schedstat, exact, where /proc/<pid>/stat counts 10 ms ticks). A thread
    that exits between two readings takes its time with it; both servers' threads are long-lived
    pools."""
    total = 0
    for proc in [p, *p.children(recursive=True)]:
        task_dir = Path(f"/proc/{proc.pid}/task")
        with contextlib.suppress(OSError):
            for tid in os.listdir(task_dir):
                with contextlib.suppress(OSError):
                    total += int((task_dir / tid / "schedstat").read_text().split()[0])
    return total / 1e9


def idle_cpu_rates(pids: dict[str, int], seconds: float = 2.0) -> dict[str, float]:
    """CPU seconds per second each server burns with no request (background loops)."""
    ps = {t: psutil.Process(p) for t, p in pids.items()}
    c0 = {t: cpu_seconds(p) for t, p in ps.items()}
    t0 = time.perf_counter()
    time.sleep(seconds)
    wall = time.perf_counter() - t0
    return {t: max(0.0, (cpu_seconds(p) - c0[t]) / wall) for t, p in ps.items()}


def geomean(xs: list[float]) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else math.nan


class RssSampler(threading.Thread):
    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.procs = {t: psutil.Process(p) for t, p in pids.items()}
        self.peak = dict.fromkeys(pids, 0)
        self.stop_ev = threading.Event()

    def run(self) -> None:
        while not self.stop_ev.is_set():
            for t, p in self.procs.items():
                try:
                    rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
                except psutil.Error:
                    continue
                self.peak[t] = max(self.peak[t], rss)
            self.stop_ev.wait(0.2)


def judge(
    target: str,
    q: str,
    answer: dict[str, list[float]] | str,
    prom_body: bytes | None,
    requery: Callable[[str], tuple[int, bytes]],
    first_s: float | None,
) -> str:
    """Whether ``answer`` (``_canon`` of ``target``'s answer to ``q``, or an error text) equals
    Prometheus' (``prom_body``), and if not, why (the module docstring): "same", "same with 2.42
    windows" (", tie", ", 3.x extrapolation at the start"), "differs", "error", "no reference".
    ``requery(q2)`` sends ``q2`` to Clearsight the same way (instant or range, same time)."""
    prom = _canon(prom_body) if prom_body is not None else None
    if isinstance(answer, str):
        return "error"
    if prom is None:
        return "no reference"
    if same(answer, prom):
        return "same"
    if target != "clearsight" or closed_windows(q) == q:
        return "differs"
    assert prom_body is not None
    st, body = requery(closed_windows(q))
    if st != 200:
        return "differs"
    if same(_canon(body), prom, rel=1e-5):
        return "same with 2.42 windows"
    if q.startswith(("topk", "bottomk")) and same(_by_step(body), _by_step(prom_body), rel=1e-5):
        return "same with 2.42 windows, tie"
    if first_s is not None:
        after = first_s + longest_range_s(q)
        if same(_canon(body, after_s=after), _canon(prom_body, after_s=after), rel=1e-5):
            return "same with 2.42 windows, 3.x extrapolation at the start"
    return "differs"


def _requery(conn: Conn | None, kind: str, end_s: float, q: str) -> tuple[int, bytes]:
    if conn is None:
        return 0, b""
    return conn.get(query_path(kind, q, end_s))


def latency(
    urls: dict[str, str], pids: dict[str, int], idle: dict[str, float], end_s: float, rounds: int,
    first_s: float | None = None,
) -> list[dict[str, Any]]:
    conns = {t: Conn(u) for t, u in urls.items()}
    ps = {t: psutil.Process(p) for t, p in pids.items()}
    rows = []
    for name, kind, q in QUERIES:
        path = query_path(kind, q, end_s)
        times: dict[str, list[float]] = {t: [] for t in urls}
        answers: dict[str, dict[str, list[float]] | str] = {}
        bodies: dict[str, bytes] = {}
        for t, c in conns.items():  # warm-up; keep the answer
            st, bodies[t] = c.get(path)
            answers[t] = _canon(bodies[t]) if st == 200 else f"HTTP {st}: {bodies[t][:200]!r}"
        cpu0 = {t: cpu_seconds(p) for t, p in ps.items()}
        w0 = time.perf_counter()
        for _ in range(rounds):
            for t, c in conns.items():
                t0 = time.perf_counter()
                st, _ = c.get(path)
                times[t].append(time.perf_counter() - t0)
                if st != 200:
                    answers[t] = f"HTTP {st}"
        wall = time.perf_counter() - w0
        cpu = {t: max(0.0, cpu_seconds(p) - cpu0[t] - idle[t] * wall) / rounds for t, p in ps.items()}
        prom_body = bodies["prometheus"] if isinstance(answers.get("prometheus"), dict) else None
        requery = functools.partial(_requery, conns.get("clearsight"), kind, end_s)
        verdict = {t: judge(t, q, a, prom_body, requery, first_s) for t, a in answers.items()}
        rows.append(
            {
                "name": name,
                "kind": kind,
                "query": q,
                "median_ms": {t: statistics.median(v) * 1e3 for t, v in times.items()},
                "cpu_ms": {t: v * 1e3 for t, v in cpu.items()},
                "series": {t: (len(a) if isinstance(a, dict) else a) for t, a in answers.items()},
                "same_as_prometheus": {t: v == "same" for t, v in verdict.items()},
                "verdict": verdict,
            }
        )
    return rows


def _clients(url: str, paths: list[str], clients: int, total: int) -> dict[str, float]:
    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        nonlocal errors
        c = Conn(url)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            st, _ = c.get(paths[i % len(paths)])
            d = time.perf_counter() - t0
            with lock:
                lat.append(d)
                errors += st != 200

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    lat.sort()
    return {
        "rps": len(lat) / wall,
        "p50_ms": lat[len(lat) // 2] * 1e3,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3,
        "errors": errors,
    }


def concurrency(
    urls: dict[str, str], pids: dict[str, int], end_s: float, clients: int, total: int
) -> dict[str, dict[str, float]]:
    paths = [query_path(kind, q, end_s) for _, kind, q in QUERIES]
    out = {}
    for t, url in urls.items():
        p = psutil.Process(pids[t])
        c0 = cpu_seconds(p)
        out[t] = _clients(url, paths, clients, total)
        out[t]["cpu_ms"] = (cpu_seconds(p) - c0) / total * 1e3
    return out


def build_data(series: int, hours: float, handlers: int) -> workload.Payloads:
    """The workload's remote-write requests: ``series`` node_exporter-like series and ``handlers``
    request-duration histograms, ``hours`` at 15 s ending now (printed)."""
    scrapes = int(hours * 3600_000 // workload.SCRAPE_INTERVAL_MS)
    end_ms = (int(time.time() * 1000) // 1000) * 1000
    t0 = time.perf_counter()
    payloads = workload.build_payloads(series, scrapes, end_ms=end_ms, extra=workload.http_histogram_series(handlers))
    print(
        f"data: {payloads.n_series} series x {hours:g} h at 15 s = {payloads.total_samples:,} samples, "
        f"encoded in {time.perf_counter() - t0:.1f} s"
    )
    return payloads


def push_all(procs: dict[str, peers.Proc], payloads: workload.Payloads) -> None:
    """Remote-writes every request to every server, one server after the other (printed)."""
    # round-robin over the senders keeps every series in time order
    order = [b for grp in itertools.zip_longest(*payloads.bodies) for b in grp if b is not None]
    with httpx.Client(timeout=300) as client:
        for t, proc in procs.items():
            t1 = time.perf_counter()
            runner.push(client, proc.url, order)
            print(f"  loaded {t} in {time.perf_counter() - t1:.1f} s")
        if "victoriametrics" in procs:
            client.get(procs["victoriametrics"].url + "/internal/force_flush")


def data_args(p: argparse.ArgumentParser) -> None:
    """The workload's flags (``build_data``'s arguments), shared with bench/request_floor.py."""
    p.add_argument("--series", type=int, default=2360, help="node_exporter-like series (default 2360)")
    p.add_argument("--handlers", type=int, default=8, help="histogram handlers (13 series each)")
    p.add_argument("--hours", type=float, default=6.0, help="hours of data at 15 s (default 6)")


def targets_and_args(p: argparse.ArgumentParser, argv: list[str] | None, name: str,
                     default_targets: tuple[str, ...]) -> tuple[argparse.Namespace, list[str]]:
    """``--targets`` added to ``p``, the arguments parsed (unknown ones ignored, as ``make bench``
    passes every bench the same ones) and the targets listed."""
    p.add_argument("--targets", default=",".join(default_targets))
    args, unknown = p.parse_known_args(argv)
    if unknown:
        print(f"{name}: ignoring {' '.join(unknown)}")
    return args, [t.strip() for t in args.targets.split(",") if t.strip()]


def start_all(stack: ExitStack, targets: list[str], prefix: str,
              starter: Callable[[str, Path], peers.Proc] = lambda t, wd: start(t, wd, False)) -> dict[str, peers.Proc]:
    """Every target started in a temp dir (``prefix``), stopped when ``stack`` closes."""
    wd = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
    procs: dict[str, peers.Proc] = {}
    for t in targets:
        procs[t] = starter(t, wd / t)
        stack.callback(procs[t].stop)
    return procs


def target_verdict(latency_ratios: list[float], throughput_ratios: list[float]) -> str:
    """Issue 7 point 2's targets, from one run's ratios to Prometheus: no query's median latency
    over 1.0x, their geometric mean at most 0.6x, and at least 0.5x Prometheus' requests/s at every
    client count."""
    worst, mean = max(latency_ratios), geomean(latency_ratios)
    least = min(throughput_ratios)
    met = worst <= 1.0 and mean <= 0.6 and least >= 0.5
    return (f"issue 7.2 targets (latency: worst <= 1.0x, geomean <= 0.6x; throughput >= 0.5x): worst {worst:.2f}x, "
            f"geomean {mean:.2f}x, throughput {least:.2f}x at least: {'met' if met else 'not met'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_args(p)
    p.add_argument("--rounds", type=int, default=200, help="timed rounds per query (default 200)")
    p.add_argument("--concurrent-requests", type=int, default=600, help="requests per concurrency run")
    p.add_argument("--json", type=Path, help="write the results here")
    args, targets = targets_and_args(p, argv, "bench/small_queries.py", ALL_TARGETS)
    payloads = build_data(args.series, args.hours, args.handlers)
    with ExitStack() as stack:
        procs = start_all(stack, targets, "bench-small-")
        rss = RssSampler({t: pr.pid for t, pr in procs.items()})
        rss.start()
        push_all(procs, payloads)
        waited = wait_idle(procs)
        print(f"servers idle after {waited:.1f} s")
        urls = {t: procs[t].url for t in targets}
        pids = {t: procs[t].pid for t in targets}
        end_s = payloads.last_ms / 1000
        idle = idle_cpu_rates(pids)
        load_before = os.getloadavg()
        rows = latency(urls, pids, idle, end_s, args.rounds, payloads.first_ms / 1000)
        conc = {c: concurrency(urls, pids, end_s, c, args.concurrent_requests) for c in (4, 16)}
        load_after = os.getloadavg()
        rss.stop_ev.set()
        rss.join()

    ref = "prometheus" if "prometheus" in targets else targets[0]
    others = [t for t in targets if t != ref]
    print(
        f"\nload average {load_before[0]:.2f} before the queries, {load_after[0]:.2f} after; "
        "idle CPU subtracted: " + ", ".join(f"{t} {idle[t] * 1e3:.1f} ms/s" for t in targets)
    )
    for metric, title in (
        ("median_ms", f"latency, median of {args.rounds} rounds (ms)"),
        ("cpu_ms", f"server CPU per request over {args.rounds} rounds (ms)"),
    ):
        print(f"\n{title}; ratio = server / {ref}")
        print(
            f"{'query':<24}"
            + "".join(f"{t[:12]:>13}" for t in targets)
            + "".join(f"{t[:6] + '/' + ref[:4]:>13}" for t in others)
        )
        ratios: dict[str, list[float]] = {t: [] for t in others}
        for r in rows:
            m = r[metric]
            line = f"{r['name']:<24}" + "".join(f"{m[t]:>13.3f}" for t in targets)
            for t in others:
                ratio = m[t] / m[ref] if m[ref] > 0 else math.nan
                ratios[t].append(ratio)
                v = r["verdict"].get(t, "same")
                flag = (
                    ""
                    if v == "same" or ref != "prometheus"
                    else {
                        "same with 2.42 windows": " (2.42 window)",
                        "same with 2.42 windows, tie": " (2.42 window, tie)",
                        "same with 2.42 windows, 3.x extrapolation at the start": " (2.42 window, 3.x start)",
                    }.get(v, f" ({v})")
                )
                line += f"{ratio:>12.2f}x{flag}"
            print(line)
        print(
            f"{'geomean':<24}"
            + "".join(f"{geomean([r[metric][t] for r in rows]):>13.3f}" for t in targets)
            + "".join(f"{geomean(ratios[t]):>12.2f}x" for t in others)
        )
        print(
            f"{'worst':<24}" + " " * 13 * len(targets) + "".join(f"{max(ratios[t]):>12.2f}x" for t in others)
        )
    for c, res in conc.items():
        print(f"\n{c} concurrent clients, {args.concurrent_requests} requests of the mix")
        for t in targets:
            x = res[t]
            print(
                f"  {t:<16} {x['rps']:>8.0f} req/s ({x['rps'] / res[ref]['rps']:.2f}x {ref})  "
                f"p50 {x['p50_ms']:.2f} ms  p99 {x['p99_ms']:.2f} ms  CPU {x['cpu_ms']:.2f} ms/req  "
                f"errors {x['errors']:.0f}"
            )
    print("\npeak RSS: " + ", ".join(f"{t} {rss.peak[t] / 2**20:.0f} MiB" for t in targets))
    if "clearsight" in targets and ref == "prometheus":
        lat = [r["median_ms"]["clearsight"] / r["median_ms"]["prometheus"] for r in rows]
        print("\n" + target_verdict(lat, [conc[c]["clearsight"]["rps"] / conc[c]["prometheus"]["rps"] for c in conc]))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "latency": rows,
                    "concurrency": conc,
                    "peak_rss": rss.peak,
                    "idle_cpu": idle,
                    "loadavg": [load_before, load_after],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
