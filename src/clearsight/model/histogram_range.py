"""Histogram math of PromQL's range functions, per series and window (pure; Prometheus semantics).

The engine keeps its own windowing, extrapolation factor and vectorization; these functions do
the histogram-specific part of one window:

- :func:`rate_delta`: the raw increase of ``rate``/``increase`` (``is_counter=True``: resets
  detected and compensated) or ``delta`` (``is_counter=False``), before extrapolation. Multiply it
  by the extrapolation factor (with :meth:`FloatHistogram.mul`) exactly as for floats; for the
  counter "duration to zero" use ``first.count / result.count`` in place of the float ratio.
- :func:`instant_delta`: ``irate``/``idelta`` from the last two points (divide by seconds for irate).
- :func:`sum_over_time`, :func:`avg_over_time`.

Each returns the result (or None when Prometheus drops the series) and a set of :class:`Note`
values; the engine renders them as annotations with the metric name and position.
"""

from __future__ import annotations

from enum import Enum

from clearsight.model.histogram import (
    CounterResetHint,
    FloatHistogram,
    IncompatibleSchemaError,
    KahanHistogramSum,
)


class Note(Enum):
    #: warn "this native histogram metric is not a counter: <name>"
    NOT_COUNTER = "not_counter"
    #: warn "this native histogram metric is not a gauge: <name>"
    NOT_GAUGE = "not_gauge"
    #: warn "vector contains a mix of histograms with exponential and custom buckets schemas ..."
    MIXED_EXPONENTIAL_CUSTOM = "mixed_exponential_custom"
    #: info "mismatched custom buckets were reconciled during subtraction"
    NHCB_RECONCILED_SUB = "nhcb_reconciled_sub"
    #: info "mismatched custom buckets were reconciled during addition"
    NHCB_RECONCILED_ADD = "nhcb_reconciled_add"
    #: info "mismatched custom buckets were reconciled during aggregation"
    NHCB_RECONCILED_AGG = "nhcb_reconciled_agg"
    #: warn "conflicting counter resets during histogram aggregation"
    COUNTER_RESET_COLLISION_AGG = "counter_reset_collision_agg"
    #: warn "start timestamp overlap ..." (a sample's start time lies before the previous sample)
    START_TIME_OVERLAP = "start_time_overlap"
    #: warn "conflicting counter resets during histogram addition"
    COUNTER_RESET_COLLISION_ADD = "counter_reset_collision_add"
    #: warn "conflicting counter resets during histogram subtraction"
    COUNTER_RESET_COLLISION_SUB = "counter_reset_collision_sub"
    #: info "incompatible sample types encountered for binary operator "<op>": <lhs type> <op> <rhs type>"
    INCOMPATIBLE_TYPES_BINOP = "incompatible_types_binop"


def is_start_timestamp_reset(prev_st: int, prev_t: int, cur_st: int, cur_t: int) -> bool:
    """Whether start timestamps (0 = unknown) show a counter reset between two samples."""
    if cur_st == 0 or cur_st >= cur_t:
        return False
    if cur_st < prev_t:
        return False
    if cur_st > prev_t:
        return True
    if prev_st > prev_t:
        return False
    return prev_st not in (0, prev_t)


def start_time_overlap(prev_st: int, prev_t: int, cur_st: int) -> bool:
    return cur_st != 0 and cur_st < prev_t and cur_st != prev_st


def rate_delta(
    points: list[FloatHistogram],
    is_counter: bool,
    timestamps: list[int] | None = None,
    start_timestamps: list[int] | None = None,
) -> tuple[FloatHistogram | None, set[Note]]:
    """Last minus first over >= 2 points of one window, compensating counter resets.

    Prometheus' ``histogramRate``: the result is a compacted gauge histogram in the lowest schema
    seen; None (with a note) when exponential and custom buckets mix.
    """
    notes: set[Note] = set()
    if len(points) < 2:
        raise ValueError("rate_delta needs at least two points")
    sts = start_timestamps or []
    ts = timestamps or []
    has_st = len(sts) == len(points) and len(ts) == len(points)
    prev = points[0]
    last = points[-1]
    custom = prev.uses_custom_buckets
    if is_counter and (
        prev.counter_reset_hint == CounterResetHint.GAUGE or last.counter_reset_hint == CounterResetHint.GAUGE
    ):
        notes.add(Note.NOT_COUNTER)
    if is_counter:
        second = points[1]
        st_reset = has_st and is_start_timestamp_reset(sts[0], ts[0], sts[1], ts[1])
        if st_reset or second.detect_reset(prev):
            # Ignore the first sample (and its layout): the window starts from zero.
            prev = FloatHistogram(schema=second.schema, custom_values=second.custom_values)
            custom = second.uses_custom_buckets
    if last.uses_custom_buckets != custom:
        return None, notes | {Note.MIXED_EXPONENTIAL_CUSTOM}
    min_schema = min(last.schema, prev.schema)
    for cur in points[1:-1]:
        if not is_counter:
            continue
        if cur.counter_reset_hint == CounterResetHint.GAUGE:
            notes.add(Note.NOT_COUNTER)
        min_schema = min(min_schema, cur.schema)
        if cur.uses_custom_buckets != custom:
            return None, {Note.MIXED_EXPONENTIAL_CUSTOM}
    h = last.copy_to_schema(min_schema)
    try:
        res = h.sub(prev)
    except IncompatibleSchemaError:
        return None, {Note.MIXED_EXPONENTIAL_CUSTOM}
    h = res.histogram
    if res.nhcb_bounds_reconciled:
        notes.add(Note.NHCB_RECONCILED_SUB)
    if is_counter:
        # ``prev`` stays the (possibly emptied) first point, as in Prometheus.
        overlap = False
        for i, cur in enumerate(points[1:]):
            if has_st and not overlap and start_time_overlap(sts[i], ts[i], sts[i + 1]):
                notes.add(Note.START_TIME_OVERLAP)
                overlap = True
            st_reset = has_st and is_start_timestamp_reset(sts[i], ts[i], sts[i + 1], ts[i + 1])
            if st_reset or cur.detect_reset(prev):
                try:
                    r = h.add(prev)
                except IncompatibleSchemaError:
                    return None, {Note.MIXED_EXPONENTIAL_CUSTOM}
                h = r.histogram
                if r.nhcb_bounds_reconciled:
                    notes.add(Note.NHCB_RECONCILED_ADD)
            prev = cur
    elif (
        points[0].counter_reset_hint != CounterResetHint.GAUGE
        or points[-1].counter_reset_hint != CounterResetHint.GAUGE
    ):
        notes.add(Note.NOT_GAUGE)
    return h.with_hint(CounterResetHint.GAUGE).compact(), notes


def instant_delta(
    prev: FloatHistogram,
    last: FloatHistogram,
    is_rate: bool,
    prev_st: int = 0,
    prev_t: int = 0,
    last_st: int = 0,
    last_t: int = 0,
) -> tuple[FloatHistogram | None, set[Note]]:
    """``irate`` (``is_rate``; divide the result by the seconds between the points) / ``idelta``.

    For irate a reset between the two points makes the result the last histogram itself.
    """
    notes: set[Note] = set()
    gauge = CounterResetHint.GAUGE
    if is_rate and (last.counter_reset_hint == gauge or prev.counter_reset_hint == gauge):
        notes.add(Note.NOT_COUNTER)
    if not is_rate and (last.counter_reset_hint != gauge or prev.counter_reset_hint != gauge):
        notes.add(Note.NOT_GAUGE)
    h = last
    if not is_rate or (
        not is_start_timestamp_reset(prev_st, prev_t, last_st, last_t) and not last.detect_reset(prev)
    ):
        try:
            r = last.sub(prev)
        except IncompatibleSchemaError:
            return None, notes | {Note.MIXED_EXPONENTIAL_CUSTOM}
        h = r.histogram
        if r.nhcb_bounds_reconciled:
            notes.add(Note.NHCB_RECONCILED_SUB)
    return h.with_hint(gauge).compact(), notes


def _track_hints(points: list[FloatHistogram]) -> set[Note]:
    hints = {p.counter_reset_hint for p in points}
    if CounterResetHint.RESET in hints and CounterResetHint.NOT_RESET in hints:
        return {Note.COUNTER_RESET_COLLISION_AGG}
    return set()


def sum_over_time(points: list[FloatHistogram]) -> tuple[FloatHistogram | None, set[Note]]:
    """Kahan-compensated sum of a window's histograms (``sum_over_time``)."""
    notes = _track_hints(points)
    acc = KahanHistogramSum(points[0])
    for p in points[1:]:
        try:
            _, reconciled = acc.add(p)
        except IncompatibleSchemaError:
            return None, {Note.MIXED_EXPONENTIAL_CUSTOM}
        if reconciled:
            notes.add(Note.NHCB_RECONCILED_AGG)
    return acc.result(), notes


def avg_over_time(points: list[FloatHistogram]) -> tuple[FloatHistogram | None, set[Note]]:
    """Mean of a window's histograms (``avg_over_time``): the compensated sum divided by the
    number of points, switching to an incremental mean if the running sum overflows."""
    notes = _track_hints(points)
    acc = KahanHistogramSum(points[0])
    mean: KahanHistogramSum | None = None
    count = 1.0
    for i, p in enumerate(points[1:]):
        count = float(i + 2)
        try:
            if mean is None:
                trial = KahanHistogramSum(acc.h)
                trial.c_count, trial.c_sum, trial.c_zero = acc.c_count, acc.c_sum, acc.c_zero
                trial.c_pos, trial.c_neg = list(acc.c_pos), list(acc.c_neg)
                _, reconciled = trial.add(p)
                if reconciled:
                    notes.add(Note.NHCB_RECONCILED_AGG)
                if not trial.h.has_overflow():
                    acc = trial
                    continue
                # Switch to an incremental mean from the sum so far.
                mean = KahanHistogramSum(acc.h.div(count - 1))
                mean.c_count, mean.c_sum, mean.c_zero = (
                    acc.c_count / (count - 1),
                    acc.c_sum / (count - 1),
                    acc.c_zero / (count - 1),
                )
                mean.c_pos = [c / (count - 1) for c in acc.c_pos]
                mean.c_neg = [c / (count - 1) for c in acc.c_neg]
            q = (count - 1) / count
            scaled = KahanHistogramSum(mean.h.mul(q))
            scaled.c_count, scaled.c_sum, scaled.c_zero = mean.c_count * q, mean.c_sum * q, mean.c_zero * q
            scaled.c_pos = [c * q for c in mean.c_pos]
            scaled.c_neg = [c * q for c in mean.c_neg]
            _, reconciled = scaled.add(p.div(count))
            if reconciled:
                notes.add(Note.NHCB_RECONCILED_AGG)
            mean = scaled
        except IncompatibleSchemaError:
            return None, {Note.MIXED_EXPONENTIAL_CUSTOM}
    if mean is not None:
        return mean.result(), notes
    if len(points) == 1:
        return points[0].div(1.0), notes
    total = acc.h.div(count)
    comp = acc.compensation().div(count)
    return total.add(comp).histogram, notes
