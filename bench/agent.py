"""The Clearsight agent next to Debian's prometheus-node-exporter: CPU (% of one core) and RSS.

One Clearsight server on a free 127.0.0.1 port; the agent (host collector + self-metrics, both at
``--interval``) ships to it, and the same server scrapes node_exporter at the same interval, so both
do one collection per interval and their data ends in the same place. After one interval of warm-up,
for ``--duration`` seconds: CPU = (utime + stime) of the process / wall time (from /proc, % of one core),
RSS sampled every second (mean and peak). Prints both and the agent/node_exporter ratio, and how
many series of each the server holds (a check that both really worked).

    .venv/bin/python bench/agent.py                        # 10 s interval, 3 minutes
    .venv/bin/python bench/agent.py --duration 60          # quicker

Results also go to bench/results/agent.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.peers import start_clearsight, start_node_exporter  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_text()
    rest = raw[raw.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def count(url: str, expr: str) -> int:
    r = httpx.get(url + "/api/v1/query", params={"query": f"count({expr})"}, timeout=30).json()
    result = r["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interval", type=int, default=10, help="collection/scrape interval, seconds")
    ap.add_argument("--duration", type=int, default=180, help="measured seconds after one interval of warm-up")
    args, _ = ap.parse_known_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        work = Path(tmp)
        ne = start_node_exporter(work / "ne")
        target = ne.url.removeprefix("http://")
        server = start_clearsight(work / "server", config_yaml=(
            f"scrape_configs:\n- job_name: node_exporter\n  scrape_interval: {args.interval}s\n"
            f"  static_configs: [{{targets: ['{target}']}}]\n"))
        cfg = work / "agent.yaml"
        cfg.write_text(f"server: {{url: '{server.url}'}}\nmetadata: {{instance: bench-agent}}\n"
                       f"collectors: {{host: {{interval: {args.interval}s}}}}\n"
                       f"self_metrics: {{interval: {args.interval}s}}\nlog: {{level: warning}}\n")
        agent = subprocess.Popen([sys.executable, "-m", "clearsight.agent", "--config", str(cfg)],
                                 start_new_session=True)
        procs = {"agent": agent.pid, "node_exporter": ne.pid}
        try:
            time.sleep(args.interval)  # warm-up: imports, first collection, first scrape
            cpu0 = {k: cpu_seconds(p) for k, p in procs.items()}
            rss: dict[str, list[int]] = {k: [] for k in procs}
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.duration:
                for k, p in procs.items():
                    rss[k].append(rss_bytes(p))
                time.sleep(1.0)
            wall = time.monotonic() - t0
            cpu = {k: (cpu_seconds(p) - cpu0[k]) / wall * 100 for k, p in procs.items()}
            series = {"agent": count(server.url, '{instance="bench-agent"}'),
                      "node_exporter": count(server.url, '{job="node_exporter"}')}
        finally:
            os.kill(agent.pid, signal.SIGTERM)
            agent.wait(30)
            server.stop()
            ne.stop()

    load = os.getloadavg()
    print(f"interval {args.interval}s, measured {wall:.0f}s, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'':15} {'CPU % of a core':>16} {'RSS mean MiB':>13} {'RSS peak MiB':>13} {'series':>7}")
    result: dict[str, dict[str, float]] = {}
    for k in procs:
        mean, peak = sum(rss[k]) / len(rss[k]) / 2**20, max(rss[k]) / 2**20
        result[k] = {"cpu_percent": cpu[k], "rss_mean_mib": mean, "rss_peak_mib": peak, "series": series[k]}
        print(f"{k:15} {cpu[k]:16.3f} {mean:13.1f} {peak:13.1f} {series[k]:7d}")
    a, n = result["agent"], result["node_exporter"]
    ratio_cpu = a["cpu_percent"] / n["cpu_percent"] if n["cpu_percent"] else float("inf")
    print(f"{'agent / ne':15} {ratio_cpu:15.2f}x {a['rss_mean_mib'] / n['rss_mean_mib']:12.2f}x "
          f"{a['rss_peak_mib'] / n['rss_peak_mib']:12.2f}x")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "agent.json").write_text(json.dumps({"interval_s": args.interval, "measured_s": wall,
                                                "loadavg": load, **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
