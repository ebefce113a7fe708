"""Query latency, side by side: Clearsight, Prometheus 2.42 and VictoriaMetrics 1.79 fed the same
remote-write data, the same dashboard range queries (bench/dashboard_queries.py) against each.

    .venv/bin/python bench/query.py                          # ~2.5k series x 6 h at 15 s
    .venv/bin/python bench/query.py --series 10000 --hours 24
    .venv/bin/python bench/query.py --targets prometheus,victoriametrics

Each server starts on 127.0.0.1 on a free port in a temp dir and is stopped by PID. After loading,
the script waits until all servers are idle (background compaction and merges would skew the first
queries), then runs every panel: one warm-up, then ``--repeats`` timed rounds, round-robin across
servers. It prints the median wall-clock latency per panel and server (HTTP request to parsed JSON),
the ratio to Prometheus, whether the answer matches Prometheus's (same series, values within 1e-5),
and the geometric means. Machines are noisy: read the ratios, not the absolute numbers.

VictoriaMetrics runs with ``-search.disableCache`` (no rollup result cache) and
``-search.latencyOffset=0s`` so it is compared engine to engine; ``--vm-cache`` keeps its cache.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard_queries import PANELS, Panel
from tests.conformance.compliance import compare, data, runner
from tests.support import peers

ALL_TARGETS = ("clearsight", "prometheus", "victoriametrics")
SERIES_PER_INSTANCE = 128  # what data.generate produces per demo instance


def start_victoria_metrics(workdir: Path, *, cache: bool) -> peers.Proc:
    # peers.start_victoria_metrics takes no extra flags; same launch, plus the search flags.
    binary = peers.require_binary("victoria-metrics")
    port = peers.free_port()
    argv = [
        binary,
        f"-storageDataPath={workdir / 'vm-data'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-search.latencyOffset=0s",
    ]
    if not cache:
        argv.append("-search.disableCache")
    proc = peers._spawn("victoria-metrics", argv, workdir, f"http://127.0.0.1:{port}")
    peers._wait_http(proc, "/health", 30)
    return proc


def start(target: str, workdir: Path, vm_cache: bool) -> peers.Proc:
    if target == "clearsight":
        return peers.start_clearsight(workdir)
    if target == "prometheus":
        return peers.start_prometheus(workdir, runner.PROMETHEUS_CONFIG)
    if target == "victoriametrics":
        return start_victoria_metrics(workdir, cache=vm_cache)
    raise ValueError(target)


def wait_idle(procs: dict[str, peers.Proc], *, threshold: float = 5.0, timeout: float = 120.0) -> float:
    """Wait until every server uses < ``threshold`` % CPU over a second; returns the seconds waited."""
    t0 = time.monotonic()
    ps = {name: psutil.Process(p.pid) for name, p in procs.items()}
    for p in ps.values():
        p.cpu_percent(None)
    while time.monotonic() - t0 < timeout:
        time.sleep(1.0)
        if all(p.cpu_percent(None) < threshold for p in ps.values()):
            break
    return time.monotonic() - t0


@dataclass
class Cell:
    times: list[float] = field(default_factory=list)
    error: str | None = None
    series: int = 0
    points: int = 0
    same_as_prom: bool | None = None
    diff: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else math.nan


def window(panel: Panel, ds: data.Dataset) -> tuple[int, int]:
    """Grafana-style: end aligned down to the step, start one range earlier."""
    step_ms = panel.step_s * 1000
    end = ds.end_ms // step_ms * step_ms
    span_ms = int(panel.range_h * 3600_000) if panel.range_h else ds.end_ms - ds.start_ms
    return end - span_ms // step_ms * step_ms, end


def run_panel(
    client: httpx.Client, urls: dict[str, str], panel: Panel, ds: data.Dataset, repeats: int
) -> dict[str, Cell]:
    start_ms, end_ms = window(panel, ds)
    cells = {t: Cell() for t in urls}
    answers: dict[str, compare.Answer] = {}
    for t, url in urls.items():  # warm-up, and the answer to compare
        answers[t] = compare.query_range(client, url, panel.query, start_ms, end_ms, f"{panel.step_s}s")
        if answers[t].error is not None:
            cells[t].error = answers[t].error
    for _ in range(repeats):
        for t, url in urls.items():
            if cells[t].error is not None:
                continue
            t0 = time.perf_counter()
            a = compare.query_range(client, url, panel.query, start_ms, end_ms, f"{panel.step_s}s")
            cells[t].times.append(time.perf_counter() - t0)
            if a.error is not None:
                cells[t].error = a.error
    ref = answers.get("prometheus")
    for t, a in answers.items():
        if a.matrix is not None:
            cells[t].series = len(a.matrix)
            cells[t].points = sum(len(p) for _, p in a.matrix)
            if ref is not None and ref.matrix is not None:
                cells[t].diff = compare.diff(ref.matrix, a.matrix)
                cells[t].same_as_prom = cells[t].diff == ""
    return cells


def geomean(xs: list[float]) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else math.nan


def fmt_ms(s: float) -> str:
    return "-" if math.isnan(s) else f"{s * 1000:.1f}"


def print_table(
    targets: list[str], results: list[tuple[Panel, dict[str, Cell]]], out: Callable[[str], None] = print
) -> dict[str, float]:
    has_prom = "prometheus" in targets
    head = f"{'panel':<28}" + "".join(f"{t[:16] + ' ms':>20}" for t in targets)
    if has_prom:
        head += "".join(f"{t[:10] + '/prom':>16}" for t in targets if t != "prometheus")
    out(head + "  series  same-as-prom")
    for panel, cells in results:
        row = f"{panel.name[:28]:<28}"
        for t in targets:
            c = cells[t]
            row += f"{'error' if c.error else fmt_ms(c.median):>20}"
        if has_prom:
            pm = cells["prometheus"].median
            for t in targets:
                if t == "prometheus":
                    continue
                c = cells[t]
                row += f"{'-' if c.error or math.isnan(pm) else f'{c.median / pm:.2f}x':>16}"
        series = "/".join(str(cells[t].series) for t in targets)
        same = ",".join(
            f"{t[:2]}:{'y' if cells[t].same_as_prom else 'n'}"
            for t in targets
            if t != "prometheus" and cells[t].same_as_prom is not None
        )
        out(row + f"  {series}  {same}")
    for panel, cells in results:
        for t in targets:
            err = cells[t].error
            if err:
                out(f"  {t} error on {panel.name!r}: {err[:200]}")
            elif cells[t].diff:
                out(f"  {t} differs from prometheus on {panel.name!r}: {cells[t].diff[:200]}")
    # Geomeans over the panels every target answered, so the ratios compare like with like.
    common = [cells for _, cells in results if all(cells[t].error is None for t in targets)]
    gm = {t: geomean([c[t].median for c in common]) for t in targets}
    line = f"{'geomean (' + str(len(common)) + ' panels)':<28}" + "".join(
        f"{fmt_ms(gm[t]):>20}" for t in targets
    )
    if has_prom:
        line += "".join(f"{gm[t] / gm['prometheus']:>15.2f}x" for t in targets if t != "prometheus")
    out(line)
    return gm


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=2500, help="about this many series (default 2500)")
    p.add_argument("--hours", type=float, default=6.0, help="hours of data at 15 s (default 6)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per panel (default 5)")
    p.add_argument("--targets", default=",".join(ALL_TARGETS))
    p.add_argument("--vm-cache", action="store_true", help="keep VictoriaMetrics' rollup result cache")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the medians here")
    # Unknown flags are ignored so that one ARGS string can drive several benchmarks (bench/run.py).
    args, unknown = p.parse_known_args(argv)
    if unknown:
        print(f"bench/query.py: ignoring {' '.join(unknown)}")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in targets:
        if t not in ALL_TARGETS:
            p.error(f"unknown target {t!r}")
    instances = max(1, round(args.series / SERIES_PER_INSTANCE))

    with ExitStack() as stack:
        wd = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-query-")))
        procs: dict[str, peers.Proc] = {}
        for t in targets:
            procs[t] = start(t, wd / t, args.vm_cache)
            stack.callback(procs[t].stop)
        t0 = time.perf_counter()
        ds = data.generate(int(time.time() * 1000), hours=args.hours, seed=args.seed, instances=instances)
        print(
            f"data: {len(ds.series)} series x {args.hours:g} h at 15 s = {ds.samples:,} samples "
            f"({instances} demo instances), generated in {time.perf_counter() - t0:.1f} s"
        )
        load = dict.fromkeys(targets, 0.0)
        nreq = 0
        with httpx.Client(timeout=300) as client:
            for body in data.write_requests(ds):
                nreq += 1
                for t in targets:
                    t1 = time.perf_counter()
                    runner.push(client, procs[t].url, [body])
                    load[t] += time.perf_counter() - t1
            if "victoriametrics" in procs:
                client.get(procs["victoriametrics"].url + "/internal/force_flush")
            print(f"loaded in {nreq} requests: " + ", ".join(f"{t} {s:.1f} s" for t, s in load.items()))
            waited = wait_idle(procs)
            print(f"servers idle after {waited:.1f} s; {args.repeats} timed rounds per panel")
            urls = {t: procs[t].url for t in targets}
            results = [(panel, run_panel(client, urls, panel, ds, args.repeats)) for panel in PANELS]
        gm = print_table(targets, results)
        if args.json:
            doc = {
                "series": len(ds.series),
                "samples": ds.samples,
                "hours": args.hours,
                "panels": [
                    {
                        "name": pn.name,
                        "query": pn.query,
                        **{
                            t: {
                                "median_s": c[t].median,
                                "error": c[t].error,
                                "same_as_prometheus": c[t].same_as_prom,
                            }
                            for t in targets
                        },
                    }
                    for pn, c in results
                ],
                "geomean_s": gm,
            }
            args.json.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
