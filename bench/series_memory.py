"""Memory per active series (issue 8, point 6), side by side with Prometheus 2.42.

Each server starts as a new user would start it (Clearsight as ``make run`` does, default settings;
Prometheus with its remote-write receiver), both on 127.0.0.1, free ports, temp dirs, stopped by PID.
Then, in steps, node_exporter-like series are remote-written (``--scrapes`` samples each, 15 s
apart, ending now): after each step the server is left to go idle and its RSS is read. The
figure is the slope: (RSS after the last step - RSS after the first) / (series added between them),
so what a server holds whatever its series count (code, caches at their floor) cancels out.

    .venv/bin/python bench/series_memory.py                        # 20k -> 200k series
    .venv/bin/python bench/series_memory.py --steps 10000,50000 --scrapes 4   # quick

RSS is what the kernel charges the process (psutil ``rss``): for Clearsight it includes DuckDB's
buffer pool, for Prometheus the Go heap and its page-cache-backed mmap'd chunks in use.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload
from query import start, wait_idle
from tests.support import peers

from clearsight.ingest.prompb_encode import encode_labels, encode_sample, len_field, snappy

TARGET_BYTES = 400  # issue 8 point 6
HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def payloads(defs: list[workload.SeriesDef], scrapes: int, end_ms: int, per_request: int = 2000) -> list[bytes]:
    """Snappy WriteRequests holding ``scrapes`` samples of each series, at most ``per_request`` samples
    per request, oldest scrape first within a series."""
    out: list[bytes] = []
    per_series = max(1, per_request // scrapes)
    for a in range(0, len(defs), per_series):
        pb = b"".join(
            len_field(1, encode_labels(d.labels) + b"".join(
                len_field(2, encode_sample(end_ms - (scrapes - 1 - k) * 15_000, float(i + k)))
                for k in range(scrapes)))
            for i, d in enumerate(defs[a:a + per_series], start=a))
        out.append(snappy(pb))
    return out


def rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / (1 << 20)


def send(client: httpx.Client, url: str, bodies: list[bytes]) -> None:
    for body in bodies:
        r = client.post(url + "/api/v1/write", content=body, headers=HEADERS)
        if r.status_code >= 300:
            raise SystemExit(f"{url}: {r.status_code} {r.text[:200]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default="20000,100000,200000", help="series counts, comma separated")
    ap.add_argument("--scrapes", type=int, default=4, help="samples per series (15 s apart)")
    ap.add_argument("--targets", default="clearsight,prometheus")
    ap.add_argument("--json", type=Path)
    args, _unknown = ap.parse_known_args(argv)
    steps = [int(x) for x in args.steps.split(",")]
    targets = args.targets.split(",")
    print(f"load average at start: {Path('/proc/loadavg').read_text().split()[:3]}")
    end_ms = int(time.time() * 1000) // 15000 * 15000
    defs = workload.node_exporter_series(steps[-1])
    results: dict[str, list[tuple[int, float]]] = {t: [] for t in targets}
    with ExitStack() as stack:
        procs: dict[str, peers.Proc] = {}
        for t in targets:
            wd = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"sermem-{t}-")))
            procs[t] = start(t, wd, vm_cache=True)
            stack.callback(procs[t].stop)
        client = stack.enter_context(httpx.Client(timeout=120))
        wait_idle(procs)
        base = {t: rss_mib(p.pid) for t, p in procs.items()}
        print("idle RSS at start: " + ", ".join(f"{t} {v:.0f} MiB" for t, v in base.items()))
        sent = 0
        for n in steps:
            bodies = payloads(defs[sent:n], args.scrapes, end_ms)
            for proc in procs.values():
                send(client, proc.url, bodies)
            sent = n
            wait_idle(procs, threshold=3.0)
            time.sleep(2.0)
            for t, proc in procs.items():
                results[t].append((n, rss_mib(proc.pid)))
            print(f"{n:>8,} series: " + ", ".join(f"{t} {results[t][-1][1]:.0f} MiB" for t in targets))
    print("\nbytes per active series (slope between the first and the last step):")
    out: dict[str, float] = {}
    for t in targets:
        (n0, r0), (n1, r1) = results[t][0], results[t][-1]
        out[t] = (r1 - r0) * (1 << 20) / (n1 - n0)
    for t in targets:
        ratio = f"  ({out[t] / out['prometheus']:.2f}x prometheus)" if "prometheus" in out else ""
        print(f"  {t:<12} {out[t]:>8,.0f} B/series{ratio}")
    if "clearsight" in out:
        print(f"  issue 8.6 target (at most {TARGET_BYTES} B of RSS per active series): {out['clearsight']:,.0f} B: "
              f"{'met' if out['clearsight'] <= TARGET_BYTES else 'not met'}")
    if args.json:
        args.json.write_text(json.dumps({"rss": results, "bytes_per_series": out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
