"""A/B of two Clearsight revisions on the small dashboard queries of ``small_queries.py``: each
revision's ``src/`` is exported (``git archive``) next to the working tree's compiled extensions,
the data is sent once and the data directory copied, then both servers answer the same requests
interleaved (A, B, A, B...), so a busy shared machine slows both alike. Printed per query: median
latency, the server's CPU per request (user+system of its process over the rounds), B/A for both,
and whether the answers are identical; then requests/s at 4 and 16 clients.

    .venv/bin/python bench/small_queries_ab.py --a 630f0eb --b HEAD
    .venv/bin/python bench/small_queries_ab.py --a HEAD~3 --b HEAD --hours 1 --rounds 50   # quick

CPU per request is the steadier figure on a loaded machine; latency there is mostly waiting for a
core. Revisions must share the data layout (both read the copied data directory). When A's compiled
extensions differ from the working tree's (a .pyx changed since), build them in a checkout of A and
pass it: ``git worktree add /tmp/rev-a <A> && (cd /tmp/rev-a && <this checkout>/.venv/bin/python setup.py build_ext
--inplace)``, then ``--a <A> --a-native /tmp/rev-a``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload
from query import wait_idle
from small_queries import QUERIES, Conn, _clients, query_path
from tests.conformance.compliance import runner
from tests.support import peers

ROOT = Path(__file__).resolve().parents[1]


def export(rev: str, dest: Path, native: Path = ROOT) -> Path:
    """``rev``'s src/ in ``dest``, with the compiled extensions of the tree ``native`` (the working
    tree's by default) beside it."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    for so in (native / "src").rglob("*.so"):
        target = dest / so.relative_to(native)
        if target.parent.exists():
            shutil.copy2(so, target)
    return dest / "src"


def start(src: Path, wd: Path) -> peers.Proc:
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(src)
    try:
        return peers.start_clearsight(wd, data_dir=wd / "data")
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", default="HEAD~1", help="revision A (default HEAD~1)")
    p.add_argument("--b", default="HEAD", help="revision B (default HEAD)")
    p.add_argument("--a-native", type=Path, default=ROOT,
                   help="a checkout whose compiled extensions A runs with, when A's differ from the working tree's "
                        "(e.g. a `git worktree` of A after `python setup.py build_ext --inplace`)")
    p.add_argument("--series", type=int, default=2360)
    p.add_argument("--hours", type=float, default=6.0)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--concurrent-requests", type=int, default=400)
    args = p.parse_args(argv)
    end_ms = (int(time.time() * 1000) // 1000) * 1000
    payloads = workload.build_payloads(args.series, int(args.hours * 3600_000 // workload.SCRAPE_INTERVAL_MS),
                                       end_ms=end_ms, extra=workload.http_histogram_series(8))
    order = [b for grp in itertools.zip_longest(*payloads.bodies) for b in grp if b is not None]
    end_s = payloads.last_ms / 1000
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        wd = Path(tmp)
        srcs = {"A": export(args.a, wd / "rev-a", args.a_native), "B": export(args.b, wd / "rev-b")}
        loader = start(srcs["B"], wd / "B")
        with httpx.Client(timeout=300) as client:
            runner.push(client, loader.url, order)
        loader.stop()
        shutil.copytree(wd / "B" / "data", wd / "A" / "data")
        procs: dict[str, peers.Proc] = {}
        try:
            for name in ("A", "B"):
                procs[name] = start(srcs[name], wd / name)
            wait_idle(procs)
            print(f"A = {args.a}, B = {args.b}; load average {os.getloadavg()[0]:.1f}")
            conns = {n: Conn(pr.url) for n, pr in procs.items()}
            ps = {n: psutil.Process(pr.pid) for n, pr in procs.items()}
            print(f"{'query':<24}{'A ms':>9}{'B ms':>9}{'B/A':>7}{'A cpu ms':>10}{'B cpu ms':>10}{'B/A':>7}")
            for name, kind, q in QUERIES:
                path = query_path(kind, q, end_s)
                answers = {n: json.loads(c.get(path)[1])["data"] for n, c in conns.items()}
                times: dict[str, list[float]] = {n: [] for n in conns}
                cpu0 = {n: sum(pr.cpu_times()[:2]) for n, pr in ps.items()}
                for _ in range(args.rounds):
                    for n, c in conns.items():
                        t0 = time.perf_counter()
                        c.get(path)
                        times[n].append(time.perf_counter() - t0)
                cpu = {n: (sum(pr.cpu_times()[:2]) - cpu0[n]) / args.rounds * 1e3 for n, pr in ps.items()}
                a, b = (statistics.median(times[n]) * 1e3 for n in ("A", "B"))
                same = "" if answers["A"] == answers["B"] else "  (answers differ)"
                cpu_ratio = f"{cpu['B'] / cpu['A']:>7.2f}" if cpu["A"] else "      -"  # (under the clock's tick)
                print(f"{name:<24}{a:>9.3f}{b:>9.3f}{b / a:>7.2f}{cpu['A']:>10.3f}{cpu['B']:>10.3f}"
                      f"{cpu_ratio}{same}")
            paths = [query_path(k, q, end_s) for _, k, q in QUERIES]
            for clients in (4, 16):
                for n, pr in procs.items():
                    r = _clients(pr.url, paths, clients, args.concurrent_requests)
                    print(f"{clients} clients {n}: {r['rps']:.0f} req/s  p50 {r['p50_ms']:.2f} ms  "
                          f"p99 {r['p99_ms']:.2f} ms  errors {r['errors']:.0f}")
            print(f"load average {os.getloadavg()[0]:.1f}")
        finally:
            for pr in procs.values():
                pr.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
