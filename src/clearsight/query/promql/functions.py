"""The PromQL function library: ``FUNCTIONS`` maps a function name to its implementation.

An implementation is called by the engine as ``impl(ctx, args)`` with the evaluated arguments
(``MatrixSteps`` for range-vector arguments, ``VectorSteps``, ``ScalarSteps``, or ``str``) and
returns the value for all query steps at once. Semantics follow Prometheus 3
(``promql/functions.go``) for float samples, including delayed ``__name__`` removal: functions
that change the meaning of a value set ``drop_name`` on their output series instead of removing
the label. Evaluation errors raise ``QueryError``; annotations go to ``ctx.annotations`` with
Prometheus' message text (without the ``(line:col)`` position suffix, which the AST does not
carry).

Modules: ``fn_range`` (range-vector functions, including ``anchored``/``smoothed`` rate, increase,
delta, changes and resets), ``fn_math`` (math, clamping, rounding, scalar conversions,
``timestamp``), ``fn_time`` (calendar functions), ``fn_labels`` (label_replace/label_join, the
sort family, ``absent``), ``fn_histogram`` (classic-bucket ``histogram_quantile(s)`` and
``histogram_fraction``), ``fn_common`` (flat sample arrays, window search, compensated sums, Go
number formatting).

Not provided here: ``info()``, which needs the store (the engine evaluates it). Sample start
(created) timestamps are not stored, so ``start_timestamp()`` returns nothing and rate/increase/
irate/resets ignore start times.
"""

from __future__ import annotations

from clearsight.query.promql import fn_histogram as h
from clearsight.query.promql import fn_labels as lb
from clearsight.query.promql import fn_math as mt
from clearsight.query.promql import fn_range as rg
from clearsight.query.promql.fn_time import CALENDAR_IMPLS
from clearsight.query.promql.values import FunctionImpl

FUNCTIONS: dict[str, FunctionImpl] = {
    # range-vector functions
    "rate": rg.fn_rate,
    "increase": rg.fn_increase,
    "delta": rg.fn_delta,
    "irate": rg.fn_irate,
    "idelta": rg.fn_idelta,
    "changes": rg.fn_changes,
    "resets": rg.fn_resets,
    "deriv": rg.fn_deriv,
    "predict_linear": rg.fn_predict_linear,
    "double_exponential_smoothing": rg.fn_double_exponential_smoothing,
    "avg_over_time": rg.fn_avg_over_time,
    "sum_over_time": rg.fn_sum_over_time,
    "count_over_time": rg.fn_count_over_time,
    "min_over_time": rg.fn_min_over_time,
    "max_over_time": rg.fn_max_over_time,
    "stddev_over_time": rg.fn_stddev_over_time,
    "stdvar_over_time": rg.fn_stdvar_over_time,
    "last_over_time": rg.fn_last_over_time,
    "first_over_time": rg.fn_first_over_time,
    "present_over_time": rg.fn_present_over_time,
    "quantile_over_time": rg.fn_quantile_over_time,
    "mad_over_time": rg.fn_mad_over_time,
    "ts_of_last_over_time": rg.fn_ts_of_last_over_time,
    "ts_of_first_over_time": rg.fn_ts_of_first_over_time,
    "ts_of_max_over_time": rg.fn_ts_of_max_over_time,
    "ts_of_min_over_time": rg.fn_ts_of_min_over_time,
    "absent_over_time": rg.fn_absent_over_time,
    # instant-vector math
    **mt.SIMPLE_IMPLS,
    "clamp": mt.fn_clamp,
    "clamp_min": mt.fn_clamp_min,
    "clamp_max": mt.fn_clamp_max,
    "round": mt.fn_round,
    "timestamp": mt.fn_timestamp,
    "start_timestamp": mt.fn_start_timestamp,
    # scalars and conversions
    "pi": mt.fn_pi,
    "time": mt.fn_time,
    "scalar": mt.fn_scalar,
    "vector": mt.fn_vector,
    "min_of": mt.fn_min_of,
    "max_of": mt.fn_max_of,
    "step": mt.fn_step,
    "range": mt.fn_range,
    "start": mt.fn_start,
    "end": mt.fn_end,
    # calendar
    **CALENDAR_IMPLS,
    # series functions
    "label_replace": lb.fn_label_replace,
    "label_join": lb.fn_label_join,
    "sort": lb.fn_sort,
    "sort_desc": lb.fn_sort_desc,
    "sort_by_label": lb.fn_sort_by_label,
    "sort_by_label_desc": lb.fn_sort_by_label_desc,
    "absent": lb.fn_absent,
    # histograms
    "histogram_quantile": h.fn_histogram_quantile,
    "histogram_quantiles": h.fn_histogram_quantiles,
    "histogram_fraction": h.fn_histogram_fraction,
    "histogram_count": h.fn_native_only,
    "histogram_sum": h.fn_native_only,
    "histogram_avg": h.fn_native_only,
    "histogram_stddev": h.fn_native_only,
    "histogram_stdvar": h.fn_native_only,
}

# Range-vector functions whose output keeps the metric name (they act like an offset).
KEEPS_METRIC_NAME = frozenset({"last_over_time", "first_over_time"})
