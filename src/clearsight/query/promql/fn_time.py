"""Calendar functions (``year()``, ``hour()``, ...), UTC, vectorized with numpy datetime64.

With an argument they read each value as Unix seconds (truncated toward zero, as Go's
``time.Unix(int64(v), 0)``); without one they use the evaluation time of each step. Values that
are not finite, or too large for a Go ``int64``, yield NaN (Go's conversion of such values is
platform-defined).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clearsight.query.promql.fn_common import F64, I64, arg_vector, drop_all, vector_result
from clearsight.query.promql.values import FuncContext, Value, VectorSteps

Calendar = Callable[[I64], I64]

_SECONDS_PER_DAY = 86400


def _days(secs: I64) -> I64:
    out: I64 = np.floor_divide(secs, _SECONDS_PER_DAY)
    return out


def _year(secs: I64) -> I64:
    d = _days(secs).astype("datetime64[D]")
    out: I64 = d.astype("datetime64[Y]").astype(np.int64) + 1970
    return out


def _month(secs: I64) -> I64:
    d = _days(secs).astype("datetime64[D]")
    out: I64 = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return out


def _day_of_month(secs: I64) -> I64:
    d = _days(secs).astype("datetime64[D]")
    out: I64 = (d - d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    return out


def _day_of_year(secs: I64) -> I64:
    d = _days(secs).astype("datetime64[D]")
    out: I64 = (d - d.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) + 1
    return out


def _day_of_week(secs: I64) -> I64:
    out: I64 = (_days(secs) + 4) % 7  # 1970-01-01 was a Thursday
    return out


def _days_in_month(secs: I64) -> I64:
    mon = _days(secs).astype("datetime64[D]").astype("datetime64[M]")
    out: I64 = ((mon + 1).astype("datetime64[D]") - mon.astype("datetime64[D]")).astype(np.int64)
    return out


def _hour(secs: I64) -> I64:
    out: I64 = np.mod(secs, _SECONDS_PER_DAY) // 3600
    return out


def _minute(secs: I64) -> I64:
    out: I64 = np.mod(secs, 3600) // 60
    return out


CALENDAR: dict[str, Calendar] = {
    "year": _year,
    "month": _month,
    "day_of_month": _day_of_month,
    "day_of_year": _day_of_year,
    "day_of_week": _day_of_week,
    "days_in_month": _days_in_month,
    "hour": _hour,
    "minute": _minute,
}

_LIMIT = 9.2e18  # below 2**63


def _from_values(values: F64, fn: Calendar) -> F64:
    ok = np.isfinite(values) & (np.abs(values) < _LIMIT)
    secs = np.trunc(np.where(ok, values, 0.0)).astype(np.int64)
    out = fn(secs).astype(np.float64)
    res: F64 = np.where(ok, out, np.nan)
    return res


def _make(name: str, fn: Calendar) -> Callable[[FuncContext, list[Value]], Value]:
    def impl(ctx: FuncContext, args: list[Value]) -> Value:
        if not args:
            st = np.asarray(ctx.step_times, dtype=np.int64)
            secs = np.where(st < 0, -((-st) // 1000), st // 1000)  # Go's integer division
            vals = fn(secs).astype(np.float64)[None, :]
            return VectorSteps([()], vals, np.ones(vals.shape, dtype=bool))
        v = arg_vector(args, 0, name)
        with np.errstate(all="ignore"):
            vals = _from_values(v.values, fn)
        return vector_result(list(v.labels), vals, v.present.copy(), drop_all(v.num_series))

    impl.__name__ = f"fn_{name}"
    return impl


CALENDAR_IMPLS = {name: _make(name, fn) for name, fn in CALENDAR.items()}
