"""A live Node Exporter dashboard, side by side, the way a new user meets Clearsight: real
node_exporter processes scraped by Debian's Prometheus 2.42, which remote-writes every sample to
Clearsight (started as ``make run`` starts it, default settings) while both answer the panels of
Grafana's "Node Exporter Full" dashboard at *now*, with ingest still running.

    .venv/bin/python bench/live_dashboard.py                       # 2 exporters, 5 min of data
    .venv/bin/python bench/live_dashboard.py --minutes 2 --rounds 30   # quick

The dashboard's queries are the ones Grafana sends when the page opens or refreshes: instant gauges
(CPU busy, load, RAM, root FS, uptime, cores) and range panels over the data collected so far
(at most the last hour) at a 15 s step. Each query is sent once to warm up, then ``--rounds``
rounds, round-robin between the servers over kept-alive connections, each evaluated at the
current time. Printed per query: median latency and the server's CPU per request (its threads'
on-CPU time over the rounds, minus its idle burn with ingest running, measured just before), both
as ratios to Prometheus, then geometric means. Answers are compared once at ``now - 60 s`` (both
servers have every sample by then): ``same`` or ``differs``.

Unlike bench/small_queries.py (preloaded synthetic data, evaluated at the data's end), the data here
is real and still arriving, every query asks for *now*, and the store's newest samples are the ones
read: the case a dashboard refresh hits.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from contextlib import ExitStack
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from small_queries import Conn, RssSampler, _canon, cpu_seconds, geomean, idle_cpu_rates, same
from tests.support import peers

# (name, kind, query with $i for the instance): Node Exporter Full's panels (dashboard 1860).
PANELS: tuple[tuple[str, str, str], ...] = (
    ("up", "instant", 'up{job="node"}'),
    ("cpu busy", "instant", '100 * (1 - avg(rate(node_cpu_seconds_total{mode="idle", instance="$i"}[1m])))'),
    ("sys load 5m", "instant",
     'scalar(node_load5{instance="$i"}) * 100 / count(count(node_cpu_seconds_total{instance="$i"}) by (cpu))'),
    ("ram used", "instant",
     '100 - ((node_memory_MemAvailable_bytes{instance="$i"} * 100) / node_memory_MemTotal_bytes{instance="$i"})'),
    ("root fs used", "instant",
     '100 - ((node_filesystem_avail_bytes{instance="$i",mountpoint="/",fstype!="rootfs"} * 100) '
     '/ node_filesystem_size_bytes{instance="$i",mountpoint="/",fstype!="rootfs"})'),
    ("uptime", "instant", 'node_time_seconds{instance="$i"} - node_boot_time_seconds{instance="$i"}'),
    ("cpu cores", "instant", 'count(count(node_cpu_seconds_total{instance="$i"}) by (cpu))'),
    ("ram total", "instant", 'node_memory_MemTotal_bytes{instance="$i"}'),
    ("cpu basic", "range",
     'sum by (instance) (irate(node_cpu_seconds_total{instance="$i",mode="system"}[1m])) / on(instance) '
     'group_left sum by (instance) ((irate(node_cpu_seconds_total{instance="$i"}[1m])))'),
    ("cpu by mode", "range", 'sum by (mode) (irate(node_cpu_seconds_total{instance="$i",mode!="idle"}[1m]))'),
    ("memory basic", "range",
     'node_memory_MemTotal_bytes{instance="$i"} - node_memory_MemFree_bytes{instance="$i"} '
     '- (node_memory_Cached_bytes{instance="$i"} + node_memory_Buffers_bytes{instance="$i"})'),
    ("network rx", "range", 'irate(node_network_receive_bytes_total{instance="$i"}[1m]) * 8'),
    ("disk space used", "range",
     '100 - ((node_filesystem_avail_bytes{instance="$i",device!~"rootfs"} * 100) '
     '/ node_filesystem_size_bytes{instance="$i",device!~"rootfs"})'),
    ("load", "range", 'node_load1{instance="$i"}'),
)

PROMETHEUS_CONFIG = """global:
  scrape_interval: {interval}s
  evaluation_interval: 1m
scrape_configs:
  - job_name: node
    static_configs:
      - targets: [{targets}]
remote_write:
  - url: {url}/api/v1/write
    queue_config:
      batch_send_deadline: 1s
"""


def path_of(kind: str, q: str, at_s: float, range_s: float) -> str:
    if kind == "instant":
        return "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": f"{at_s:.3f}"})
    step = 15
    end = at_s // step * step  # Grafana aligns range panels to the step
    return "/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": q, "start": f"{end - range_s:.0f}", "end": f"{end:.0f}", "step": str(step)})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exporters", type=int, default=2, help="node_exporter processes (default 2)")
    p.add_argument("--minutes", type=float, default=5.0, help="minutes of data collected before querying")
    p.add_argument("--scrape-interval", type=int, default=5, help="seconds (default 5)")
    p.add_argument("--rounds", type=int, default=100)
    args, unknown = p.parse_known_args(argv)
    if unknown:
        print(f"bench/live_dashboard.py: ignoring {' '.join(unknown)}")
    with ExitStack() as stack:
        wd = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-live-")))
        exporters = [peers.start_node_exporter(wd / f"ne{i}") for i in range(args.exporters)]
        for e in exporters:
            stack.callback(e.stop)
        cs = peers.start_clearsight(wd / "clearsight")
        stack.callback(cs.stop)
        targets = ", ".join(f'"{urllib.parse.urlsplit(e.url).netloc}"' for e in exporters)
        prom = peers.start_prometheus(wd / "prometheus", PROMETHEUS_CONFIG.format(
            interval=args.scrape_interval, targets=targets, url=cs.url))
        stack.callback(prom.stop)
        servers = {"clearsight": cs, "prometheus": prom}
        pids = {t: s.pid for t, s in servers.items()}
        rss = RssSampler(pids)
        rss.start()
        print(f"{args.exporters} node_exporter(s) scraped every {args.scrape_interval} s by Prometheus, "
              f"remote-written to Clearsight; collecting {args.minutes:g} min")
        started = time.time()
        time.sleep(args.minutes * 60)
        range_s = min(3600.0, time.time() - started)
        instance = urllib.parse.urlsplit(exporters[0].url).netloc
        idle = idle_cpu_rates(pids, 5.0)  # ingest keeps running: its CPU is subtracted
        conns = {t: Conn(s.url) for t, s in servers.items()}
        ps = {t: psutil.Process(pid) for t, pid in pids.items()}
        rows = []
        for name, kind, q in PANELS:
            q = q.replace("$i", instance)
            ref = path_of(kind, q, time.time() - 60, range_s)
            answers = {t: c.get(ref) for t, c in conns.items()}
            verdict = ("same" if all(st == 200 for st, _ in answers.values())
                       and same(_canon(answers["clearsight"][1]), _canon(answers["prometheus"][1]), rel=1e-6)
                       else "differs")
            times: dict[str, list[float]] = {t: [] for t in servers}
            cpu0 = {t: cpu_seconds(pr) for t, pr in ps.items()}
            w0 = time.perf_counter()
            for _ in range(args.rounds):
                for t, c in conns.items():
                    path = path_of(kind, q, time.time(), range_s)
                    t0 = time.perf_counter()
                    st, _ = c.get(path)
                    times[t].append(time.perf_counter() - t0)
                    if st != 200:
                        verdict = f"HTTP {st} from {t}"
            wall = time.perf_counter() - w0
            cpu = {t: max(0.0, cpu_seconds(pr) - cpu0[t] - idle[t] * wall) / args.rounds * 1e3
                   for t, pr in ps.items()}
            rows.append((name, kind, {t: statistics.median(v) * 1e3 for t, v in times.items()}, cpu, verdict))
        rss.stop_ev.set()
        rss.join()
    load = os.getloadavg()
    print(f"\nrange panels over the last {range_s / 60:.1f} min at 15 s; load average {load[0]:.2f}; idle (ingest) "
          "CPU subtracted: " + ", ".join(f"{t} {v * 1e3:.1f} ms/s" for t, v in idle.items()))
    print(f"{'panel':<18}{'kind':>8}{'cs ms':>9}{'prom ms':>9}{'ratio':>7}{'cs cpu':>9}{'prom cpu':>9}{'ratio':>7}"
          "  answer")
    lat_r, cpu_r = [], []
    for name, kind, med, cpu, verdict in rows:
        lr = med["clearsight"] / med["prometheus"]
        cr = cpu["clearsight"] / cpu["prometheus"] if cpu["prometheus"] > 0 else float("nan")
        lat_r.append(lr)
        cpu_r.append(cr)
        print(f"{name:<18}{kind:>8}{med['clearsight']:>9.3f}{med['prometheus']:>9.3f}{lr:>7.2f}"
              f"{cpu['clearsight']:>9.3f}{cpu['prometheus']:>9.3f}{cr:>7.2f}  {verdict}")
    print(f"geometric mean: latency {geomean(lat_r):.2f}x Prometheus (worst {max(lat_r):.2f}x), "
          f"server CPU {geomean(cpu_r):.2f}x")
    print("peak RSS: " + ", ".join(f"{t} {v / 2**20:.0f} MiB" for t, v in rss.peak.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
