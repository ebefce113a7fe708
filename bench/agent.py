"""The Clearsight agent next to Debian's prometheus-node-exporter: CPU (% of one core) and RSS, then
the agent's log-tailing throughput end to end.

One Clearsight server on a free 127.0.0.1 port; the agent (host, containers, a file source and
self-metrics, all at ``--interval``) ships to it, and the same server scrapes node_exporter at the same
interval, so both do one collection per interval and their data ends in the same place. Containers:
``--containers N`` busybox containers under real podman + runc (``podman system service`` as the
Engine API; 0 skips). The file source follows a log the bench appends 10 lines/s to. After one
interval of warm-up, for ``--duration`` seconds: CPU = (utime + stime) of the process / wall time (from
/proc, % of one core), RSS sampled every second (mean and peak). Prints both and the
agent/node_exporter ratio, and how many series of each the server holds (a check that both worked).

Then the tailing phase: ``--lines`` lines (about 100 bytes each) are appended as fast as Python writes
them to a second file the agent follows (polled every second); the time until the server has
committed all of them (its ``clearsight_ingested_log_lines_total``) gives lines/s end to end, and the
agent's CPU seconds over that time give lines/s per core of the agent.

    .venv/bin/python bench/agent.py                        # 10 s interval, 3 minutes, 200k lines
    .venv/bin/python bench/agent.py --duration 60          # quicker
    .venv/bin/python bench/agent.py --protocol http        # remote-write + OTLP/HTTP (shipper.protocol)

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

from tests.integration.test_agent_containers import RUN_FLAGS, Podman  # noqa: E402
from tests.support.peers import free_port, start_clearsight, start_node_exporter  # noqa: E402

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


def ingested_log_lines(url: str) -> float:
    total = 0.0
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith("clearsight_ingested_log_lines_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def tail_throughput(url: str, path: Path, lines: int, agent_pid: int) -> dict[str, float]:
    before = ingested_log_lines(url)
    cpu0 = cpu_seconds(agent_pid)
    t0 = time.monotonic()
    pad = "x" * 60
    with open(path, "a") as fh:
        for i in range(lines):
            fh.write(f"2026-12-04T21:00:00.000Z level=info seq={i} msg=bench {pad}\n")
    written = time.monotonic() - t0
    while ingested_log_lines(url) - before < lines:
        if time.monotonic() - t0 > 600:
            raise SystemExit(f"only {ingested_log_lines(url) - before:.0f} of {lines} lines after 600 s")
        time.sleep(0.2)
    wall = time.monotonic() - t0
    cpu = cpu_seconds(agent_pid) - cpu0
    return {"lines": lines, "write_s": written, "wall_s": wall, "agent_cpu_s": cpu,
            "lines_per_s": lines / wall, "lines_per_cpu_s": lines / cpu if cpu else float("inf")}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interval", type=int, default=10, help="collection/scrape interval, seconds")
    ap.add_argument("--duration", type=int, default=180, help="measured seconds after one interval of warm-up")
    ap.add_argument("--containers", type=int, default=3, help="busybox containers under podman (0: none)")
    ap.add_argument("--lines", type=int, default=200_000, help="lines for the tailing phase (0: skip)")
    ap.add_argument("--protocol", choices=("http", "grpc"), default="grpc", help="the agent's shipper.protocol (default grpc, as the agent's)")
    args, _ = ap.parse_known_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        work = Path(tmp)
        podman = None
        if args.containers:
            (work / "podman").mkdir()
            podman = Podman(work / "podman")
            image = podman.import_busybox()
            for i in range(args.containers):
                podman("run", "-d", "--name", f"bench-{i}", *RUN_FLAGS, image, "/bin/sh", "-c",
                       "while :; do sleep 1; done")
            podman.start_service()
        logs = work / "logs"
        logs.mkdir()
        ne = start_node_exporter(work / "ne")
        target = ne.url.removeprefix("http://")
        grpc_port = free_port()
        server = start_clearsight(work / "server", config_yaml=(
            f"scrape_configs:\n- job_name: node_exporter\n  scrape_interval: {args.interval}s\n"
            f"  static_configs: [{{targets: ['{target}']}}]\n"), args=["--otlp-grpc-listen", f"127.0.0.1:{grpc_port}"])
        cfg = work / "agent.yaml"
        containers = (f"{{interval: {args.interval}s, socket: '{podman.socket}'}}" if podman
                      else "{enabled: false}")
        cfg.write_text(f"server: {{url: '{server.url}', grpc_address: '127.0.0.1:{grpc_port}'}}\n"
                       f"shipper: {{protocol: {args.protocol}}}\nmetadata: {{instance: bench-agent}}\n"
                       f"state: {{dir: '{work / 'state'}'}}\nheartbeat: {{interval: 30s}}\n"
                       f"collectors:\n  host: {{interval: {args.interval}s}}\n  containers: {containers}\n"
                       f"  files:\n  - {{path: '{logs / 'app.log'}', service: app, interval: {args.interval}s}}\n"
                       f"  - {{path: '{logs / 'fast.log'}', service: fast, interval: 1s, collapse: false}}\n"
                       f"self_metrics: {{interval: {args.interval}s}}\nlog: {{level: warning}}\n")
        agent = subprocess.Popen([sys.executable, "-m", "clearsight.agent", "--config", str(cfg)],
                                 start_new_session=True)
        procs = {"agent": agent.pid, "node_exporter": ne.pid}
        try:
            time.sleep(args.interval)  # warm-up: imports, first collection, first scrape
            cpu0 = {k: cpu_seconds(p) for k, p in procs.items()}
            rss: dict[str, list[int]] = {k: [] for k in procs}
            t0 = time.monotonic()
            n = 0
            while time.monotonic() - t0 < args.duration:
                for k, p in procs.items():
                    rss[k].append(rss_bytes(p))
                with open(logs / "app.log", "a") as fh:
                    for _ in range(10):
                        n += 1
                        fh.write(f"level=info msg=request n={n}\n")
                time.sleep(1.0)
            wall = time.monotonic() - t0
            cpu = {k: (cpu_seconds(p) - cpu0[k]) / wall * 100 for k, p in procs.items()}
            series = {"agent": count(server.url, '{instance="bench-agent"}'),
                      "node_exporter": count(server.url, '{job="node_exporter"}')}
            containers_seen = count(server.url, 'clearsight_container_state{instance="bench-agent"}')
            tail = tail_throughput(server.url, logs / "fast.log", args.lines, agent.pid) if args.lines else {}
        finally:
            os.kill(agent.pid, signal.SIGTERM)
            agent.wait(30)
            server.stop()
            ne.stop()
            if podman is not None:
                podman.stop()

    load = os.getloadavg()
    print(f"protocol {args.protocol}, interval {args.interval}s, measured {wall:.0f}s, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
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
    print(f"agent: host + {containers_seen} containers + a file at {args.interval}s")
    if tail:
        print(f"tailing: {tail['lines']:.0f} lines written in {tail['write_s']:.2f}s, all committed by the server "
              f"after {tail['wall_s']:.2f}s: {tail['lines_per_s']:.0f} lines/s end to end; agent CPU "
              f"{tail['agent_cpu_s']:.2f}s: {tail['lines_per_cpu_s']:.0f} lines per CPU-second of the agent")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "agent.json").write_text(json.dumps({"protocol": args.protocol, "interval_s": args.interval, "measured_s": wall,
                                                "loadavg": load, "containers": containers_seen, "tail": tail,
                                                **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
