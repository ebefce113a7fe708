"""Builders shared by the function-library tests: series loaded like promqltest's ``load``,
turned into ``MatrixSteps`` / ``VectorSteps`` as the engine would, and result accessors."""

from __future__ import annotations

import math

import numpy as np

from clearsight.model.labels import Labels, make_labels
from clearsight.model.matchers import Matcher
from clearsight.query.promql import ast
from clearsight.query.promql.functions import FUNCTIONS
from clearsight.query.promql.values import (
    Annotations,
    FuncContext,
    MatrixSteps,
    ScalarSteps,
    Value,
    VectorSteps,
)

S = 1000
M = 60 * S

Series = dict[Labels, tuple[list[int], list[float]]]


def L(**kw: str) -> Labels:
    name = kw.pop("name", None)
    pairs = dict(kw)
    if name is not None:
        pairs["__name__"] = name
    return make_labels(pairs)


def load(interval_ms: int, data: dict[Labels, list[float | None]], start: int = 0) -> Series:
    """``{labels: [v0, v1, None, ...]}`` sampled every ``interval_ms``; None is a gap."""
    out: Series = {}
    for lbls, vals in data.items():
        ts = [start + i * interval_ms for i, v in enumerate(vals) if v is not None]
        vs = [float(v) for v in vals if v is not None]
        out[lbls] = (ts, vs)
    return out


def seq(start: float, step: float, times: int) -> list[float | None]:
    """promqltest's ``a+bxN`` (N+1 values)."""
    return [start + step * i for i in range(times + 1)]


def matrix(
    series: Series,
    range_ms: int,
    steps: list[int],
    offset: int = 0,
    anchored: bool = False,
    smoothed: bool = False,
    lookback_ms: int = 5 * M,
) -> MatrixSteps:
    labels = list(series)
    return MatrixSteps(
        labels=labels,
        timestamps=[np.asarray(series[lb][0], dtype=np.int64) for lb in labels],
        values=[np.asarray(series[lb][1], dtype=np.float64) for lb in labels],
        window_end=np.asarray(steps, dtype=np.int64) - offset,
        range_ms=range_ms,
        anchored=anchored,
        smoothed=smoothed,
        lookback_ms=lookback_ms if (anchored or smoothed) else 0,
    )


def instant(series: Series, steps: list[int], lookback_ms: int = 5 * M) -> VectorSteps:
    """A plain vector selector: the latest sample in ``(t - lookback, t]`` at every step."""
    labels = list(series)
    k = len(steps)
    vals = np.full((len(labels), k), np.nan)
    present = np.zeros((len(labels), k), dtype=bool)
    sts = np.zeros((len(labels), k), dtype=np.int64)
    for i, lb in enumerate(labels):
        ts, vs = series[lb]
        for j, t in enumerate(steps):
            cand = [n for n, x in enumerate(ts) if t - lookback_ms < x <= t]
            if cand:
                vals[i, j] = vs[cand[-1]]
                present[i, j] = True
                sts[i, j] = ts[cand[-1]]
    return VectorSteps(labels, vals, present, None, sts)


def scalar(x: float, k: int = 1) -> ScalarSteps:
    return ScalarSteps(np.full(k, float(x)))


def ctx(steps: list[int], exprs: list[ast.Expr] | None = None) -> FuncContext:
    return FuncContext(np.asarray(steps, dtype=np.int64), exprs or [], Annotations())


def call(name: str, c: FuncContext, *args: Value) -> Value:
    return FUNCTIONS[name](c, list(args))


def selector(name: str | None, *matchers: tuple[str, str, str]) -> ast.VectorSelector:
    ms = [Matcher.of(t, n, v) for n, t, v in matchers]
    if name is not None:
        ms.insert(0, Matcher.of("=", "__name__", name))
    return ast.VectorSelector(name, ms)


def as_dict(v: Value, step: int = 0) -> dict[Labels, float]:
    """Present values at ``step``, keyed by labels with the name removed where dropped."""
    assert isinstance(v, VectorSteps)
    out: dict[Labels, float] = {}
    for i, lb in enumerate(v.labels):
        if not v.present[i, step]:
            continue
        if v.drop_name is not None and v.drop_name[i]:
            lb = tuple(p for p in lb if p[0] != "__name__")
        out[lb] = float(v.values[i, step])
    return out


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300) or abs(a - b) < 1e-12


def assert_values(got: Value, want: dict[Labels, float], step: int = 0, rel: float = 1e-9) -> None:
    d = as_dict(got, step)
    assert set(d) == set(want), f"labels differ: got {sorted(d)} want {sorted(want)}"
    for lb, w in want.items():
        assert close(d[lb], w, rel), f"{lb}: got {d[lb]!r} want {w!r}"
