"""Differential test of the engine against a real Prometheus engine (Debian's ``promtool`` 2.42).

``promtool test rules`` evaluates instant queries over series written in the promqltest notation;
giving it an empty expectation makes it print what it got, which we compare with our result.

Prometheus 2.42 predates some 3.x semantics, so the generated data avoids where they differ:
samples sit at ``10s*j + 3s`` while queries run at multiples of 10s (no sample on a window or
lookback boundary, where 2.x is left-closed and 3.x left-open), subquery ranges are not multiples
of their step, counters start far from zero (2.x and 3.x order rate's zero-extrapolation clamp
differently), and when both results differ only by ``__name__`` (2.x drops it eagerly) the names
are ignored. promtool loads samples only up to the evaluation time, so no query looks into the
future (negative offsets are covered by promqltest).
"""

from __future__ import annotations

import math
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from clearsight.model.labels import Labels
from clearsight.model.samples import STALE_NAN
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.values import QueryError
from clearsight.store.memory import MemorySeriesSelector

pytestmark = pytest.mark.peer

QUERIES = [
    "m", "m offset 20s", "m @ 33", "-m", "m * 2 - n", "m > 3", "m > bool 3", "m == bool n", "3 < m",
    "sum(m)", "sum by (g) (m)", "avg without (i) (m)", "max by (g) (m)", "min(m)", "count(m)", "group by (g) (m)",
    "stddev(m)", "stdvar by (g) (m)", "quantile(0.3, m)", "quantile by (g) (0.9, m)", "topk(2, m)",
    "bottomk by (g) (1, m)", 'count_values("v", m)',
    "m + on(i) group_left n", "m / ignoring(g) group_left n", "n - on(i) group_right m", "m and n", "m or n",
    "m unless on(g) n", "m + on(g, i) n", "m > on(i) group_left n",
    "rate(c[1m])", "increase(c[50s])", "irate(c[1m])", "resets(c[1m])", "sum by (g) (rate(c[1m]))",
    "delta(m[1m])", "idelta(m[1m])", "deriv(m[1m])", "predict_linear(m[1m], 30)", "changes(m[1m])",
    "max_over_time(m[40s])", "min_over_time(m[40s])", "avg_over_time(m[1m])", "sum_over_time(m[1m])",
    "count_over_time(m[1m])", "stddev_over_time(m[1m])", "quantile_over_time(0.5, m[1m])",
    "last_over_time(m[1m]) * 1", "present_over_time(m[1m]) * 1",
    "sum_over_time(m[65s:20s])", "max_over_time(sum(m)[55s:10s])", "rate(sum by (g) (c)[75s:10s])",
    "min_over_time((m * 2)[45s:20s] offset 10s)",
    "abs(m)", "ceil(m)", "floor(m)", "round(m, 0.5)", "clamp(m, 1, 5)", "clamp_min(m, 2)", "sqrt(abs(m))",
    "ln(abs(m) + 1)", "exp(m / 10)", "sgn(m) * m", "m % 3", "m ^ 2", "m atan2 n",
    "scalar(sum(m))", "vector(1) + sum(m)", "time() - m", "timestamp(m)", "absent(nope)", "absent(m)",
    'label_replace(m, "x", "$1", "g", "(.*)")', 'label_join(m, "x", "-", "g", "i")',
    "sum(m) by (g) / on(g) group_left sum(n) by (g)", "count(m > 2) by (g)", "avg(m) - avg(n)",
    "histogram_quantile(0.5, sum by (le) (rate(h[1m])))", "histogram_quantile(0.9, h)",
]

EVAL_TIMES_S = [40, 60, 80, 110]


def _dataset(seed: int) -> list[tuple[str, dict[str, str], list[str]]]:
    r = random.Random(seed)
    out: list[tuple[str, dict[str, str], list[str]]] = []
    for name in ("m", "n", "c"):
        for i in range(r.randint(0, 4)):
            lbl = {"g": r.choice("ab"), "i": str(i)}
            cur = r.uniform(100, 200) if name == "c" else r.uniform(0, 10)
            vals: list[str] = []
            for _ in range(12):
                x = r.random()
                if x < 0.12:
                    vals.append("_")
                elif x < 0.17 and name != "c":
                    vals.append("stale")
                else:
                    cur = cur + r.uniform(0, 5) if name == "c" else cur + r.uniform(-3, 3)
                    vals.append(repr(round(cur, 3)))
            out.append((name, lbl, vals))
    for le, w in (("0.1", 1), ("1", 3), ("10", 6), ("+Inf", 7)):
        cur = 1000.0 * w
        vals = []
        for _ in range(12):
            cur += w * r.randint(0, 3)
            vals.append(repr(cur))
        out.append(("h", {"le": le}, vals))
    return out


def _ours(series: list[tuple[str, dict[str, str], list[str]]], query: str, t_ms: int) -> dict[Labels, float] | str:
    s = MemorySeriesSelector()
    for name, lbl, vals in series:
        pts = [(j * 10_000 + 3_000, STALE_NAN if v == "stale" else float(v)) for j, v in enumerate(vals) if v != "_"]
        if pts:
            s.add(tuple(sorted({**lbl, "__name__": name}.items())), [a for a, _ in pts], [b for _, b in pts])
    try:
        res = Engine().instant(s, query, t_ms)
    except QueryError as e:
        return f"error: {e}"
    if res.result_type == "scalar":
        return {(): res.scalar_value}
    return {x.labels: float(x.values[0]) for x in res.series}


_ENTRY = re.compile(r'([A-Za-z_:][\w:]*)?(\{[^}]*\})?\s+([-+]?[0-9.]+E[-+][0-9]+|NaN|[-+]Inf)')
_LABEL = re.compile(r'([\w]+)="((?:[^"\\]|\\.)*)"')


def _parse_got(text: str) -> dict[Labels, float]:
    text = text.strip()
    out: dict[Labels, float] = {}
    if text in ("nil", "[]", ""):
        return out
    for m in _ENTRY.finditer(text):
        d = dict(_LABEL.findall(m.group(2) or "{}"))
        if m.group(1):
            d["__name__"] = m.group(1)
        out[tuple(sorted(d.items()))] = float(m.group(3).replace("Inf", "inf"))
    return out


def _fmt_time(s: int) -> str:
    if s >= 60:
        return f"{s // 60}m" + (f"{s % 60}s" if s % 60 else "")
    return f"{s}s"


def _promtool(series: list[tuple[str, dict[str, str], list[str]]], cases: list[tuple[str, int]],
              tmp: Path) -> dict[tuple[str, str], dict[Labels, float] | str]:
    inputs = []
    for name, lbl, vals in series:
        expanded: list[str] = []
        for v in vals:  # 1s resolution: the sample sits at +3s of every 10s slot
            expanded += ["_", "_", "_", v] + ["_"] * 6
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(lbl.items()))
        inputs.append({"series": f"{name}{{{labels}}}", "values": " ".join(expanded)})
    tests = [{"expr": q, "eval_time": f"{t}s", "exp_samples": []} for q, t in cases]
    doc = {"evaluation_interval": "1s",
           "tests": [{"interval": "1s", "input_series": inputs, "promql_expr_test": tests}]}
    path = tmp / "cases.yml"
    path.write_text(yaml.safe_dump(doc))
    proc = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    out = proc.stdout + "\n" + proc.stderr
    res: dict[tuple[str, str], dict[Labels, float] | str] = {}
    for m in re.finditer(r'expr: "((?:[^"\\]|\\.)*)", time: (\S+),\n\s+exp: nil\n\s+got: (.*)\n', out):
        res[(m.group(1).replace('\\"', '"'), m.group(2))] = _parse_got(m.group(3))
    for m in re.finditer(r'expr: "((?:[^"\\]|\\.)*)", time: (\S+),\n\s+err: (.*)\n', out):
        res[(m.group(1).replace('\\"', '"'), m.group(2))] = f"error: {m.group(3)}"
    return res


def _close(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def _strip_names(d: dict[Labels, float]) -> dict[Labels, float]:
    return {tuple(p for p in k if p[0] != "__name__"): v for k, v in d.items()}


def test_promtool_is_installed() -> None:
    assert shutil.which("promtool"), "promtool (Debian package prometheus) is required for the peer tests"


@pytest.mark.parametrize("seed", range(12))
def test_instant_queries_match_prometheus(seed: int, tmp_path: Path) -> None:
    assert shutil.which("promtool"), "promtool (Debian package prometheus) is required"
    series = _dataset(seed)
    r = random.Random(seed * 7 + 1)
    cases = [(q, r.choice(EVAL_TIMES_S)) for q in QUERIES]
    theirs_all = _promtool(series, cases, tmp_path)
    mismatches = []
    for q, t in cases:
        # promtool passes (prints nothing) when the result is empty, like the empty expectation.
        theirs = theirs_all.get((q, _fmt_time(t)), {})
        ours = _ours(series, q, t * 1000)
        if isinstance(theirs, str) or isinstance(ours, str):
            if isinstance(theirs, str) != isinstance(ours, str):
                mismatches.append(f"{q} @ {t}s: ours={ours} prometheus={theirs}")
            continue
        if set(ours) != set(theirs) and set(_strip_names(ours)) == set(_strip_names(theirs)):
            ours, theirs = _strip_names(ours), _strip_names(theirs)
        if set(ours) != set(theirs) or any(not _close(ours[k], theirs[k]) for k in ours):
            mismatches.append(f"{q} @ {t}s:\n    ours      ={sorted(ours.items())}\n"
                              f"    prometheus={sorted(theirs.items())}")
    assert not mismatches, "\n".join(mismatches)
