"""Instant-vector math, clamping, rounding and scalar functions (all steps at once)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clearsight.query.promql.fn_common import (
    F64,
    arg_scalar,
    arg_vector,
    drop_all,
    vector_result,
)
from clearsight.query.promql.values import FuncContext, ScalarSteps, Value, VectorSteps

FloatFn = Callable[[F64], F64]


def _steps(ctx: FuncContext) -> int:
    return int(np.asarray(ctx.step_times).shape[0])


def apply_float(v: VectorSteps, fn: FloatFn) -> VectorSteps:
    """Applies ``fn`` to every value; the output drops the metric name (Prometheus'
    ``simpleFloatFunc``)."""
    with np.errstate(all="ignore"):
        vals = fn(v.values)
    return vector_result(list(v.labels), vals, v.present.copy(), drop_all(v.num_series))


def _simple(name: str, fn: FloatFn) -> Callable[[FuncContext, list[Value]], Value]:
    def impl(ctx: FuncContext, args: list[Value]) -> Value:
        return apply_float(arg_vector(args, 0, name), fn)

    impl.__name__ = f"fn_{name}"
    return impl


def _sgn(x: F64) -> F64:
    out: F64 = np.where(x < 0, -1.0, np.where(x > 0, 1.0, x))
    return out


def _rad(x: F64) -> F64:
    out: F64 = x * np.pi / 180
    return out


def _deg(x: F64) -> F64:
    out: F64 = x * 180 / np.pi
    return out


_INV_LN2 = 1.4426950408889634  # Go's 1/Ln2 constant, rounded once
_INV_LN10 = 0.4342944819032518  # Go's 1/Ln10


def _log2(x: F64) -> F64:
    """Go's ``math.Log2``: exact for powers of two, else ``Log(frac)/Ln2 + exp``."""
    frac, exp = np.frexp(x)
    out: F64 = np.where(frac == 0.5, (exp - 1).astype(np.float64), np.log(frac) * _INV_LN2 + exp)
    return out


def _log10(x: F64) -> F64:
    """Go's ``math.Log10``: ``Log(x) * (1/Ln10)``."""
    out: F64 = np.log(x) * _INV_LN10
    return out


SIMPLE_FUNCS: dict[str, FloatFn] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": _log2,
    "log10": _log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "rad": _rad,
    "deg": _deg,
    "sgn": _sgn,
}

SIMPLE_IMPLS = {name: _simple(name, fn) for name, fn in SIMPLE_FUNCS.items()}


def _clamp(v: VectorSteps, lo: F64, hi: F64) -> VectorSteps:
    """``max(lo, min(hi, x))``; steps where ``hi < lo`` have no output."""
    with np.errstate(all="ignore"):
        vals = np.maximum(lo[None, :], np.minimum(hi[None, :], v.values))
    present = v.present & ~(hi < lo)[None, :]
    return vector_result(list(v.labels), vals, present, drop_all(v.num_series))


def fn_clamp(ctx: FuncContext, args: list[Value]) -> Value:
    v = arg_vector(args, 0, "clamp")
    k = _steps(ctx)
    return _clamp(v, arg_scalar(args, 1, "clamp", k), arg_scalar(args, 2, "clamp", k))


def fn_clamp_min(ctx: FuncContext, args: list[Value]) -> Value:
    v = arg_vector(args, 0, "clamp_min")
    k = _steps(ctx)
    return _clamp(v, arg_scalar(args, 1, "clamp_min", k), np.full(k, np.inf))


def fn_clamp_max(ctx: FuncContext, args: list[Value]) -> Value:
    v = arg_vector(args, 0, "clamp_max")
    k = _steps(ctx)
    return _clamp(v, np.full(k, -np.inf), arg_scalar(args, 1, "clamp_max", k))


def fn_round(ctx: FuncContext, args: list[Value]) -> Value:
    v = arg_vector(args, 0, "round")
    k = _steps(ctx)
    to_nearest = arg_scalar(args, 1, "round", k) if len(args) > 1 else np.ones(k)
    with np.errstate(all="ignore"):
        inv = (1.0 / to_nearest)[None, :]
        return apply_float(v, lambda x: np.floor(x * inv + 0.5) / inv)


def fn_pi(ctx: FuncContext, args: list[Value]) -> Value:
    return ScalarSteps(np.full(_steps(ctx), np.pi))


def fn_time(ctx: FuncContext, args: list[Value]) -> Value:
    return ScalarSteps(np.asarray(ctx.step_times, dtype=np.int64).astype(np.float64) / 1000)


def fn_scalar(ctx: FuncContext, args: list[Value]) -> Value:
    v = arg_vector(args, 0, "scalar")
    k = _steps(ctx)
    if v.num_series == 0:
        return ScalarSteps(np.full(k, np.nan))
    counts = v.present.sum(axis=0)
    first = np.argmax(v.present, axis=0)
    vals = v.values[first, np.arange(k)]
    return ScalarSteps(np.where(counts == 1, vals, np.nan))


def fn_vector(ctx: FuncContext, args: list[Value]) -> Value:
    k = _steps(ctx)
    s = arg_scalar(args, 0, "vector", k)
    return VectorSteps([()], s[None, :].copy(), np.ones((1, k), dtype=bool))


def fn_min_of(ctx: FuncContext, args: list[Value]) -> Value:
    k = _steps(ctx)
    return ScalarSteps(np.minimum(arg_scalar(args, 0, "min_of", k), arg_scalar(args, 1, "min_of", k)))


def fn_max_of(ctx: FuncContext, args: list[Value]) -> Value:
    k = _steps(ctx)
    return ScalarSteps(np.maximum(arg_scalar(args, 0, "max_of", k), arg_scalar(args, 1, "max_of", k)))


def fn_timestamp(ctx: FuncContext, args: list[Value]) -> Value:
    """The timestamp of each sample in seconds: the selected sample's own time for plain
    selectors (``sample_ts``), else the evaluation time."""
    v = arg_vector(args, 0, "timestamp")
    if v.sample_ts is not None:
        ts = np.asarray(v.sample_ts, dtype=np.int64)
    else:
        ts = np.broadcast_to(np.asarray(ctx.step_times, dtype=np.int64)[None, :], v.values.shape)
    vals = ts.astype(np.float64) / 1000
    return vector_result(list(v.labels), vals, v.present.copy(), drop_all(v.num_series))


def fn_start_timestamp(ctx: FuncContext, args: list[Value]) -> Value:
    """The start (created) timestamp in seconds of each sample a plain vector selector chose (0
    where unknown); nothing for computed vectors or data without start timestamps."""
    v = arg_vector(args, 0, "start_timestamp")
    if v.sample_st is None:
        return VectorSteps.empty(v.values.shape[1])
    vals = np.where(v.present, v.sample_st.astype(np.float64) / 1000.0, np.nan)
    return VectorSteps(v.labels, vals, v.present.copy(), np.ones(v.num_series, dtype=bool))


# Query-context functions: Prometheus folds them into literals before evaluation. FuncContext
# only carries the step times, so a range query with a single step reports step() == 0.


def fn_step(ctx: FuncContext, args: list[Value]) -> Value:
    st = np.asarray(ctx.step_times, dtype=np.int64)
    step = float(st[1] - st[0]) / 1000 if st.shape[0] > 1 else 0.0
    return ScalarSteps(np.full(st.shape[0], step))


def fn_range(ctx: FuncContext, args: list[Value]) -> Value:
    st = np.asarray(ctx.step_times, dtype=np.int64)
    rng = float(st[-1] - st[0]) / 1000 if st.shape[0] else 0.0
    return ScalarSteps(np.full(st.shape[0], rng))


def fn_start(ctx: FuncContext, args: list[Value]) -> Value:
    st = np.asarray(ctx.step_times, dtype=np.int64)
    return ScalarSteps(np.full(st.shape[0], float(st[0]) / 1000 if st.shape[0] else 0.0))


def fn_end(ctx: FuncContext, args: list[Value]) -> Value:
    st = np.asarray(ctx.step_times, dtype=np.int64)
    return ScalarSteps(np.full(st.shape[0], float(st[-1]) / 1000 if st.shape[0] else 0.0))
