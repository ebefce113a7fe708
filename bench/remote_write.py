"""Remote-write ingest, side by side: Clearsight vs Prometheus 2.42 vs VictoriaMetrics 1.79.

The same snappy WriteRequests (bench/workload.py, encoded once) are sent by 4 concurrent senders to
each server, started here on free 127.0.0.1 ports in temporary directories and stopped by PID.
Printed per server (medians over ``--repeat`` runs, a fresh server and data dir per run):

- samples/s: accepted samples / wall time from the first send to the last 2xx;
- CPU s per million samples: user+system CPU of the server process tree during the send phase;
- bytes/sample on disk after a flush, always of the first send's data on a fresh server (the re-send
  and replica phases add data: a replica's samples are new samples): Clearsight: data dir after a
  clean shutdown (the head compacted, then a checkpoint), with each file of it (metrics.duckdb and its
  WAL, logs.duckdb, auth.db; 0 when absent); with the re-send phases on, that figure comes from a
  separate fresh server that receives the first send only (its flush is a shutdown);
  VictoriaMetrics: data dir after ``/internal/force_flush``; Prometheus: its head is not compacted
  within a run, so both its data dir (WAL + head chunks) and a TSDB snapshot with the head written
  as a block (``/api/v1/admin/tsdb/snapshot``, needs ``--web.enable-admin-api``) are reported;
- ratios vs Prometheus.

Also measures the decoder alone (``decode_write_request``: snappy + protobuf walk into a SampleBatch)
on the same 2,000-series requests, compiled vs pure-Python, and the validation step.

Usage: ``.venv/bin/python bench/remote_write.py [--series 10000] [--scrapes 120] [--repeat 3]``
(``--series 2000 --scrapes 20 --repeat 1`` runs in well under a minute).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import workload

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "clearsight-bench",
}


# --- process and disk accounting ------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2 :].split()
    ppid = int(rest[1])
    ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])  # utime stime cutime cstime
    return ppid, ticks / CLK_TCK


def tree_rss_bytes(root: int) -> int:
    """Resident memory of a process and its children (from /proc; 0 when gone)."""
    total = 0
    pids = [root]
    try:
        pids += [int(p) for p in Path(f"/proc/{root}/task/{root}/children").read_text().split()]
    except OSError:
        pass
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class PeakRss(threading.Thread):
    """Samples a process tree's RSS every 0.1 s; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            self.done.wait(0.1)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def wait_settled(root: int, timeout_s: float = 120.0) -> None:
    """Waits until ``root``'s process tree uses under 5 % of a core over two 0.5 s intervals."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    last = tree_cpu_seconds(root)
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = tree_cpu_seconds(root)
        quiet = quiet + 1 if now - last < 0.025 else 0
        last = now


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user+system, including reaped children) of ``root`` and its live descendants."""
    procs: dict[int, tuple[int, float]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            s = _stat(int(d))
            if s is not None:
                procs[int(d)] = s
    total = 0.0
    want = {root}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _) in procs.items():
            if ppid in want and pid not in want:
                want.add(pid)
                changed = True
    for pid in want:
        if pid in procs:
            total += procs[pid][1]
    return total


def dir_bytes(path: Path) -> tuple[int, int]:
    """(apparent size, allocated size) of all files under ``path``."""
    apparent = allocated = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_call(method: str, url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --- servers --------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    binary: str
    port: int = 0
    tmp: Path = Path()
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = Path()

    write_path = "/api/v1/write"
    ready_path = "/ready"

    def available(self) -> str | None:
        return (
            None if shutil.which(self.binary) or os.path.exists(self.binary) else f"{self.binary} not found"
        )

    def argv(self) -> list[str]:
        raise NotImplementedError

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"

    def start(self, timeout: float = 60.0) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        self.data_dir.mkdir()
        self.port = free_port()
        self.log_path = self.tmp / "server.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv(), cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                status, _ = http_call("GET", self.url(self.ready_path), timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s: {self.log_tail()}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n    ".join(["", *lines[-n:]])

    def flush(self) -> dict[str, int]:
        """Makes the data durable on disk; returns named disk sizes (apparent bytes)."""
        raise NotImplementedError

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Clearsight(Server):
    def __init__(self) -> None:
        super().__init__("clearsight", sys.executable)

    def available(self) -> str | None:
        return None

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "clearsight",
            "server",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--otlp-http-listen",
            "",
            "--otlp-grpc-listen",
            "",
        ]

    FILES = ("metrics.duckdb", "metrics.duckdb.wal", "logs.duckdb", "logs.duckdb.wal", "auth.db")

    def flush(self) -> dict[str, int]:
        rc = self.stop(timeout=120)
        sizes = {"data dir after shutdown": dir_bytes(self.data_dir)[0]}
        sizes.update({f"of which {name}": 0 for name in self.FILES})  # printed even when absent
        for f in sorted(self.data_dir.iterdir()):  # what each store's files weigh
            sizes[f"of which {f.name}"] = dir_bytes(f)[0] if f.is_dir() else f.stat().st_size
        sizes["exit code"] = rc if rc is not None else -1
        return sizes


class Prometheus(Server):
    ready_path = "/-/ready"

    def __init__(self) -> None:
        super().__init__("prometheus", "/usr/bin/prometheus")

    def argv(self) -> list[str]:
        cfg = self.tmp / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 15s\n")
        return [
            self.binary,
            f"--config.file={cfg}",
            "--web.enable-remote-write-receiver",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.remote.flush-deadline=1s",
            "--web.enable-admin-api",
            "--log.level=warn",
        ]

    def flush(self) -> dict[str, int]:
        sizes = {"data dir (WAL + head chunks)": dir_bytes(self.data_dir)[0]}
        status, body = http_call("POST", self.url("/api/v1/admin/tsdb/snapshot"), timeout=120)
        if status == 200:
            name = json.loads(body)["data"]["name"]
            sizes["snapshot block (head compacted)"] = dir_bytes(self.data_dir / "snapshots" / name)[0]
        return sizes


class VictoriaMetrics(Server):
    ready_path = "/health"

    def __init__(self) -> None:
        super().__init__("victoriametrics", "/usr/bin/victoria-metrics")

    def argv(self) -> list[str]:
        return [
            self.binary,
            f"-storageDataPath={self.data_dir}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-loggerLevel=WARN",
            "-search.latencyOffset=0s",  # query-side only: the post-run count sees the newest samples
        ]

    def flush(self) -> dict[str, int]:
        http_call("GET", self.url("/internal/force_flush"), timeout=60)
        time.sleep(1.0)
        return {"data dir after force_flush": dir_bytes(self.data_dir)[0]}


# --- sending --------------------------------------------------------------------------------------


@dataclass
class SendResult:
    wall_s: float = 0.0
    requests: int = 0
    retries: int = 0
    rejected: int = 0
    first_rejection: str = ""
    statuses: dict[int, int] = field(default_factory=dict)


def send_all(port: int, path: str, bodies: list[list[bytes]], on_start: Callable[[], None],
             headers_for: Callable[[bytes], dict[str, str]] | None = None) -> SendResult:
    res = SendResult()
    lock = threading.Lock()
    barrier = threading.Barrier(len(bodies) + 1)

    def sender(mine: list[bytes]) -> None:
        barrier.wait()
        try:
            send(mine)
        except Exception as e:  # reported, never a hang
            with lock:
                res.rejected += 1
                res.first_rejection = res.first_rejection or f"sender crashed: {e!r}"

    def send(mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for body in mine:
            attempt = 0
            while True:
                try:
                    conn.request("POST", path, body, HEADERS if headers_for is None else headers_for(body))
                    r = conn.getresponse()
                    data = r.read()
                    status = r.status
                    retry_after = r.getheader("Retry-After")
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    status, data, retry_after = -1, str(e).encode(), None
                with lock:
                    res.statuses[status] = res.statuses.get(status, 0) + 1
                    res.requests += 1
                if 200 <= status < 300:
                    break
                if status in (-1, 429) or status >= 500:
                    attempt += 1
                    with lock:
                        res.retries += 1
                    if attempt > 50:
                        with lock:
                            res.rejected += 1
                            res.first_rejection = res.first_rejection or f"{status}: giving up"
                        break
                    time.sleep(min(float(retry_after or 0.05 * attempt), 2.0))
                    continue
                with lock:
                    res.rejected += 1
                    if not res.first_rejection:
                        res.first_rejection = f"{status}: {data[:300].decode(errors='replace')}"
                break
        conn.close()

    threads = [threading.Thread(target=sender, args=(b,), daemon=True) for b in bodies]
    for t in threads:
        t.start()
    on_start()
    barrier.wait(timeout=60)
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    res.wall_s = time.perf_counter() - t0
    return res


@dataclass
class Run:
    samples_per_s: float
    cpu_s_per_million: float
    disk: dict[str, int]
    send: SendResult
    stored_samples: int | None = None  # what the server's query API counts afterwards
    peak_rss_bytes: int = 0  # during the first send (sampled every 0.1 s)
    idle_rss_bytes: int = 0  # once ready, before any sample
    # --resend: the identical requests sent again, then an HA replica's (same series, every
    # timestamp REPLICA_OFFSET_MS later, so between the first replica's samples).
    resend_samples_per_s: float | None = None
    resend_cpu_s_per_million: float | None = None
    replica_samples_per_s: float | None = None
    replica_cpu_s_per_million: float | None = None
    replica_rejected: int = 0
    # Clearsight after --resend: its store counters' increase per phase and the exact-data check.
    resend_check: dict[str, Any] | None = None


STORE_COUNTERS = (
    "clearsight_store_duplicate_samples_total",
    "clearsight_store_identical_samples_total",
    "clearsight_store_out_of_order_samples_total",
)


def store_counters(server: Server) -> dict[str, float]:
    """Clearsight's duplicate / identical / out-of-order sample counters from ``/metrics``."""
    status, body = http_call("GET", server.url("/metrics"), timeout=60)
    out = dict.fromkeys(STORE_COUNTERS, 0.0)
    for line in body.decode(errors="replace").splitlines() if status == 200 else []:
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in out:
            out[name] += float(line.rsplit(" ", 1)[1])
    return out


def sent_samples(payloads: workload.Payloads) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
    """Label set -> {ts: value} of every sample in ``payloads`` (decoded from the bodies)."""
    from clearsight.ingest import remote_write as rw
    from clearsight.pipeline.limits import WriteLimits

    limits = WriteLimits()
    out: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
    for body in (b for sender in payloads.bodies for b in sender):
        batch = rw.decode_write_request(body, content_encoding="snappy", content_type=None, limits=limits)
        labels = [tuple(sorted(batch.decode_labels(k))) for k in batch.keys]
        for i, t, v in zip(
            batch.series_idx.tolist(), batch.timestamps.tolist(), batch.values.tolist(), strict=True
        ):
            out.setdefault(labels[i], {})[t] = v
    return out


def exact_mismatches(
    server: Server, want: dict[tuple[tuple[str, str], ...], dict[int, float]], n: int
) -> int:
    """Reads ``n`` series (spread over the sorted label sets) raw through ``/api/v1/query``
    (``{labels}[range]``) and counts those whose samples are not exactly ``want``'s."""
    keys = sorted(want)
    picked = [keys[i * len(keys) // n] for i in range(min(n, len(keys)))]
    bad = 0
    for labels in picked:
        pts = want[labels]
        lo, hi = min(pts), max(pts)
        sel = "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"
        q = urllib.parse.urlencode({"query": f"{sel}[{(hi - lo) // 1000 + 2}s]", "time": f"{hi / 1000:.3f}"})
        status, body = http_call("GET", server.url(f"/api/v1/query?{q}"), timeout=60)
        res = json.loads(body)["data"]["result"] if status == 200 else []
        got = {round(float(t) * 1000): float(v) for t, v in res[0]["values"]} if len(res) == 1 else {}
        bad += got != pts
    return bad


def count_stored(server: Server, payloads: workload.Payloads) -> int | None:
    """Counts the stored samples through the server's Prometheus query API (None if unavailable).

    Prometheus 2.42 refuses ``count_over_time`` over many metric names ("vector cannot contain
    metrics with the same labelset"), so for it the count is its own
    ``prometheus_tsdb_head_samples_appended_total`` from ``/metrics``."""
    if isinstance(server, Prometheus):
        status, body = http_call("GET", server.url("/metrics"), timeout=60)
        total = 0.0
        for line in body.decode(errors="replace").splitlines():
            if line.startswith("prometheus_tsdb_head_samples_appended_total"):
                total += float(line.rsplit(" ", 1)[1])
        return int(total) if status == 200 else None
    range_s = (payloads.last_ms - payloads.first_ms) // 1000 + 60
    query = f'sum(count_over_time({{job="node"}}[{range_s}s]))'
    # +5 s: an HA replica's samples (--resend) are REPLICA_OFFSET_MS later
    params = urllib.parse.urlencode({"query": query, "time": f"{payloads.last_ms / 1000 + 5:.3f}"})
    try:
        status, body = http_call("GET", server.url(f"/api/v1/query?{params}"), timeout=120)
        if status != 200:
            return None
        result = json.loads(body)["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0
    except (OSError, ValueError, KeyError, IndexError):
        return None


REPLICA_OFFSET_MS = 3_000


def resend_check(
    server: Server, payloads: workload.Payloads, replica: workload.Payloads, counters: list[dict[str, float]]
) -> dict[str, Any]:
    """What a correct store shows after the identical re-send and the replica: every re-sent
    sample a duplicate with the stored value, every replica sample but each series' newest out of
    order, and (read back exactly) both replicas' samples."""
    before, _, after = counters
    dup, ident, ooo = (after[k] - before[k] for k in STORE_COUNTERS)
    want = sent_samples(payloads)
    for labels, pts in sent_samples(replica).items():
        want.setdefault(labels, {}).update(pts)
    bad = exact_mismatches(server, want, 50)
    expect_ooo = replica.total_samples - replica.n_series
    ok = dup == ident == payloads.total_samples and ooo == expect_ooo and bad == 0
    return {
        "duplicates": dup,
        "identical": ident,
        "out_of_order": ooo,
        "expected_out_of_order": expect_ooo,
        "series_read_back": min(50, len(want)),
        "series_differing": bad,
        "ok": ok,
    }


def run_once(server: Server, payloads: workload.Payloads, replica: workload.Payloads | None = None) -> Run:
    server.start()
    try:
        assert server.proc is not None
        pid = server.proc.pid
        cpu0 = [0.0]

        def start() -> None:
            cpu0[0] = tree_cpu_seconds(pid)

        idle_rss = tree_rss_bytes(pid)
        rss = PeakRss(pid)
        rss.start()
        send = send_all(server.port, server.write_path, payloads.bodies, start)
        cpu = tree_cpu_seconds(pid) - cpu0[0]
        peak_rss = rss.stop()
        accepted = payloads.total_samples if not send.rejected else None
        extra: dict[str, Any] = {}
        # The disk figure is the first send's: taken now by a server whose flush does not stop it;
        # Clearsight's flush is a shutdown, so with the later phases on, main() measures its disk on
        # another fresh server that receives the first send only.
        disk = None if isinstance(server, Clearsight) else server.flush()
        if replica is not None:
            m = payloads.total_samples / 1e6
            counters = [store_counters(server)] if isinstance(server, Clearsight) else []
            # Each phase's CPU is read at its last ack, as the first send's is: background work
            # it left (a compaction deferred until the writer is idle) runs before the next phase
            # starts instead of being charged to it.
            wait_settled(pid)
            again = send_all(server.port, server.write_path, payloads.bodies, start)
            extra["resend_cpu_s_per_million"] = (tree_cpu_seconds(pid) - cpu0[0]) / m
            extra["resend_samples_per_s"] = payloads.total_samples / again.wall_s if again.wall_s else 0.0
            wait_settled(pid)
            other = send_all(server.port, server.write_path, replica.bodies, start)
            extra["replica_cpu_s_per_million"] = (tree_cpu_seconds(pid) - cpu0[0]) / m
            extra["replica_samples_per_s"] = replica.total_samples / other.wall_s if other.wall_s else 0.0
            extra["replica_rejected"] = other.rejected
            if counters:
                counters.append(store_counters(server))  # only the replica moves them from here
                counters.insert(1, counters[-1])
                extra["resend_check"] = resend_check(server, payloads, replica, counters)
        if disk is None:  # Clearsight: its flush is a shutdown, query first
            stored = count_stored(server, payloads)
            disk = server.flush()
        else:  # VictoriaMetrics makes data searchable on flush (again after the later phases)
            if replica is not None:
                server.flush()
            stored = count_stored(server, payloads)
        samples = accepted if accepted is not None else 0
        return Run(
            samples_per_s=samples / send.wall_s if send.wall_s else 0.0,
            cpu_s_per_million=cpu / (payloads.total_samples / 1e6),
            disk=disk,
            send=send,
            stored_samples=stored,
            peak_rss_bytes=peak_rss,
            idle_rss_bytes=idle_rss,
            **extra,
        )
    finally:
        server.cleanup()


# --- decoder micro-benchmark ------------------------------------------------------------------------


def bench_decoder(payloads: workload.Payloads) -> dict[str, float]:
    from clearsight.ingest import remote_write as rw
    from clearsight.pipeline.limits import WriteLimits
    from clearsight.pipeline.validate import make_validator

    limits = WriteLimits()
    bodies = [b for sender in payloads.bodies for b in sender]

    def decode_all(native: bool, items: list[bytes]) -> tuple[float, int, int]:
        t0 = time.perf_counter()
        series = samples = 0
        for body in items:
            b = rw.decode_write_request(
                body,
                content_encoding="snappy",
                content_type="application/x-protobuf",
                limits=limits,
                native=native,
            )
            series += b.num_series
            samples += b.num_samples
        return time.perf_counter() - t0, series, samples

    out: dict[str, float] = {
        "requests": len(bodies),
        "series_per_request": payloads.n_series * payloads.scrapes / max(1, len(bodies)),
    }
    t0 = time.perf_counter()
    for body in bodies:
        rw.decompress(body, limits)
    out["snappy_only_samples_per_s"] = payloads.total_samples / (time.perf_counter() - t0)
    if rw.NATIVE_AVAILABLE:
        decode_all(True, bodies[:20])  # warm up
        dt, series, samples = decode_all(True, bodies)
        out.update(
            native_series_per_s=series / dt,
            native_samples_per_s=samples / dt,
            native_us_per_request=dt / len(bodies) * 1e6,
        )
        # two threads: the walk releases the GIL
        half = [bodies[0::2], bodies[1::2]]
        t0 = time.perf_counter()
        threads = [threading.Thread(target=decode_all, args=(True, h)) for h in half]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out["native_2threads_samples_per_s"] = payloads.total_samples / (time.perf_counter() - t0)
    few = bodies[: max(1, min(10, len(bodies)))]
    dt, series, samples = decode_all(False, few)
    out.update(pure_series_per_s=series / dt, pure_samples_per_s=samples / dt)

    batches = [
        rw.decode_write_request(b, content_encoding="snappy", content_type=None, limits=limits)
        for b in bodies
    ]
    validate = make_validator(limits, time.time)
    t0 = time.perf_counter()
    for b in batches:  # cold: every key is new
        validate("bench", b)
    out["validate_cold_series_per_s"] = sum(b.num_series for b in batches) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for b in batches:  # warm: keys cached
        validate("bench", b)
    out["validate_warm_samples_per_s"] = payloads.total_samples / (time.perf_counter() - t0)
    return out


def bench_pipeline(payloads: workload.Payloads, in_flight: int) -> dict[str, float]:
    """In-process write path without HTTP: decode -> validate -> embedded store (group commit).

    One thread decodes and validates the requests in send order and submits them, keeping at most
    ``in_flight`` batches uncommitted (as many as the HTTP senders have requests open); the store's
    writer thread commits. Shows how the server's CPU splits between HTTP, decoding and the store.
    """
    from clearsight.ingest import remote_write as rw
    from clearsight.pipeline.ingestor import MetricsIngestor
    from clearsight.pipeline.limits import WriteLimits
    from clearsight.pipeline.validate import make_validator
    from clearsight.store.embedded import EmbeddedMetricsStore

    limits = WriteLimits()
    # round-robin over the senders keeps every series in time order
    order = [b for group in itertools.zip_longest(*payloads.bodies) for b in group if b is not None]
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        store = EmbeddedMetricsStore(tmp / "data")
        ingestor = MetricsIngestor(store, [make_validator(limits, time.time)])
        t_decode = t_validate = 0.0
        pending: list[Any] = []
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        for body in order:
            a = time.thread_time()  # CPU of this thread: waiting for the GIL does not count
            batch = rw.decode_write_request(body, content_encoding="snappy", content_type=None, limits=limits)
            b = time.thread_time()
            batch = ingestor.prepare("bench", batch)
            c = time.thread_time()
            t_decode += b - a
            t_validate += c - b
            pending.append(store.append("bench", batch))
            if len(pending) >= in_flight:
                pending.pop(0).result()
        for f in pending:
            f.result()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    m = payloads.total_samples / 1e6
    return {
        "samples_per_s": payloads.total_samples / wall,
        "cpu_s_per_million": cpu / m,
        "decode_s_per_million": t_decode / m,
        "validate_s_per_million": t_validate / m,
        "store_cpu_s_per_million": (cpu - t_decode - t_validate) / m,
    }


# --- main -----------------------------------------------------------------------------------------


def _fmt_rate(v: float) -> str:
    return f"{v / 1e3:,.0f}k" if v < 1e6 else f"{v / 1e6:,.2f}M"


PROMETHEUS_BLOCK_MS = 2 * 3600 * 1000


def prometheus_aligned_end(now_ms: int, scrapes: int) -> int:
    """The last scrape's time: now, or, when the scrapes (and the replica's offset) would cross a
    2-hour boundary, a minute before the boundary. Prometheus cuts its blocks (and the snapshot of
    its head) at those boundaries: data crossing one is written as two blocks, each with its own
    index and shorter chunks (its snapshot: 4.53 bytes/sample across 00:00 UTC, 4.32 within one block)."""
    span = (scrapes - 1) * workload.SCRAPE_INTERVAL_MS + workload.SCRAPE_INTERVAL_MS + REPLICA_OFFSET_MS
    boundary = now_ms // PROMETHEUS_BLOCK_MS * PROMETHEUS_BLOCK_MS
    if span + 60_000 >= PROMETHEUS_BLOCK_MS or now_ms + REPLICA_OFFSET_MS - span >= boundary:
        return now_ms
    return boundary - 60_000 - REPLICA_OFFSET_MS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--scrapes", type=int, default=120)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--samples-per-request", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--servers", default="clearsight,prometheus,victoriametrics")
    ap.add_argument("--no-decoder", action="store_true", help="skip the decoder micro-benchmark")
    ap.add_argument(
        "--no-pipeline",
        dest="pipeline",
        action="store_false",
        help="skip the in-process pipeline measurement",
    )
    ap.add_argument(
        "--no-resend",
        dest="resend",
        action="store_false",
        help="skip the runs after the first send: the identical requests again, then an HA replica's "
        f"(every timestamp {REPLICA_OFFSET_MS} ms later), both rates printed against the first send",
    )
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "remote_write.json")
    args, _unknown = ap.parse_known_args(argv)  # bench/run.py passes the same flags to every bench

    t0 = time.perf_counter()
    end_ms = prometheus_aligned_end(int(time.time() * 1000), args.scrapes)
    payloads = workload.build_payloads(
        args.series,
        args.scrapes,
        senders=args.senders,
        samples_per_request=args.samples_per_request,
        end_ms=end_ms,
    )
    replica = (
        workload.build_payloads(
            args.series,
            args.scrapes,
            senders=args.senders,
            samples_per_request=args.samples_per_request,
            end_ms=end_ms + REPLICA_OFFSET_MS,
        )
        if args.resend
        else None
    )
    nreq = sum(len(b) for b in payloads.bodies)
    print(
        f"workload: {payloads.n_series} node_exporter-like series x {payloads.scrapes} scrapes = "
        f"{payloads.total_samples:,} samples in {nreq} requests (~{args.samples_per_request} samples each), "
        f"{args.senders} senders; {payloads.uncompressed_bytes / payloads.total_samples:.1f} B/sample protobuf, "
        f"{payloads.compressed_bytes / payloads.total_samples:.1f} B/sample snappy "
        f"(encoded in {time.perf_counter() - t0:.1f}s)"
    )
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "servers": {}}

    if not args.no_decoder:
        dec = bench_decoder(payloads)
        report["decoder"] = dec
        print("\ndecoder (snappy + protobuf walk -> SampleBatch, one core, same requests):")
        if "native_series_per_s" in dec:
            print(
                f"  compiled: {_fmt_rate(dec['native_series_per_s'])} series/s, "
                f"{_fmt_rate(dec['native_samples_per_s'])} samples/s, "
                f"{dec['native_us_per_request']:.0f} us per request of ~{dec['series_per_request']:.0f} samples; "
                f"2 threads: {_fmt_rate(dec['native_2threads_samples_per_s'])} samples/s"
            )
        else:
            print("  compiled: NOT BUILT")
        print(f"  (snappy decompression alone: {_fmt_rate(dec['snappy_only_samples_per_s'])} samples/s)")
        print(
            f"  pure Python: {_fmt_rate(dec['pure_series_per_s'])} series/s, "
            f"{_fmt_rate(dec['pure_samples_per_s'])} samples/s"
        )
        print(
            f"  validate: cold {_fmt_rate(dec['validate_cold_series_per_s'])} new series/s, "
            f"warm {_fmt_rate(dec['validate_warm_samples_per_s'])} samples/s"
        )

    if args.pipeline:
        print("\nin-process pipeline (no HTTP; decode -> validate -> embedded store with group commit):")
        report["pipeline"] = {}
        for in_flight in sorted({args.senders, 64}):
            try:
                pipe = bench_pipeline(payloads, in_flight)
            except Exception as e:  # the store is another module: report, do not abort the bench
                print(f"  failed: {e!r}")
                break
            report["pipeline"][f"in_flight_{in_flight}"] = pipe
            print(
                f"  {in_flight:>2} batches in flight: {_fmt_rate(pipe['samples_per_s'])} samples/s, "
                f"{pipe['cpu_s_per_million']:.2f} CPU s/M samples (decode {pipe['decode_s_per_million']:.2f}, "
                f"validate {pipe['validate_s_per_million']:.2f}, "
                f"store and the rest {pipe['store_cpu_s_per_million']:.2f})"
            )

    factories: dict[str, Callable[[], Server]] = {
        "clearsight": Clearsight,
        "prometheus": Prometheus,
        "victoriametrics": VictoriaMetrics,
    }
    results: dict[str, list[Run]] = {}
    names: list[str] = []
    for name in [s.strip() for s in args.servers.split(",") if s.strip()]:
        why = factories[name]().available()
        if why:
            print(f"\n{name}: skipped ({why})")
            report["servers"][name] = {"skipped": why}
        else:
            names.append(name)
    # Runs are interleaved (A B C, A B C, ...) so that load changes on a shared machine hit all
    # servers alike; a server that fails is reported and left out of later rounds.
    for i in range(args.repeat):
        for name in list(names):
            try:
                run = run_once(factories[name](), payloads, replica)
                if replica is not None and name == "clearsight":  # the disk of a first send alone
                    run.disk = run_once(factories[name](), payloads).disk
            except Exception as e:  # a broken server is reported, the other peers still run
                print(f"{name}: run {i + 1} failed: {e}")
                report["servers"][name] = {"error": str(e)}
                names.remove(name)
                continue
            s = run.send
            print(
                f"{name} run {i + 1}: {_fmt_rate(run.samples_per_s)} samples/s, "
                f"{run.cpu_s_per_million:.2f} CPU s/M samples, {s.requests} requests, {s.retries} retries, "
                f"{s.rejected} rejected, query API counts {run.stored_samples} stored samples, "
                f"idle RSS {run.idle_rss_bytes / 2**20:.0f} MiB, peak RSS {run.peak_rss_bytes / 2**20:.0f} MiB "
                f"{s.first_rejection[:200]}"
            )
            if run.resend_samples_per_s is not None and run.replica_samples_per_s is not None:
                print(
                    f"  identical re-send: {_fmt_rate(run.resend_samples_per_s)} samples/s "
                    f"({run.resend_samples_per_s / run.samples_per_s:.2f}x its first send), "
                    f"{run.resend_cpu_s_per_million:.2f} CPU s/M; HA replica +{REPLICA_OFFSET_MS} ms: "
                    f"{_fmt_rate(run.replica_samples_per_s)} samples/s "
                    f"({run.replica_samples_per_s / run.samples_per_s:.2f}x), "
                    f"{run.replica_cpu_s_per_million:.2f} CPU s/M, {run.replica_rejected} requests rejected"
                )
            if run.resend_check is not None:
                c = run.resend_check
                print(
                    f"  /metrics: re-send duplicates {c['duplicates']:,.0f} (identical {c['identical']:,.0f}) of "
                    f"{payloads.total_samples:,}; replica out of order {c['out_of_order']:,.0f} (expected "
                    f"{c['expected_out_of_order']:,}); {c['series_differing']} of {c['series_read_back']} series "
                    f"read back differ from what was sent: {'OK' if c['ok'] else 'FAILED'}"
                )
            results.setdefault(name, []).append(run)
    for name, runs in results.items():
        report["servers"][name] = {"runs": [asdict(r) for r in runs]}
    load1, load5, _ = os.getloadavg()
    report["loadavg"] = [load1, load5]

    def med(name: str, f: Callable[[Run], float]) -> float:
        return statistics.median(f(r) for r in results[name])

    print(
        f"\nresults (median of {args.repeat}; {payloads.total_samples:,} samples; "
        f"load average {load1:.1f} on {os.cpu_count()} CPUs):"
    )
    print(
        "bytes/sample on disk: the first send's data on a fresh server"
        + (" (Clearsight's from a separate server receiving the first send only: its flush is a shutdown)"
           if args.resend else "")
    )
    print(
        f"{'server':<16} {'samples/s':>10} {'vs prom':>8} {'CPU s/M':>8} {'vs prom':>8} {'peak RSS':>9}  "
        "bytes/sample on disk"
    )
    base_rate = med("prometheus", lambda r: r.samples_per_s) if "prometheus" in results else None
    base_cpu = med("prometheus", lambda r: r.cpu_s_per_million) if "prometheus" in results else None
    base_disk = None
    if "prometheus" in results:
        key = "snapshot block (head compacted)"
        if all(key in r.disk for r in results["prometheus"]):
            base_disk = med("prometheus", lambda r: r.disk[key] / payloads.total_samples)
    summary: dict[str, Any] = {}
    for name, runs in results.items():
        rate = med(name, lambda r: r.samples_per_s)
        cpu = med(name, lambda r: r.cpu_s_per_million)
        keys = list(dict.fromkeys(k for r in runs for k in r.disk if k != "exit code"))  # a file may be in one run only
        disks = {k: statistics.median(r.disk.get(k, 0) for r in runs) for k in keys}
        disk_txt = "; ".join(
            f"{k}: {v / payloads.total_samples:.2f}"
            + (
                f" ({v / payloads.total_samples / base_disk:.2f}x)"
                if base_disk and not k.startswith("of which")
                else ""
            )
            for k, v in disks.items()
        )
        rr = f"{rate / base_rate:.2f}x" if base_rate else "-"
        cr = f"{cpu / base_cpu:.2f}x" if base_cpu else "-"
        rejected = sum(r.send.rejected for r in runs)
        note = f"  [{rejected} requests rejected]" if rejected else ""
        rss_mib = max(r.peak_rss_bytes for r in runs) / 2**20
        print(f"{name:<16} {_fmt_rate(rate):>10} {rr:>8} {cpu:>8.2f} {cr:>8} {rss_mib:>5.0f} MiB  {disk_txt}{note}")
        summary[name] = {
            "samples_per_s": rate,
            "cpu_s_per_million": cpu,
            "bytes_per_sample": {k: v / payloads.total_samples for k, v in disks.items()},
            "rejected_requests": rejected,
            "peak_rss_bytes": max(r.peak_rss_bytes for r in runs),
            "idle_rss_bytes": max(r.idle_rss_bytes for r in runs),
        }
    report["summary"] = summary
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(f"\n(bytes/sample ratios are vs Prometheus' snapshot block; full results in {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
