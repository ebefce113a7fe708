"""The result of a PromQL query as the engine hands it to the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import Labels
from clearsight.query.promql.values import F64, I64, Annotations


@dataclass
class SeriesResult:
    """One output series: its labels and its points (timestamps ms ascending, float64 values).

    ``histograms``, when set, is aligned with ``timestamps``: a ``FloatHistogram`` where that
    point is a native histogram sample (its ``values`` entry is then NaN and meaningless), None
    where it is a float. Prometheus' API emits histogram points as ``"histogram"``/``"histograms"``
    instead of ``"value"``/``"values"``."""

    labels: Labels
    timestamps: I64
    values: F64
    histograms: list[FloatHistogram | None] | None = None

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as ``labels, timestamps, values``."""
        return iter((self.labels, self.timestamps, self.values))

    def points(self) -> list[tuple[int, float]]:
        """The float points (histogram points left out)."""
        hs = self.histograms
        return [(int(t), float(v)) for i, (t, v) in enumerate(zip(self.timestamps, self.values, strict=True))
                if hs is None or hs[i] is None]

    def histogram_points(self) -> list[tuple[int, FloatHistogram]]:
        hs = self.histograms
        if hs is None:
            return []
        return [(int(t), h) for t, h in zip(self.timestamps, hs, strict=True) if h is not None]


def histogram_json(h: FloatHistogram) -> dict[str, Any]:
    """Prometheus' JSON for a histogram point (``util/jsonutil.MarshalHistogram``): ``count`` and
    ``sum`` as strings and ``buckets`` as ``[boundary_rule, lower, upper, count]`` for non-empty
    buckets in ascending order, where the rule is 0 = (lower, upper], 1 = [lower, upper),
    2 = (lower, upper), 3 = [lower, upper]. ``buckets`` is absent when all are empty."""
    from clearsight.query.promql.vecutil import format_float

    out: dict[str, Any] = {"count": format_float(h.count), "sum": format_float(h.sum)}
    buckets: list[list[Any]] = []
    for b in h.iter_buckets():
        if b.count == 0:
            continue
        if b.lower_inclusive:
            rule = 3 if b.upper_inclusive else 1
        else:
            rule = 0 if b.upper_inclusive else 2
        buckets.append([rule, format_float(b.lower), format_float(b.upper), format_float(b.count)])
    if buckets:
        out["buckets"] = buckets
    return out


@dataclass
class QueryStats:
    samples_loaded: int = 0  # raw samples read from the store
    series_fetched: int = 0  # series returned by store selects
    peak_points: int = 0  # most points held at once (samples, intermediates; see query/budget.py)
    # Prometheus' totalQueryableSamples: per step, one per series a vector selector found a sample
    # for, and the samples in each window of a range selector. Counted only when asked
    # (``Engine.instant/range(count_samples=True)``, the API's ``stats`` parameter).
    queryable_samples: int = 0


class FloatRows(NamedTuple):
    """Float series as columns (an instant vector's result: ``engine._bare_rows``,
    ``engine._shared_columns``): series ``i`` has labels ``labels[i]`` and the points ``values[i]``
    at ``timestamps``, every step present. Both arrays are read-only; the rows share the timestamp
    column."""

    labels: Sequence[Labels]
    timestamps: I64
    values: F64  # (series x steps)


class QueryResult:
    """``result_type`` is "vector", "matrix", "scalar" or "string".

    - vector (instant query): one ``SeriesResult`` per output series, each with exactly one point
      at the evaluation time; the order is the engine's output order (``sort()`` etc. honoured).
    - matrix: range queries (sorted by labels), or an instant query of a range vector.
    - scalar: ``series`` has one entry with empty labels (one point for an instant query).
    - string: ``string_value`` holds it.

    A vector may come as ``rows`` (``FloatRows``) instead: its ``series`` are then made from them
    the first time they are read, and an encoder that reads ``rows`` (``api/prometheus_query``)
    makes none (a small query's answer: no object and no array view per series).
    """

    __slots__ = ("_series", "annotations", "eval_time_ms", "result_type", "rows", "stats", "string_value")

    def __init__(self, result_type: str, series: list[SeriesResult] | None = None, string_value: str | None = None,
                 annotations: Annotations | None = None, stats: QueryStats | None = None, *,
                 rows: FloatRows | None = None, eval_time_ms: int = 0) -> None:
        if series is not None and rows is not None:
            raise ValueError("a result holds series or rows, not both")
        self.result_type = result_type
        self._series = series if series is not None or rows is not None else []
        self.rows = rows
        self.string_value = string_value
        self.annotations = annotations if annotations is not None else Annotations()
        self.stats = stats if stats is not None else QueryStats()
        self.eval_time_ms = eval_time_ms  # instant queries: the evaluation time

    @property
    def series(self) -> list[SeriesResult]:
        s = self._series
        if s is None:
            rows = self.rows
            assert rows is not None
            s = self._series = [SeriesResult(lbl, rows.timestamps, rows.values[i]) for i, lbl in enumerate(rows.labels)]
        return s

    @series.setter
    def series(self, value: list[SeriesResult]) -> None:
        self._series = value
        self.rows = None

    def __repr__(self) -> str:
        return (f"QueryResult({self.result_type!r}, series={self.series!r}, string_value={self.string_value!r}, "
                f"annotations={self.annotations!r}, stats={self.stats!r}, eval_time_ms={self.eval_time_ms!r})")

    @property
    def scalar(self) -> tuple[int, float]:
        """``(timestamp ms, value)`` of a scalar instant result."""
        if self.result_type != "scalar" or not self.series:
            raise ValueError("not a scalar result")
        return int(self.series[0].timestamps[0]), float(self.series[0].values[0])

    @property
    def string(self) -> tuple[int, str]:
        """``(timestamp ms, value)`` of a string result."""
        if self.result_type != "string" or self.string_value is None:
            raise ValueError("not a string result")
        return self.eval_time_ms, self.string_value

    @property
    def scalar_value(self) -> float:
        if self.result_type != "scalar" or not self.series:
            raise ValueError("not a scalar result")
        return float(self.series[0].values[0])

    @staticmethod
    def empty_series(labels: Labels) -> SeriesResult:
        return SeriesResult(labels, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
