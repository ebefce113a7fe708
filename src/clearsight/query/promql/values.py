"""Values the PromQL engine moves between operators, evaluated over all steps at once.

A query is evaluated at ``k`` step timestamps (an instant query is the case ``k == 1``). Every
expression yields one of these values for *all* steps together, so operators and functions work on
numpy arrays instead of looping per sample:

- ``ScalarSteps``: one float per step.
- ``VectorSteps``: an instant vector per step: ``n`` series x ``k`` steps; ``present[i, j]`` says
  whether series ``i`` has a value at step ``j`` (a value may itself be NaN).
- ``MatrixSteps``: a range vector per step (input of range functions such as ``rate``): for each
  series its raw samples, and per step the window ``(window_end[j] - range_ms, window_end[j]]``.
- ``str`` for string literals.

Times are int64 milliseconds; values float64.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

import numpy as np
import numpy.typing as npt

from clearsight.model.labels import Labels
from clearsight.query.promql.ast import Expr

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BoolArr = npt.NDArray[np.bool_]
# Object arrays of ``FloatHistogram | None`` (native histogram samples beside the float values).
ObjArr = npt.NDArray[Any]


@dataclass
class ScalarSteps:
    values: F64  # shape (k,)


@dataclass
class VectorSteps:
    labels: list[Labels]
    values: F64  # shape (n, k)
    present: BoolArr  # shape (n, k)
    # Prometheus 3 drops __name__ lazily: True where the metric name must be removed from the
    # series once the whole expression is evaluated (set by functions/operators that change the
    # meaning of a value). Shape (n,). None means "all False".
    drop_name: BoolArr | None = None
    # Set by plain vector selectors: the timestamp of the sample chosen at each step (for
    # ``timestamp()``), shape (n, k). None for computed vectors.
    sample_ts: I64 | None = None
    # Native histogram samples: shape (n, k) object array of ``FloatHistogram | None``; where an
    # entry is a histogram, ``present`` is True and ``values`` holds NaN (a sample is either a
    # float or a histogram). None means "no histograms at all".
    hist: ObjArr | None = None
    # Set by plain vector selectors over data with start timestamps: the start timestamp (ms, 0 =
    # unknown) of the sample chosen at each step, shape (n, k), for ``start_timestamp()``.
    sample_st: I64 | None = None

    @property
    def num_series(self) -> int:
        return len(self.labels)

    def hist_mask(self) -> BoolArr:
        """(n, k): where the sample is a histogram."""
        if self.hist is None:
            return np.zeros(self.present.shape, dtype=bool)
        return np.asarray(self.hist != None)  # noqa: E711  (elementwise on an object array)

    def has_hist(self) -> bool:
        return self.hist is not None and bool(self.hist_mask().any())

    @staticmethod
    def empty(k: int) -> VectorSteps:
        return VectorSteps([], np.zeros((0, k)), np.zeros((0, k), dtype=bool))


class SeriesViews(Sequence[Any]):
    """Per-series views of one concatenated column, ``column[starts[i]:ends[i]]``, made when asked:
    the engine's range selectors hand the range functions the concatenated samples
    (``MatrixSteps.flat_cache``), which most of them work on without looking at single series."""

    __slots__ = ("column", "ends", "starts")

    def __init__(self, column: npt.NDArray[Any], starts: I64, ends: I64) -> None:
        self.column = column
        self.starts = starts
        self.ends = ends

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    @overload
    def __getitem__(self, i: int) -> Any: ...

    @overload
    def __getitem__(self, i: slice) -> SeriesViews: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return SeriesViews(self.column, self.starts[i], self.ends[i])
        return self.column[int(self.starts[i]):int(self.ends[i])]

    def __iter__(self) -> Iterator[Any]:
        col = self.column
        return iter([col[a:b] for a, b in zip(self.starts.tolist(), self.ends.tolist(), strict=True)])


@dataclass
class MatrixSteps:
    """Raw samples per series plus the per-step windows.

    ``window_end[j]`` is the (offset/@-adjusted) evaluation time of step ``j``; the window is
    left-open, right-closed: ``(window_end[j] - range_ms, window_end[j]]`` (Prometheus 3).
    Samples are sorted by time; stale markers are already removed. For ``anchored``/``smoothed``
    selectors the samples also include the lookback before the window (see ``lookback_ms``).
    """

    labels: list[Labels]
    timestamps: Sequence[I64]  # a list, or ``SeriesViews`` of ``flat_cache``'s columns
    values: Sequence[F64]
    window_end: I64  # shape (k,)
    range_ms: int
    anchored: bool = False
    smoothed: bool = False
    lookback_ms: int = 0
    # Native histogram samples per series: an object array aligned with ``timestamps[i]``
    # (``FloatHistogram`` or None for float samples), or None when the series has none.
    hists: list[ObjArr | None] | None = None
    # Start (created) timestamps per series aligned with ``timestamps[i]`` (ms, 0 = unknown), or
    # None when the series has none. Only plain range selectors carry them (subqueries cut them).
    sts: list[I64 | None] | None = None
    # ``fn_common.Flat`` of these samples when the producer already has them concatenated (the
    # engine's selector path); ``fn_common.flatten`` fills it otherwise. Never compared.
    flat_cache: Any = field(default=None, compare=False, repr=False)

    @property
    def num_series(self) -> int:
        return len(self.labels)

    def hist_of(self, i: int) -> ObjArr | None:
        return None if self.hists is None else self.hists[i]

    def has_hist(self) -> bool:
        return self.hists is not None and any(h is not None for h in self.hists)


Value = ScalarSteps | VectorSteps | MatrixSteps | str


@dataclass
class Annotations:
    """Warnings and infos collected during evaluation (Prometheus' annotations)."""

    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)

    def warn(self, msg: str) -> None:
        if msg not in self.warnings:
            self.warnings.append(msg)

    def info(self, msg: str) -> None:
        if msg not in self.infos:
            self.infos.append(msg)


@dataclass
class FuncContext:
    """What a function implementation can see besides its evaluated arguments."""

    step_times: I64  # shape (k,): evaluation timestamps of the query (ms), not offset-adjusted
    arg_exprs: list[Expr]  # the AST of the arguments (absent() derives labels from them)
    annotations: Annotations
    lookback_delta_ms: int = 300_000


class FunctionImpl(Protocol):
    def __call__(self, ctx: FuncContext, args: list[Value]) -> Value: ...


class QueryError(Exception):
    """An evaluation error (HTTP 422 ``execution``)."""


class QueryTimeout(QueryError):
    """The query ran past its timeout (HTTP 503 ``timeout``)."""


class QueryLimitExceeded(QueryError):
    """A query limit (samples, series, points) was exceeded (HTTP 422 with the limit named)."""
