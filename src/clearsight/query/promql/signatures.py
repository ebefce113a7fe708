"""PromQL function signatures (Prometheus 3.x, including experimental functions).

The parser uses this table to resolve calls, check argument counts and types, and set
``Call.return_type``. ``variadic`` follows Prometheus' convention:

* ``0``: exactly ``len(arg_types)`` arguments;
* ``n > 0``: the last argument type may appear between 0 and ``n`` times beyond the fixed ones
  (so ``len(arg_types) - 1`` .. ``len(arg_types) - 1 + n`` arguments);
* ``-1``: the last argument type may repeat without limit (at least ``len(arg_types) - 1``).
"""

from __future__ import annotations

from dataclasses import dataclass

from clearsight.query.promql.ast import ValueType

V = ValueType.VECTOR
M = ValueType.MATRIX
S = ValueType.SCALAR
STR = ValueType.STRING


@dataclass(frozen=True)
class FunctionSignature:
    name: str
    arg_types: tuple[ValueType, ...]
    return_type: ValueType
    variadic: int = 0
    experimental: bool = False

    @property
    def min_args(self) -> int:
        return len(self.arg_types) if self.variadic == 0 else len(self.arg_types) - 1

    @property
    def max_args(self) -> int | None:
        """Maximum number of arguments, ``None`` for unbounded."""
        if self.variadic == 0:
            return len(self.arg_types)
        if self.variadic < 0:
            return None
        return len(self.arg_types) - 1 + self.variadic

    def arg_type(self, index: int) -> ValueType:
        """The expected type of argument ``index`` (variadic tails repeat the last type)."""
        if index < len(self.arg_types):
            return self.arg_types[index]
        return self.arg_types[-1]


def _f(name: str, args: list[ValueType], ret: ValueType, variadic: int = 0,
       experimental: bool = False) -> FunctionSignature:
    return FunctionSignature(name, tuple(args), ret, variadic, experimental)


_ALL = [
    _f("abs", [V], V),
    _f("absent", [V], V),
    _f("absent_over_time", [M], V),
    _f("acos", [V], V),
    _f("acosh", [V], V),
    _f("asin", [V], V),
    _f("asinh", [V], V),
    _f("atan", [V], V),
    _f("atanh", [V], V),
    _f("avg_over_time", [M], V),
    _f("ceil", [V], V),
    _f("changes", [M], V),
    _f("clamp", [V, S, S], V),
    _f("clamp_max", [V, S], V),
    _f("clamp_min", [V, S], V),
    _f("cos", [V], V),
    _f("cosh", [V], V),
    _f("count_over_time", [M], V),
    _f("days_in_month", [V], V, variadic=1),
    _f("day_of_month", [V], V, variadic=1),
    _f("day_of_week", [V], V, variadic=1),
    _f("day_of_year", [V], V, variadic=1),
    _f("deg", [V], V),
    _f("delta", [M], V),
    _f("deriv", [M], V),
    _f("double_exponential_smoothing", [M, S, S], V, experimental=True),
    _f("end", [], S, experimental=True),
    _f("exp", [V], V),
    _f("first_over_time", [M], V),
    _f("floor", [V], V),
    _f("histogram_avg", [V], V),
    _f("histogram_count", [V], V),
    _f("histogram_fraction", [S, S, V], V),
    _f("histogram_quantile", [S, V], V),
    _f("histogram_quantiles", [V, STR, S, S], V, variadic=9, experimental=True),
    _f("histogram_stddev", [V], V),
    _f("histogram_stdvar", [V], V),
    _f("histogram_sum", [V], V),
    _f("hour", [V], V, variadic=1),
    _f("idelta", [M], V),
    _f("increase", [M], V),
    _f("info", [V, V], V, variadic=1, experimental=True),
    _f("irate", [M], V),
    _f("label_join", [V, STR, STR, STR], V, variadic=-1),
    _f("label_replace", [V, STR, STR, STR, STR], V),
    _f("last_over_time", [M], V),
    _f("ln", [V], V),
    _f("log10", [V], V),
    _f("log2", [V], V),
    _f("mad_over_time", [M], V, experimental=True),
    _f("max_of", [S, S], S, experimental=True),
    _f("max_over_time", [M], V),
    _f("min_of", [S, S], S, experimental=True),
    _f("min_over_time", [M], V),
    _f("minute", [V], V, variadic=1),
    _f("month", [V], V, variadic=1),
    _f("pi", [], S),
    _f("predict_linear", [M, S], V),
    _f("present_over_time", [M], V),
    _f("quantile_over_time", [S, M], V),
    _f("rad", [V], V),
    _f("range", [], S, experimental=True),
    _f("rate", [M], V),
    _f("resets", [M], V),
    _f("round", [V, S], V, variadic=1),
    _f("scalar", [V], S),
    _f("sgn", [V], V),
    _f("sin", [V], V),
    _f("sinh", [V], V),
    _f("sort", [V], V),
    _f("sort_by_label", [V, STR], V, variadic=-1, experimental=True),
    _f("sort_by_label_desc", [V, STR], V, variadic=-1, experimental=True),
    _f("sort_desc", [V], V),
    _f("sqrt", [V], V),
    _f("start", [], S, experimental=True),
    _f("start_timestamp", [V], V, experimental=True),
    _f("stddev_over_time", [M], V),
    _f("stdvar_over_time", [M], V),
    _f("step", [], S, experimental=True),
    _f("sum_over_time", [M], V),
    _f("tan", [V], V),
    _f("tanh", [V], V),
    _f("time", [], S),
    _f("timestamp", [V], V),
    _f("ts_of_first_over_time", [M], V, experimental=True),
    _f("ts_of_last_over_time", [M], V, experimental=True),
    _f("ts_of_max_over_time", [M], V, experimental=True),
    _f("ts_of_min_over_time", [M], V, experimental=True),
    _f("vector", [S], V),
    _f("year", [V], V, variadic=1),
]

FUNCTIONS: dict[str, FunctionSignature] = {f.name: f for f in _ALL}

# Functions that accept the experimental ``anchored`` / ``smoothed`` range-selector modifiers
# (the engine rejects others with "anchored modifier can only be used with: ...").
ANCHORED_SAFE_FUNCTIONS: frozenset[str] = frozenset({"changes", "delta", "increase", "rate", "resets"})
SMOOTHED_SAFE_FUNCTIONS: frozenset[str] = frozenset({"delta", "increase", "rate"})

# Aggregations taking a parameter, and the parameter's type.
AGGREGATION_PARAM_TYPES: dict[str, ValueType] = {
    "topk": S, "bottomk": S, "quantile": S, "limitk": S, "limit_ratio": S, "count_values": STR,
}
EXPERIMENTAL_AGGREGATIONS: frozenset[str] = frozenset({"limitk", "limit_ratio"})


def documented_type(t: ValueType) -> str:
    """The type name used in Prometheus' error messages ("instant vector", "range vector", ...)."""
    if t is ValueType.VECTOR:
        return "instant vector"
    if t is ValueType.MATRIX:
        return "range vector"
    return t.value
