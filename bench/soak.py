"""Soak and chaos: mixed ingest, queries and slow clients against a real ``clearsight server``, with
``kill -9`` of the server mid-ingest and restarts, its RSS sampled all along.

Starts the server on a free port in a temporary directory with the limits below (``CONFIG``), then
for ``--minutes``:

- ``--senders`` threads remote-write ``--series`` counters (split between them), one sample per
  series per 15 s of *data time*, paced so that ``--data-hours`` of data arrive during the run
  (the 24 h-equivalent: ``--data-hours 24``); a refused or failed request is re-sent until it is
  acknowledged (204), as Prometheus does;
- ``--queries`` threads run range and instant queries over the data written so far;
- ``--slow`` clients each hold a connection sending its body (or headers) one byte at a time, until
  the server's read deadlines cut them off, then reconnect;
- the server is killed with SIGKILL ``--kills`` times, evenly spaced, and restarted on the same data
  directory and port.

At the end the server is stopped (SIGTERM) and the store is opened in-process: every acknowledged
sample must be there. The server's RSS is compared with a bound computed from the configured
limits (``rss_bound``). Prints the figures; exits 1 on acknowledged loss or RSS above the bound.

Usage:
  .venv/bin/python bench/soak.py                        # the full soak: 60 min, 24 h of data
  .venv/bin/python bench/soak.py --minutes 2 --series 300 --data-hours 2 --kills 2   # CI size
"""

from __future__ import annotations

import argparse
import json
import os
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
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy

STEP_MS = 15_000
MIB = 1 << 20
# The server's limits during the soak (small, so that the RSS bound below is meaningful).
LIMITS = {
    "duckdb_memory_limit_mb": 128,
    "chunk_bytes_cache_bytes": 16 * MIB,
    "decoded_chunk_cache_samples": 500_000,
    "max_body_bytes": 8 * MIB,
    "max_inflight_body_bytes": 32 * MIB,
    "query_max_samples": 2_000_000,
    "query_max_concurrency": 2,
    "ingest_workers": 2,
}
CONFIG = f"""
server:
  header_read_timeout: 3s
  body_read_timeout: 5s
  keep_alive_timeout: 5s
  ingest_workers: {LIMITS["ingest_workers"]}
  max_inflight_body_bytes: {LIMITS["max_inflight_body_bytes"]}
storage:
  duckdb_memory_limit: {LIMITS["duckdb_memory_limit_mb"]}MB
  chunk_bytes_cache_bytes: {LIMITS["chunk_bytes_cache_bytes"]}
  decoded_chunk_cache_samples: {LIMITS["decoded_chunk_cache_samples"]}
  retention: 30d
limits:
  max_body_bytes: {LIMITS["max_body_bytes"]}
query:
  max_samples: {LIMITS["query_max_samples"]}
  max_concurrency: {LIMITS["query_max_concurrency"]}
  timeout: 20s
"""
QUERIES = [
    ("range", "sum by (job) (rate(soak_requests_total[5m]))"),
    ("range", "topk(5, rate(soak_requests_total[15m]))"),
    ("instant", "count(soak_requests_total)"),
    ("instant", "sum(increase(soak_requests_total[1h]))"),
]
HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


def rss_bound(series: int, base_rss: int) -> int:
    """Bytes the server may hold, from the configured limits (docs/storage.md, Memory):
    the process at start, DuckDB's buffer limit, the chunk caches, the head mirror (20 B/row, up to
    twice its compaction bound of max(1M, 120 x series) rows, plus a merge's copy), the writer's
    decoded window (2M x 16 B), ~2 KB per series (labels, index, caches: measured ~1.2 KB), the
    request bodies in flight (plus their decompressed copies, x4) and the queries' samples
    (max_samples x 16 B per running query), plus 64 MiB for allocator slack and thread stacks."""
    head_rows = max(1_000_000, 120 * series)
    return int(base_rss
               + LIMITS["duckdb_memory_limit_mb"] * MIB
               + LIMITS["chunk_bytes_cache_bytes"]
               + LIMITS["decoded_chunk_cache_samples"] * 17
               + 3 * 2 * head_rows * 20
               + 2_000_000 * 16
               + series * 2048
               + 4 * LIMITS["max_inflight_body_bytes"]
               + LIMITS["query_max_concurrency"] * LIMITS["query_max_samples"] * 16
               + 64 * MIB)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Server:
    workdir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    restart_seconds: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        cfg = self.workdir / "clearsight.yaml"
        cfg.write_text(CONFIG)
        log = open(self.workdir / f"server-{self.starts}.log", "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clearsight", "server", "--config", str(cfg), "--data-dir",
             str(self.workdir / "data"), "--listen", f"127.0.0.1:{self.port}", "--otlp-http-listen", "",
             "--otlp-grpc-listen", ""], stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            start_new_session=True)
        log.close()
        self.starts += 1
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    self.restart_seconds.append(time.monotonic() - t0)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s: {self.log()}")

    def log(self) -> str:
        p = self.workdir / f"server-{self.starts - 1}.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        return self.proc.returncode


@dataclass
class Result:
    seconds: float = 0.0
    series: int = 0
    scrapes: int = 0
    samples_acked: int = 0
    resends: int = 0
    write_codes: dict[int, int] = field(default_factory=dict)
    query_codes: dict[int, int] = field(default_factory=dict)
    query_ms: list[float] = field(default_factory=list)
    slow_cut: int = 0
    slow_connects: int = 0
    kills: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    base_rss: int = 0
    max_rss: int = 0
    rss_bound: int = 0
    rss_by_start: list[int] = field(default_factory=list)
    lost: int = 0
    errors: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return self.lost == 0 and self.max_rss <= self.rss_bound and not self.errors

    def report(self) -> str:
        q = sorted(self.query_ms)

        def p(f: float) -> float:
            return q[min(len(q) - 1, int(f * len(q)))] if q else float("nan")

        return "\n".join([
            f"soak: {self.seconds:.0f} s, {self.series} series, {self.scrapes} scrapes of 15 s data time "
            f"({self.scrapes * STEP_MS / 3_600_000:.1f} h of data)",
            f"  acknowledged samples: {self.samples_acked:,} ({self.samples_acked / max(self.seconds, 1):,.0f}/s), "
            f"re-sent requests: {self.resends}, write answers: {dict(sorted(self.write_codes.items()))}",
            f"  kill -9: {self.kills}, starts to ready: "
            + ", ".join(f"{s:.1f} s" for s in self.restart_seconds),
            f"  queries: {dict(sorted(self.query_codes.items()))}, latency p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms",
            f"  slow clients: {self.slow_connects} connections, {self.slow_cut} cut off by the server's deadlines",
            f"  RSS: at first ready {self.base_rss / MIB:.0f} MiB, max per server start "
            + ", ".join(f"{r / MIB:.0f}" for r in self.rss_by_start)
            + f" MiB; max {self.max_rss / MIB:.0f} MiB, bound from the limits {self.rss_bound / MIB:.0f} MiB",
            f"  acknowledged samples lost: {self.lost}" + (f"; errors: {self.errors[:5]}" if self.errors else ""),
        ])


def _body(series: range, ts: int, scrape: int) -> bytes:
    return encode_snappy(WriteRequest([
        TimeSeries([("__name__", "soak_requests_total"), ("job", f"job{s % 10}"), ("instance", f"i{s}")],
                   [(ts, float(scrape * (1 + s % 7)))]) for s in series]))


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.server = Server(workdir, free_port())
        self.res = Result(series=args.series)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.scrapes = int(args.data_hours * 3_600_000 // STEP_MS)
        self.t0_ms = (int(time.time() * 1000) // STEP_MS) * STEP_MS - self.scrapes * STEP_MS
        self.acked: list[list[int]] = [[] for _ in range(args.senders)]  # scrapes acked, per sender
        self.latest_ts = self.t0_ms
        self.rss_current = 0

    # --- workers ----------------------------------------------------------------------------------

    def sender(self, k: int, start: float, duration: float) -> None:
        try:
            self._send(k, start, duration)
        except Exception as e:  # a dead sender must fail the soak, not shorten it silently
            with self.lock:
                self.res.errors.append(f"sender {k} failed: {e!r}")

    def _send(self, k: int, start: float, duration: float) -> None:
        n = self.args.series
        mine = range(k * n // self.args.senders, (k + 1) * n // self.args.senders)
        client = httpx.Client(timeout=30)
        try:
            for j in range(self.scrapes):
                due = start + duration * j / self.scrapes
                while not self.stop.is_set() and (wait := due - time.monotonic()) > 0:
                    time.sleep(min(0.05, wait))
                if self.stop.is_set():
                    return
                ts = self.t0_ms + j * STEP_MS
                body = _body(mine, ts, j)
                tries = 0
                while not self.stop.is_set():
                    tries += 1
                    try:
                        r = client.post(self.server.url + "/api/v1/write", content=body, headers=HEADERS)
                        code = r.status_code
                    except httpx.HTTPError:
                        code = 0  # the server is down (killed): retry
                        client.close()
                        client = httpx.Client(timeout=30)
                    with self.lock:
                        self.res.write_codes[code] = self.res.write_codes.get(code, 0) + 1
                    if code == 204:
                        with self.lock:
                            self.acked[k].append(j)
                            self.res.samples_acked += len(mine)
                            self.res.resends += tries - 1
                            self.latest_ts = max(self.latest_ts, ts)
                        break
                    if 400 <= code < 500 and code not in (408, 429):
                        with self.lock:
                            self.res.errors.append(f"write {code}: {r.text[:200]}")
                        return
                    time.sleep(0.2)
        finally:
            client.close()

    def querier(self) -> None:
        client = httpx.Client(timeout=60)
        i = 0
        try:
            while not self.stop.is_set():
                kind, q = QUERIES[i % len(QUERIES)]
                i += 1
                end = self.latest_ts / 1000
                if kind == "range":
                    params = {"query": q, "start": str(end - 3 * 3600), "end": str(end), "step": "60"}
                    path = "/api/v1/query_range"
                else:
                    params = {"query": q, "time": str(end)}
                    path = "/api/v1/query"
                t = time.perf_counter()
                try:
                    code = client.get(self.server.url + path + "?" + urllib.parse.urlencode(params)).status_code
                except httpx.HTTPError:
                    code = 0
                    time.sleep(0.2)
                with self.lock:
                    self.res.query_codes[code] = self.res.query_codes.get(code, 0) + 1
                    if code == 200:
                        self.res.query_ms.append((time.perf_counter() - t) * 1000)
                time.sleep(0.05)
        finally:
            client.close()

    def slow_client(self, k: int) -> None:
        """Holds a connection open by trickling its body (even k) or its headers (odd k)."""
        while not self.stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", self.server.port), timeout=2)
            except OSError:
                time.sleep(0.5)
                continue
            with self.lock:
                self.res.slow_connects += 1
            s.settimeout(2)
            cut = False
            try:
                if k % 2 == 0:
                    s.sendall(b"POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              b"Content-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n")
                else:
                    s.sendall(b"GET /api/v1/query?query=up HTTP/1.1\r\n")
                while not self.stop.is_set():
                    s.sendall(b"x" if k % 2 == 0 else b"X-A: b\r\n")
                    try:
                        if s.recv(4096) == b"":
                            cut = True
                            break
                        cut = True  # an answer (408) then the close
                        break
                    except TimeoutError:
                        continue
            except OSError:
                cut = True
            finally:
                s.close()
            if cut and not self.stop.is_set():
                with self.lock:
                    self.res.slow_cut += 1

    def sampler(self) -> None:
        while not self.stop.is_set():
            proc = self.server.proc
            if proc is not None and proc.poll() is None:
                rss = vm_rss(proc.pid)
                with self.lock:
                    self.rss_current = max(self.rss_current, rss)
                    self.res.max_rss = max(self.res.max_rss, rss)
            time.sleep(0.25)

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> Result:
        a = self.args
        (self.server.workdir / "data").mkdir(parents=True, exist_ok=True)
        self.server.start()
        assert self.server.proc is not None
        self.res.base_rss = vm_rss(self.server.proc.pid)
        self.res.rss_bound = rss_bound(a.series, self.res.base_rss)
        duration = a.minutes * 60
        start = time.monotonic()
        threads = [threading.Thread(target=self.sender, args=(k, start, duration * 0.97), daemon=True)
                   for k in range(a.senders)]
        threads += [threading.Thread(target=self.querier, daemon=True) for _ in range(a.queries)]
        threads += [threading.Thread(target=self.slow_client, args=(k,), daemon=True) for k in range(a.slow)]
        threads.append(threading.Thread(target=self.sampler, daemon=True))
        for t in threads:
            t.start()
        kill_at = [start + duration * (i + 1) / (a.kills + 1) for i in range(a.kills)]
        try:
            for at in kill_at:
                while time.monotonic() < at:
                    time.sleep(0.1)
                self.server.kill9()
                self.res.kills += 1
                with self.lock:
                    self.res.rss_by_start.append(self.rss_current)
                    self.rss_current = 0
                self.server.start()
            senders = threads[:a.senders]
            for t in senders:
                t.join(max(1.0, start + duration * 2 + 120 - time.monotonic()))
            if any(t.is_alive() for t in senders):
                self.res.errors.append("senders did not finish (the server stopped acknowledging)")
            short = [k for k, acked in enumerate(self.acked) if len(acked) != self.scrapes]
            if short:
                self.res.errors.append(f"senders {short} did not get every scrape acknowledged")
        finally:
            self.stop.set()
            for t in threads:
                t.join(30)
            with self.lock:
                self.res.rss_by_start.append(self.rss_current)
            code = self.server.stop()
            if code != 0:
                self.res.errors.append(f"server exit code {code}: {self.server.log()[-1000:]}")
        self.res.seconds = time.monotonic() - start
        self.res.scrapes = max((max(x) + 1 for x in self.acked if x), default=0)
        self.res.restart_seconds = self.server.restart_seconds
        self.res.lost = self.verify()
        return self.res

    def verify(self) -> int:
        """Acknowledged samples missing from the store (opened in-process after the stop)."""
        from clearsight.model.matchers import Matcher
        from clearsight.store.embedded import EmbeddedMetricsStore

        store = EmbeddedMetricsStore(self.server.workdir / "data", retention_ms=10**13, duckdb_threads=1)
        try:
            data = store.select("default", [Matcher.of("=", "__name__", "soak_requests_total")], 0, 2**62)
            by_instance = {}
            for i in range(len(data)):
                labels, ts, _v = data.series(i)
                by_instance[dict(labels)["instance"]] = ts
            n = self.args.series
            lost = 0
            for k, acked in enumerate(self.acked):
                want = self.t0_ms + np.asarray(sorted(acked), dtype=np.int64) * STEP_MS
                for s in range(k * n // self.args.senders, (k + 1) * n // self.args.senders):
                    have = by_instance.get(f"i{s}", np.empty(0, dtype=np.int64))
                    lost += int(np.count_nonzero(~np.isin(want, have)))
            return lost
        finally:
            store.close()


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--data-hours", type=float, default=24)
    ap.add_argument("--senders", type=int, default=2)
    ap.add_argument("--queries", type=int, default=2)
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the server's files here")
    ap.add_argument("--json", action="store_true", help="also print the result as JSON")
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> Result:
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="clearsight-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return Soak(args, workdir).run()
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    res = run(args)
    print(res.report())
    if args.json:
        d = {k: v for k, v in res.__dict__.items() if k != "query_ms"}
        d["query_p50_ms"] = statistics.median(res.query_ms) if res.query_ms else None
        print(json.dumps(d))
    return 0 if res.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
