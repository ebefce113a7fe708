"""Rule evaluation, side by side: Clearsight and Prometheus 2.42 evaluate the same rule file (1,000
recording and alerting rules in 20 groups at a 15 s interval by default) over the same
remote-written data (10k node_exporter-like series, 5 min of history, then the next scrape of the
same series every 15 s while measuring: counters keep counting, no series come or go).

    .venv/bin/python bench/rules.py                                   # 10k series, 1,000 rules, 120 s
    .venv/bin/python bench/rules.py --series 2000 --rules 200 --duration 60    # quick

Both servers start on 127.0.0.1 on free ports in temp dirs and are stopped by PID. During the
measurement window the script reads both ``/metrics`` every 5 s and prints, per server:

- evaluation time per round: the sum over groups of ``*_rule_group_last_duration_seconds``
  (Prometheus: ``prometheus_rule_group_last_duration_seconds``), mean over the polls, and the ratio
  to Prometheus (below 1.0: Clearsight evaluates faster);
- the slowest group seen (max of ``last_duration``) against the interval, and missed iterations
  (``*_rule_group_iterations_missed_total``): lag;
- CPU seconds of the server process over the window (user+system; both also ingest the live scrapes)
  per group evaluation done in the window (``*_rule_group_iterations_total``), and its ratio: the
  fairest figure, because Prometheus runs every group at once (a group's wall time includes waiting
  behind the others) while Clearsight runs two at a time (time queued is not in its durations);
- pending/firing alerts at the end from ``/api/v1/alerts`` (a sanity check that both see the data).

The client and both servers share the machine's cores: ratios within one run hold, absolute numbers
mean little.

``--fanout`` runs the notification fan-out instead: 10k alerts (as ``--alerts``) posted to
``/api/v2/alerts`` in batches of 1,000 go through a routing tree (group by instance, a critical route
with ``continue``, a team regex route, the root's receiver) to webhook receivers on a local sink, in
Clearsight's built-in notifier and in Debian's Alertmanager 0.25 with the same configuration file.
Per server it prints the time from the first post to the last expected alert delivered, the webhook
requests, the alerts each receiver got against the routing tree's expectation (dropped = expected
but never delivered; duplicates counted apart) and the server's CPU seconds over that time.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workload
from tests.support import peers

from clearsight.ingest.prompb_encode import encode_labels, encode_sample, len_field, snappy

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}

RECORDING = [
    'sum by (instance) (rate(node_cpu_seconds_total{{mode!="idle"}}[{w}]))',
    "avg by (instance, mode) (rate(node_cpu_seconds_total[{w}]))",
    "sum by (instance, device) (rate(node_network_receive_bytes_total[{w}]))",
    "1 - node_filesystem_avail_bytes / node_filesystem_size_bytes",
    "max by (instance) (node_hwmon_temp_celsius)",
    "count by (instance, state) (node_systemd_unit_state == 1)",
]
# Thresholds keep most alerting rules quiet, as in production (a few fire, most never do).
ALERTING = [
    "node_filesystem_avail_bytes / node_filesystem_size_bytes < {t} / 10",
    "rate(node_network_receive_errs_total[{w}]) > {t} * 1000",
    "node_hwmon_temp_celsius > 45.5 + {t} * 2",
    'sum by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[{w}])) < {t} / 100',
]
WINDOWS = ("1m", "2m", "5m")


def rule_file(n_rules: int, groups: int) -> str:
    """``n_rules`` rules (60% recording, 40% alerting) spread over ``groups`` groups."""
    out = ["groups:"]
    per = max(1, n_rules // groups)
    i = 0
    for g in range(groups):
        out += [f"  - name: bench{g}", "    rules:"]
        for _ in range(per if g < groups - 1 else n_rules - per * (groups - 1)):
            w = WINDOWS[i % len(WINDOWS)]
            t = round(0.05 + (i % 17) / 20, 2)
            if i % 5 < 3:
                expr = RECORDING[i % len(RECORDING)].format(w=w)
                out += [f"      - record: bench:r{i}", f"        expr: '{expr}'"]
            else:
                expr = ALERTING[i % len(ALERTING)].format(w=w, t=t)
                out += [f"      - alert: Bench{i}", f"        expr: '{expr}'", "        for: 30s",
                        "        labels: {severity: warn}",
                        "        annotations: {summary: '{{ $labels.instance }} at {{ $value | humanize }}'}"]
            i += 1
    return "\n".join(out) + "\n"


class LiveScrapes:
    """The scrapes after the history: the same series (workload seed 1), values continuing the
    history's (counters keep increasing), one request per ``per_request`` series."""

    def __init__(self, n_series: int, history: int, max_scrapes: int, per_request: int = 2000) -> None:
        defs = workload.node_exporter_series(n_series)
        # sample_values draws counter steps scrape by scrape: rows 0..history-1 equal the history's
        # counters; later rows continue them (gauges take a new random walk, which does not matter).
        self.values = workload.sample_values(defs, history + max_scrapes)[history:].tolist()
        self.labels = [encode_labels(d.labels) for d in defs]
        self.per_request = per_request

    def bodies(self, k: int, t_ms: int) -> list[list[bytes]]:
        """Scrape ``k`` (0-based after the history) at ``t_ms``."""
        row = self.values[min(k, len(self.values) - 1)]
        out = []
        for a in range(0, len(self.labels), self.per_request):
            pb = b"".join(len_field(1, self.labels[i] + len_field(2, encode_sample(t_ms, row[i])))
                          for i in range(a, min(a + self.per_request, len(self.labels))))
            out.append(snappy(pb))
        return [out]


def send(urls: list[str], bodies: list[list[bytes]]) -> None:
    with httpx.Client(timeout=120) as c:
        for url in urls:
            for sender in bodies:
                for body in sender:
                    r = c.post(url + "/api/v1/write", content=body, headers=RW_HEADERS)
                    if r.status_code >= 300:
                        raise RuntimeError(f"{url}: remote write {r.status_code}: {r.text[:200]}")


_LINE = re.compile(r"^(\w+)\{([^}]*)\} (\S+)$")


def group_metrics(url: str, prefix: str) -> dict[str, dict[str, float]]:
    """``{metric suffix: {group: value}}`` for the rule group metrics."""
    out: dict[str, dict[str, float]] = {}
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        m = _LINE.match(line)
        if not m or not m.group(1).startswith(prefix):
            continue
        group = re.search(r'rule_group="([^"]*)"', m.group(2))
        if group:
            out.setdefault(m.group(1)[len(prefix):], {})[group.group(1)] = float(m.group(3))
    return out


def cpu_seconds(pid: int) -> float:
    p = psutil.Process(pid)
    t = p.cpu_times()
    return t.user + t.system


FANOUT_TREE = """
route:
  receiver: default
  group_by: [instance]
  group_wait: 1s
  group_interval: 10s
  repeat_interval: 4h
  routes:
  - matchers: ['severity="critical"']
    receiver: pager
    continue: true
  - matchers: ['team=~"db|cache"']
    receiver: db
receivers:
- name: default
  webhook_configs: [{{url: '{sink}/default', send_resolved: false}}]
- name: pager
  webhook_configs: [{{url: '{sink}/pager', send_resolved: false}}]
- name: db
  webhook_configs: [{{url: '{sink}/db', send_resolved: false}}]
"""
TEAMS = ("db", "cache", "web", "api")


def fanout_alerts(n: int) -> list[dict[str, Any]]:
    return [{"labels": {"alertname": "Load", "a": str(i), "instance": f"host-{i % 100}", "team": TEAMS[i % 4],
                        "severity": "critical" if i % 10 == 0 else "warning"}} for i in range(n)]


def fanout_expected(n: int) -> dict[str, set[int]]:
    """Alertmanager's routing of ``fanout_alerts``: critical -> pager (continue), then db/cache teams
    -> db; the root's receiver gets only the alerts no child route matched."""
    return {"pager": {i for i in range(n) if i % 10 == 0},
            "db": {i for i in range(n) if i % 4 in (0, 1)},
            "default": {i for i in range(n) if i % 4 in (2, 3) and i % 10 != 0}}


class Sink:
    """Webhook receiver on 127.0.0.1: ``/<server>/<receiver>`` paths, alerts counted by their "a" label."""

    def __init__(self) -> None:
        self.got: dict[tuple[str, str], Counter[int]] = {}
        self.requests: Counter[str] = Counter()
        self.last: dict[str, float] = {}
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                _, server, receiver = self.path.split("/")
                with sink.lock:
                    c = sink.got.setdefault((server, receiver), Counter())
                    for a in body["alerts"]:
                        c[int(a["labels"]["a"])] += 1
                    sink.requests[server] += 1
                    sink.last[server] = time.monotonic()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # the default backlog of 5 resets connections in a burst of webhooks

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def complete(self, server: str, expected: dict[str, set[int]]) -> bool:
        with self.lock:
            return all(set(self.got.get((server, r), ())) >= want for r, want in expected.items())


def fanout(n: int) -> int:
    sink = Sink()
    expected = fanout_expected(n)
    alerts = fanout_alerts(n)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        root = Path(tmp)
        for name in ("clearsight", "alertmanager"):
            cfg = FANOUT_TREE.format(sink=f"{sink.url}/{name}")
            if name == "clearsight":
                (root / "cs").mkdir()
                (root / "cs" / "am.yml").write_text(cfg)
                proc = peers.start_clearsight(root / "cs", config_yaml="alerting:\n  config_file: am.yml\n")
            else:
                proc = peers.start_alertmanager(root / "am", cfg)
            try:
                time.sleep(2)  # idle after start
                cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
                with httpx.Client(timeout=60) as c:
                    for k in range(0, n, 1000):
                        r = c.post(proc.url + "/api/v2/alerts", json=alerts[k:k + 1000])
                        if r.status_code != 200:
                            raise RuntimeError(f"{name}: POST /api/v2/alerts {r.status_code}: {r.text[:200]}")
                posted = time.monotonic() - t0
                deadline = time.monotonic() + 120
                while not sink.complete(name, expected) and time.monotonic() < deadline:
                    time.sleep(0.05)
                done = sink.last.get(name, time.monotonic()) - t0
                time.sleep(1)  # late duplicates would show
                cpu = cpu_seconds(proc.pid) - cpu0
            finally:
                proc.stop()
            got = {r: sink.got.get((name, r), Counter()) for r in expected}
            dropped = sum(len(expected[r] - set(got[r])) for r in expected)
            dups = sum(v - 1 for r in expected for v in got[r].values() if v > 1)
            extra = sum(len(set(got[r]) - expected[r]) for r in expected)
            rows.append((name, posted, done, sink.requests[name], {r: len(got[r]) for r in expected}, dropped,
                         dups, extra, cpu))
    want = {r: len(v) for r, v in expected.items()}
    print(f"\n{n:,} alerts through the routing tree; expected per receiver {want}")
    print(f"{'server':<13} {'posted s':>8} {'delivered s':>11} {'webhooks':>8} {'dropped':>7} {'dups':>5} "
          f"{'misrouted':>9} {'CPU s':>6}  alerts per receiver")
    for name, posted, done, reqs, per, dropped, dups, extra, cpu in rows:
        print(f"{name:<13} {posted:>8.2f} {done:>11.2f} {reqs:>8} {dropped:>7} {dups:>5} {extra:>9} {cpu:>6.2f}  {per}")
    print(f"\n(group_wait 1s: delivery includes it; load average {psutil.getloadavg()[0]:.1f})")
    return 1 if any(r[5] or r[7] for r in rows) else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--rules", type=int, default=1_000)
    ap.add_argument("--groups", type=int, default=20)
    ap.add_argument("--duration", type=float, default=120.0, help="measurement window, seconds")
    ap.add_argument("--fanout", action="store_true", help="the notification fan-out bench instead")
    ap.add_argument("--alerts", type=int, default=10_000, help="alerts for --fanout")
    args, _unknown = ap.parse_known_args(argv)
    if args.fanout:
        return fanout(args.alerts)

    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        root = Path(tmp)
        rules = root / "rules.yml"
        rules.write_text(rule_file(args.rules, args.groups))
        cs = peers.start_clearsight(root / "cs", config_yaml=(
            f"rules:\n  files: {rules}\n  evaluation_interval: 15s\n"))
        prom = peers.start_prometheus(root / "prom", f"global:\n  evaluation_interval: 15s\nrule_files: [{rules}]\n")
        servers = {"clearsight": cs, "prometheus": prom}
        prefixes = {"clearsight": "clearsight_rule_group_", "prometheus": "prometheus_rule_group_"}
        stop = threading.Event()
        try:
            now = int(time.time() * 1000)
            history = workload.build_payloads(args.series, 20, end_ms=now)
            t0 = time.monotonic()
            send([cs.url, prom.url], history.bodies)
            print(f"loaded {history.total_samples:,} samples x 2 servers in {time.monotonic() - t0:.1f} s; "
                  f"{args.rules} rules in {args.groups} groups at 15 s", flush=True)

            scrapes = LiveScrapes(args.series, 20, int((args.duration + 120) / 15) + 2)

            def live() -> None:
                k = 0
                while not stop.wait(15.0 - (time.time() % 15.0)):
                    try:
                        send([cs.url, prom.url], scrapes.bodies(k, int(time.time() * 1000)))
                        k += 1
                    except Exception as e:  # keep measuring; report it
                        print(f"live send failed: {e}", flush=True)

            sender = threading.Thread(target=live, daemon=True)
            sender.start()
            time.sleep(35)  # every group evaluates at least twice before the window
            cpu0 = {n: cpu_seconds(p.pid) for n, p in servers.items()}
            before = {n: group_metrics(p.url, prefixes[n]) for n, p in servers.items()}
            totals: dict[str, list[float]] = {n: [] for n in servers}
            slowest = dict.fromkeys(servers, 0.0)
            end = time.monotonic() + args.duration
            while time.monotonic() < end:
                for n, p in servers.items():
                    last = group_metrics(p.url, prefixes[n]).get("last_duration_seconds", {})
                    if len(last) == args.groups:
                        totals[n].append(sum(last.values()))
                        slowest[n] = max(slowest[n], max(last.values()))
                time.sleep(5)
            cpu = {n: cpu_seconds(p.pid) - cpu0[n] for n, p in servers.items()}
            after = {n: group_metrics(p.url, prefixes[n]) for n, p in servers.items()}

            def delta(n: str, key: str) -> float:
                return sum(after[n].get(key, {}).values()) - sum(before[n].get(key, {}).values())

            missed = {n: delta(n, "iterations_missed_total") for n in servers}
            done = {n: delta(n, "iterations_total") for n in servers}
            alerts = {}
            for n, p in servers.items():
                data = httpx.get(p.url + "/api/v1/alerts", timeout=30).json()["data"]["alerts"]
                alerts[n] = (sum(a["state"] == "pending" for a in data), sum(a["state"] == "firing" for a in data))
        finally:
            stop.set()
            for p in servers.values():
                p.stop()

    mean = {n: sum(v) / len(v) if v else float("nan") for n, v in totals.items()}
    per_eval = {n: cpu[n] / done[n] if done[n] else float("nan") for n in servers}
    print(f"\n{'server':<12} {'eval s/round':>12} {'ratio':>7} {'slowest group s':>16} {'group evals':>11} "
          f"{'missed':>7} {'CPU s':>7} {'CPU s/group eval':>16} {'ratio':>7} {'pending/firing':>15}")
    for n in servers:
        print(f"{n:<12} {mean[n]:>12.3f} {mean[n] / mean['prometheus']:>7.2f} {slowest[n]:>16.3f} "
              f"{done[n]:>11.0f} {missed[n]:>7.0f} {cpu[n]:>7.1f} {per_eval[n]:>16.3f} "
              f"{per_eval[n] / per_eval['prometheus']:>7.2f} {alerts[n][0]:>7}/{alerts[n][1]:<7}")
    print("\n'eval s/round' sums the groups' last durations: Prometheus runs all groups at once (each one's wall\n"
          "time includes waiting for the CPU behind the others), Clearsight two at a time (queued groups are\n"
          "not timed); 'CPU s/group eval' (process CPU over the window / group evaluations done) compares\n"
          "the work itself.")
    print(f"\n(interval 15 s; {len(totals['clearsight'])} polls over {args.duration:.0f} s; "
          f"load average {psutil.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
