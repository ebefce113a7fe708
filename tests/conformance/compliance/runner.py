"""The differential PromQL test: a real Prometheus 2.42 (the reference) and a target fed the same
remote-write data, the compliance query list run as range queries against both, compared.

Run it as ``python -m tests.conformance.compliance --target clearsight|victoriametrics|prometheus``.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from tests.conformance.compliance import compare, data, queries
from tests.support import peers

TARGETS = ("clearsight", "victoriametrics", "prometheus")
PROMETHEUS_CONFIG = "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n"
REMOTE_WRITE_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "clearsight-compliance/1",
}

# The compliance tester's defaults: end = now - 12m, a 10m range, a 10s step.
END_BEFORE_DATA_END_MS = 12 * 60_000
RANGE_MS = 10 * 60_000
STEP_MS = 10_000
# A second window over the whole data span (from before the first sample to the last), at a coarse
# step that is not a divisor of the scrape phase: series starts, restarts, stale gaps, counter resets.
SPAN_STEP_MS = 60_000
SPAN_OFFSET_MS = 7_300
# Opt-in: the same span aligned to the step, as Grafana aligns its queries, so subquery steps land
# exactly on range boundaries. Not in the default set (which the floor counts) until it can be
# added without lowering the floor.
WINDOW_NAMES = ("tester", "span", "aligned")
DEFAULT_WINDOWS = ("tester", "span")
# The data end is the latest past instant at this phase within the hour, so every run sees the
# same data and the same query windows relative to the hour (shifted in time): the pass count is
# reproducible. Only calendar functions (hour(), day_of_week() ...) see different absolute times.
END_PHASE_MS = 1_234_567


def default_end_ms(now_ms: int) -> int:
    end = now_ms - now_ms % 3600_000 + END_PHASE_MS
    return end if end <= now_ms else end - 3600_000


@dataclass(frozen=True)
class Window:
    name: str
    start_ms: int
    end_ms: int
    step_ms: int

    @property
    def step(self) -> str:
        return f"{self.step_ms / 1000:g}s"

    def __str__(self) -> str:
        return f"{self.name} [{self.start_ms}, {self.end_ms}] step {self.step}"


def windows(
    ds: data.Dataset, names: tuple[str, ...] = DEFAULT_WINDOWS, align_to_step: bool = False
) -> list[Window]:
    out: list[Window] = []
    for name in names:
        if name == "tester":
            end = ds.end_ms - END_BEFORE_DATA_END_MS
            w = Window(name, end - RANGE_MS, end, STEP_MS)
        elif name == "span":
            w = Window(name, ds.start_ms - 5 * 60_000 + SPAN_OFFSET_MS, ds.end_ms, SPAN_STEP_MS)
        elif name == "aligned":
            step = SPAN_STEP_MS
            w = Window(name, (ds.start_ms - 5 * 60_000) // step * step, ds.end_ms // step * step, step)
        else:
            raise ValueError(f"unknown window {name!r}; one of {', '.join(WINDOW_NAMES)}")
        if align_to_step:
            w = Window(
                w.name, w.start_ms // w.step_ms * w.step_ms, w.end_ms // w.step_ms * w.step_ms, w.step_ms
            )
        out.append(w)
    return out


@dataclass
class Outcome:
    query: str
    status: str  # "pass" | "fail" | "skip"
    detail: str = ""
    ref_series: int = 0  # size of the reference answer, to show the comparison is not vacuous
    ref_points: int = 0


@dataclass
class Report:
    target: str
    outcomes: list[Outcome]
    series: int
    samples: int
    windows: list[Window]
    load_seconds: dict[str, float] = field(default_factory=dict)
    query_seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(o.status == "pass" for o in self.outcomes)

    @property
    def skipped(self) -> int:
        return sum(o.status == "skip" for o in self.outcomes)

    @property
    def total(self) -> int:
        """Compared cases: the full expanded list minus the ones the reference cannot answer."""
        return len(self.outcomes) - self.skipped

    @property
    def non_empty(self) -> int:
        """Compared cases whose reference answer has at least one point."""
        return sum(o.ref_points > 0 for o in self.outcomes if o.status != "skip")

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "fail"]

    def summary(self) -> str:
        return f"compliance: {self.passed}/{self.total} (skipped {self.skipped})"


def push(client: httpx.Client, base_url: str, bodies: Iterable[bytes]) -> None:
    """Remote-write every body in order; any non-2xx answer is an error (the data must load)."""
    for i, body in enumerate(bodies):
        for attempt in range(20):
            r = client.post(
                base_url.rstrip("/") + "/api/v1/write", content=body, headers=REMOTE_WRITE_HEADERS
            )
            if r.status_code in (429, 503) and attempt < 19:
                time.sleep(float(r.headers.get("Retry-After", "0.5") or 0.5))
                continue
            break
        if r.status_code // 100 != 2:
            raise AssertionError(
                f"remote write #{i} to {base_url} failed: HTTP {r.status_code} {r.text[:500]}"
            )


def _instant_value(client: httpx.Client, url: str, query: str, at_ms: int) -> str:
    r = client.post(url.rstrip("/") + "/api/v1/query", data={"query": query, "time": f"{at_ms / 1000:.3f}"})
    try:
        res = r.json()["data"]["result"]
        return str(res[0]["value"][1]) if res else "empty"
    except (ValueError, KeyError, IndexError, TypeError):
        return f"HTTP {r.status_code} {r.text[:200]}"


def wait_visible(
    client: httpx.Client, ref_url: str, test_url: str, ds: data.Dataset, timeout: float = 30
) -> None:
    """Wait until the target sees as many series as the reference near the end of the data (VictoriaMetrics
    makes freshly written samples searchable only after a flush). Gives up silently: the comparison
    will then show what is missing."""
    q = 'count(last_over_time({job="demo"}[1h]))'
    want = _instant_value(client, ref_url, q, ds.end_ms)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _instant_value(client, test_url, q, ds.end_ms) == want:
            return
        time.sleep(0.5)


def judge(tc: queries.TestCase, ref: compare.Answer, got: compare.Answer) -> Outcome:
    out = _judge(tc, ref, got)
    if ref.matrix is not None:
        out.ref_series = len(ref.matrix)
        out.ref_points = sum(len(p) for _, p in ref.matrix)
    return out


def _judge(tc: queries.TestCase, ref: compare.Answer, got: compare.Answer) -> Outcome:
    if (ref.error is not None) != tc.should_fail:
        why = ref.error if ref.error is not None else "reference succeeded on a should_fail query"
        return Outcome(tc.query, "skip", f"reference: {why}")
    if (got.error is not None) != tc.should_fail:
        if got.error is not None:
            return Outcome(tc.query, "fail", f"unexpected failure: {got.error}")
        return Outcome(tc.query, "fail", "unexpected success (the reference fails this query)")
    if tc.should_fail or tc.skip_comparison:
        return Outcome(tc.query, "pass")
    assert ref.matrix is not None and got.matrix is not None
    d = compare.diff(ref.matrix, got.matrix)
    return Outcome(tc.query, "fail" if d else "pass", d)


def combine(query: str, per_window: list[tuple[Window, Outcome]]) -> Outcome:
    """A case passes when it passes in every window; a skip in any window skips it; otherwise the
    first failing window's detail, prefixed with the window's name."""
    out = Outcome(query, "pass")
    out.ref_series = max((o.ref_series for _, o in per_window), default=0)
    out.ref_points = sum(o.ref_points for _, o in per_window)
    for status in ("skip", "fail"):
        for w, o in per_window:
            if o.status == status:
                out.status = status
                out.detail = f"[{w.name}] {o.detail}" if len(per_window) > 1 else o.detail
                return out
    return out


def run_cases(
    ref_url: str,
    test_url: str,
    cases: list[queries.TestCase],
    wins: list[Window],
    parallel: int = 4,
    timeout: float = 60.0,
) -> list[Outcome]:
    with httpx.Client(timeout=timeout) as client:

        def one(tc: queries.TestCase) -> Outcome:
            per: list[tuple[Window, Outcome]] = []
            for w in wins:
                ref = compare.query_range(client, ref_url, tc.query, w.start_ms, w.end_ms, w.step)
                got = compare.query_range(client, test_url, tc.query, w.start_ms, w.end_ms, w.step)
                per.append((w, judge(tc, ref, got)))
            return combine(tc.query, per)

        with ThreadPoolExecutor(max_workers=parallel) as pool:
            return list(pool.map(one, cases))


Launcher = Callable[[Path], peers.Proc]


def _launcher(target: str) -> Launcher:
    if target == "clearsight":
        return lambda wd: peers.start_clearsight(wd)
    if target == "victoriametrics":
        return lambda wd: peers.start_victoria_metrics(wd)
    if target == "prometheus":
        return lambda wd: peers.start_prometheus(wd, PROMETHEUS_CONFIG)
    raise ValueError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")


def run(
    target: str,
    *,
    hours: float = 3.0,
    seed: int = 1,
    parallel: int = 4,
    align_to_step: bool = False,
    window_names: tuple[str, ...] = DEFAULT_WINDOWS,
    end_ms: int | None = None,
    query_file: Path = queries.DEFAULT_QUERY_FILE,
    workdir: Path | None = None,
    target_url: str | None = None,
    log: Callable[[str], None] = print,
) -> Report:
    """Start a Prometheus and the target (unless ``target_url`` points at a running one), load the
    same generated data into both, run every expanded query as a range query, compare."""
    cases = queries.load(query_file)
    with ExitStack() as stack:
        wd = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="compliance-")))
        prom = peers.start_prometheus(wd / "reference", PROMETHEUS_CONFIG)
        stack.callback(prom.stop)
        if target_url is None:
            proc = _launcher(target)(wd / target)
            stack.callback(proc.stop)
            target_url = proc.url
        ds = data.generate(end_ms or default_end_ms(int(time.time() * 1000)), hours=hours, seed=seed)
        bodies = list(data.write_requests(ds))
        log(
            f"data: {len(ds.series)} series, {ds.samples} samples, {hours:g} h at {ds.interval_ms / 1000:g} s, "
            f"{len(bodies)} requests; events: {ds.events}"
        )
        loads: dict[str, float] = {}
        with httpx.Client(timeout=120) as client:
            for name, url in (("reference", prom.url), (target, target_url)):
                t0 = time.perf_counter()
                push(client, url, bodies)
                loads[name] = time.perf_counter() - t0
            if target == "victoriametrics":
                client.get(target_url.rstrip("/") + "/internal/force_flush")
            wait_visible(client, prom.url, target_url, ds)
        log("loaded: " + ", ".join(f"{k} {v:.1f} s" for k, v in loads.items()))
        wins = windows(ds, window_names, align_to_step)
        t0 = time.perf_counter()
        outcomes = run_cases(prom.url, target_url, cases, wins, parallel)
        report = Report(target, outcomes, len(ds.series), ds.samples, wins, loads, time.perf_counter() - t0)
    return report


def print_report(report: Report, *, show_passing: bool = False, log: Callable[[str], None] = print) -> None:
    for o in report.outcomes:
        if o.status == "fail":
            log(f"FAIL {o.query}\n     {o.detail}")
        elif o.status == "skip":
            log(f"SKIP {o.query}\n     {o.detail}")
        elif show_passing:
            log(f"PASS {o.query}")
    log(
        f"queries took {report.query_seconds:.1f} s; windows: {'; '.join(map(str, report.windows))}; "
        f"{report.non_empty}/{report.total} reference answers are non-empty"
    )
    log(f"{report.summary()} against {report.target}")


def write_json(report: Report, path: Path) -> None:
    doc = {
        "target": report.target,
        "passed": report.passed,
        "total": report.total,
        "skipped": report.skipped,
        "series": report.series,
        "samples": report.samples,
        "windows": [asdict(w) for w in report.windows],
        "load_seconds": report.load_seconds,
        "query_seconds": report.query_seconds,
        "outcomes": [asdict(o) for o in report.outcomes],
    }
    path.write_text(json.dumps(doc, indent=1))
