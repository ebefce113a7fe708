"""Log ingest and search over HTTP: lines/s pushed to a real server, the server's CPU-seconds per
million lines and peak RSS, bytes on disk per line against the raw text, and a rare-substring query
against ``grep -F -c`` over the same lines in a file.

``python bench/logs.py [--lines 10000000] [--hours 24] [--protocol loki-json|loki-pb|otlp|bulk] [--senders 4]
[--batch 1000] [--pii] [--ingest-only] [--queries all|substring]``. Starts ``clearsight server`` on a temporary data directory,
pushes requests (lines from ``bench/log_decode.py``: ~200 bytes, 6 services, JSON and logfmt bodies,
timestamps spread over ``--hours`` up to now) from ``--senders`` threads, stops the server (SIGTERM:
the log store seals its heads and checkpoints), measures ``logs.duckdb``, restarts it and times
``{service=~".+"} |= "<needle>"`` (one line holds the needle) through ``/loki/api/v1/query_range``
(best of 3) and ``grep -F -c`` on the raw lines; then LogQL metric queries over the window
(``sum by (level) (count_over_time(...[5m]))``, ``sum by (level) (rate(... | json ...[5m]))``,
``| json | status >= 500`` counted) against a grep counting the same in one pass. CPU figures are
the server process's user+system time (``/proc/<pid>/stat``), which a shared machine's load does
not inflate the way it does wall time. The defaults are the issue's 10M lines in a 24 h window (about
20 minutes here and a few GB of memory for the generated requests); the server runs with
``query.timeout`` 30m, and a refused query prints its status and answer. Not a test: figures depend
on the (shared) machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.log_decode import loki_pb, make_lines, otlp_pb
from tests.support.peers import free_port

NEEDLE = "needle-7f3a9c-rare"
QUERY_TIMEOUT_S = 1800  # the server's query.timeout here: the Python-parsed queries over 10M lines take minutes


def _start(data: Path, port: int, config: Path | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "clearsight", "server", "--data-dir", str(data), "--listen",
                             f"127.0.0.1:{port}", "--otlp-http-listen", "", "--otlp-grpc-listen", "",
                             *(["--config", str(config)] if config else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ready")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not become ready")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


Row = tuple[int, str, str, str]


def _loki_json(rows: list[Row], batch: int) -> list[bytes]:
    bodies = []
    for k in range(0, len(rows), batch):
        streams: dict[tuple[str, str], list[list[str]]] = {}
        for t, svc, lvl, body in rows[k:k + batch]:
            streams.setdefault((svc, lvl), []).append([str(t), body])
        bodies.append(json.dumps({"streams": [{"stream": {"service": s, "level": lv}, "values": v}
                                              for (s, lv), v in streams.items()]}).encode())
    return bodies


def _bulk(rows: list[Row], batch: int) -> list[bytes]:
    """Elasticsearch _bulk NDJSON as Filebeat sends it (ECS fields; @timestamp with microseconds)."""
    action = b'{"create":{"_index":"logs-app"}}'
    bodies = []
    for k in range(0, len(rows), batch):
        parts = []
        for t, svc, lvl, body in rows[k:k + batch]:
            secs, ns = divmod(t, 10**9)
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ns // 1000:06d}Z"
            parts += [action, json.dumps({"@timestamp": ts, "message": body, "log": {"level": lvl},
                                          "service": {"name": svc}, "host": {"name": "web-1"}}).encode()]
        bodies.append(b"\n".join(parts) + b"\n")
    return bodies


# protocol -> (path, content type, encoder of rows in requests of ``batch`` lines, selector of every line)
PROTOCOLS: dict[str, tuple[str, str, Any, str]] = {
    "loki-json": ("/loki/api/v1/push", "application/json", _loki_json, '{service=~".+"}'),
    "loki-pb": ("/loki/api/v1/push", "application/x-protobuf",
                lambda rows, batch: [b for k in range(0, len(rows), batch) for b in loki_pb(rows[k:k + batch])],
                '{service_name=~".+"}'),
    "otlp": ("/v1/logs", "application/x-protobuf",
             lambda rows, batch: [b for k in range(0, len(rows), batch) for b in otlp_pb(rows[k:k + batch])],
             '{service_name=~".+"}'),
    "bulk": ("/_bulk", "application/x-ndjson", _bulk, '{index="logs-app"}'),
}
OK_STATUS = {"/loki/api/v1/push": 204, "/v1/logs": 200, "/_bulk": 200}


def _free_blocks(db: Path) -> str:
    """DuckDB's own account of the file: used and free blocks (a file never shrinks)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        block, total, used, free = con.execute(
            "SELECT block_size, total_blocks, used_blocks, free_blocks FROM pragma_database_size()").fetchone() or (0,) * 4
    finally:
        con.close()
    return f"{total} blocks of {block // 1024} KiB, {used} used, {free} free"


def _timed_get(port: int, path: str, params: dict[str, str]) -> tuple[float, dict[str, Any]] | None:
    """Best of 3 wall times of one GET and its JSON answer; None (the answer printed) when the
    server refuses the query (the other queries still run)."""
    q = urllib.parse.urlencode(params)
    best, out = 1e9, {}
    for _ in range(3):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=QUERY_TIMEOUT_S + 60)
        t = time.perf_counter()
        c.request("GET", f"{path}?{q}")
        r = c.getresponse()
        raw = r.read()
        best = min(best, time.perf_counter() - t)
        if r.status != 200:
            print(f"ERROR {params['query']}: HTTP {r.status} ({r.getheader('Content-Type')}) after "
                  f"{time.perf_counter() - t:.1f} s: {raw[:500]!r}", flush=True)
            return None
        out = json.loads(raw)
    return best, out


def _grep(args: list[str], raw: Path) -> tuple[float, str]:
    best, out = 1e9, ""
    for _ in range(3):
        t = time.perf_counter()
        g = subprocess.run(["grep", *args, str(raw)], capture_output=True, text=True, check=False)
        best = min(best, time.perf_counter() - t)
        out = g.stdout.strip()
    return best, out


def _metric_queries(port: int, now: int, raw: Path, sel: str, hours: float) -> None:
    """LogQL metric queries over the whole data set (query_range over the hour, step 1m) against a
    grep that counts the same thing in one pass over the raw file."""
    ns = 10**9
    rng = {"start": str(now - int(hours * 3600) * ns), "end": str(now + ns), "step": str(max(60, int(hours * 60)))}
    whole = f"{max(1, round(hours))}h"
    cases = [
        (f"sum by (level) (count_over_time({sel}[5m]))", ["-E", "-c", "level.{0,3}error"],
         "count_over_time by level (store-side: no bodies read)"),
        (f'sum by (level) (rate({sel} | json | __error__="" [5m]))', ["-F", "-c", '"level":"error"'],
         "sum by (level) (rate(... | json ...)) (the JSON lines parsed in Python)"),
        (f'sum(count_over_time({sel} | json | __error__="" | status >= 500 [{whole}]))',
         ["-F", "-c", '"status":500'], "| json | status >= 500 counted over the window (store-side prefilter, then Python)"),
    ]
    for query, grep_args, what in cases:
        got = _timed_get(port, "/loki/api/v1/query_range", {"query": query, **rng})
        if got is None:
            continue
        t, out = got
        gt, gout = _grep(grep_args, raw)
        summary = out["data"]["stats"]["summary"]
        lines = summary["totalLinesProcessed"]
        print(f"{what}: query_range {t * 1000:.0f} ms ({lines:,} lines read, {lines / t:,.0f} lines/s, "
              f"{len(out['data']['result'])} series) vs grep {' '.join(grep_args)} {gt * 1000:.1f} ms ({gout}) -> "
              f"{t / gt:.1f}x grep")


def _pii_step_alone(bodies: list[str]) -> None:
    """Lines/s of the PII scrubbing step alone (one thread), over batches of 1,000 of ``bodies``."""
    from clearsight.model.logs import LogBatch, LogEntry
    from clearsight.pipeline.log_settings import PiiSettings
    from clearsight.pipeline.pii import PiiScrubber

    batches = [LogBatch.from_entries([LogEntry((("service", "s"),), i, b) for i, b in enumerate(bodies[k:k + 1000])])
               for k in range(0, len(bodies), 1000)]
    for label, settings in (("email+ssn+card", PiiSettings(enabled=True)),
                            ("all kinds incl. ipv4/ipv6", PiiSettings(enabled=True, ipv4=True, ipv6=True))):
        scrubber = PiiScrubber(settings, b"k" * 32)
        t = time.process_time()
        for batch in batches:
            scrubber.scrub_batch(batch)
        cpu = time.process_time() - t
        print(f"pii step alone ({label}): {len(bodies) / cpu:,.0f} lines/s per core "
              f"({scrubber.replacements} replacements)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--pii", action="store_true", help="PII scrubbing on (logs.pipeline.pii), 1 line in 20 "
                    "holding an email and a card number; also times the scrubbing step alone in this process")
    ap.add_argument("--ingest-only", action="store_true", help="stop after the ingest and disk figures")
    ap.add_argument("--hours", type=float, default=24.0, help="the lines' timestamps span this many hours up to now")
    ap.add_argument("--protocol", choices=sorted(PROTOCOLS), default="loki-json")
    ap.add_argument("--queries", choices=["all", "substring"], default="all",
                    help="substring: only the rare-substring search (the metric queries over 10M lines take minutes)")
    args, _ = ap.parse_known_args(argv)
    now = time.time_ns()
    lines = make_lines(args.lines)
    span = int(args.hours * 3600e9 * 5 / 6)  # the lines fill the window's last 5/6
    step = span // max(1, args.lines)
    rows = [(now - span + i * step, svc, lvl, body) for i, (_t, svc, lvl, body) in enumerate(lines)]
    del lines
    mid = len(rows) // 2
    rows[mid] = (rows[mid][0], rows[mid][1], rows[mid][2], rows[mid][3] + " " + NEEDLE)
    if args.pii:
        rows = [(t, svc, lvl, body + " user=jane.doe@example.com card=4111 1111 1111 1111" if i % 20 == 0 else body)
                for i, (t, svc, lvl, body) in enumerate(rows)]
        _pii_step_alone([r[3] for r in rows])
    path, ctype, encode, sel = PROTOCOLS[args.protocol]
    bodies: list[bytes] = encode(rows, args.batch)
    tmp = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    raw = tmp / "raw.log"
    with raw.open("w") as fh:  # in pieces: 10M lines are ~2 GB
        for k in range(0, len(rows), 100_000):
            fh.write("".join(r[3] + "\n" for r in rows[k:k + 100_000]))
    del rows
    port = free_port()
    config = tmp / "clearsight.yaml"
    config.write_text(f"query:\n  timeout: {QUERY_TIMEOUT_S}s\n"
                      + ("logs:\n  pipeline:\n    pii: {enabled: true}\n" if args.pii else ""))
    proc = _start(tmp / "data", port, config)
    try:
        todo = list(range(len(bodies)))
        lock = threading.Lock()
        failures: list[int] = []

        def sender() -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                c.request("POST", path, body=bodies[i], headers={"Content-Type": ctype})
                r = c.getresponse()
                answer = r.read()
                if r.status != OK_STATUS[path] or (path == "/_bulk" and b'"errors":true' in answer):
                    failures.append(r.status)

        cpu0 = _cpu_s(proc.pid)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=sender) for _ in range(args.senders)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        cpu = _cpu_s(proc.pid) - cpu0
        print(f"ingest: {args.lines} lines over HTTP ({args.protocol}, {args.senders} senders, {args.batch}/request) "
              f"in {wall:.2f} s = {args.lines / wall:,.0f} lines/s, {raw.stat().st_size / wall / 1e6:.1f} MB/s raw "
              f"text; server CPU {cpu:.2f} s = {cpu / args.lines * 1e6:.2f} CPU-s per million lines "
              f"({args.lines / cpu:,.0f} lines per CPU-second); server peak RSS {_peak_rss_mib(proc.pid):.0f} MiB; "
              f"load average {os.getloadavg()[0]:.1f}"
              + (f"; {len(failures)} failed requests {sorted(set(failures))}" if failures else ""))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    db = tmp / "data" / "logs.duckdb"
    size = db.stat().st_size + (os.path.getsize(str(db) + ".wal") if os.path.exists(str(db) + ".wal") else 0)
    rawsize = raw.stat().st_size
    print(f"disk: {size / args.lines:.1f} B/line in logs.duckdb vs {rawsize / args.lines:.1f} B/line raw text "
          f"(compression {rawsize / size:.2f}x); {_free_blocks(db)}")
    if args.ingest_only:
        shutil.rmtree(tmp, ignore_errors=True)
        return 0
    proc = _start(tmp / "data", port, config)
    try:
        got = _timed_get(port, "/loki/api/v1/query_range", {
            "query": f'{sel} |= "{NEEDLE}"', "start": str(now - int((args.hours + 1) * 3600e9)),
            "end": str(now + 10**9), "limit": "100"})
        best, out = got if got is not None else (float("nan"), {"data": {"result": []}})
        found = sum(len(s["values"]) for s in out["data"]["result"])
        gbest = 1e9
        for _ in range(3):
            t = time.perf_counter()
            g = subprocess.run(["grep", "-F", "-c", NEEDLE, str(raw)], capture_output=True, text=True, check=False)
            gbest = min(gbest, time.perf_counter() - t)
        print(f"rare substring: query_range {best * 1000:.1f} ms ({found} line) vs grep -F -c {gbest * 1000:.1f} ms "
              f"({g.stdout.strip()} line) -> {best / gbest:.1f}x grep")
        if args.queries == "all":
            _metric_queries(port, now, raw, sel, args.hours)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
