"""An instant vector's fast result path (``_instant_rows``: every row present, labels distinct)
gives the same series, in the same order, as the general one (``_instant_series``: compact,
merge, then the rows), and declines every other vector."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.query.promql.engine import Engine, _instant_rows, _instant_series
from clearsight.query.promql.parser import parse
from clearsight.query.promql.result import FloatRows, QueryResult, SeriesResult
from clearsight.query.promql.values import QueryError, VectorSteps
from clearsight.store.memory import MemorySeriesSelector

floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 1.0, float("nan"), 1e308]))
rows = st.lists(st.tuples(st.integers(0, 24), floats, st.booleans()), max_size=24)


def _vector(spec: list[tuple[int, float, bool]]) -> VectorSteps:
    labels = [(("__name__", "up"), ("instance", f"h{i}")) for i, _, _ in spec]
    values = np.asarray([[v] for _, v, _ in spec], dtype=np.float64).reshape(len(spec), 1)
    present = np.asarray([[p] for _, _, p in spec], dtype=bool).reshape(len(spec), 1)
    return VectorSteps(labels, values, present)


def _bits(found: FloatRows | list[SeriesResult]) -> list[tuple[object, list[int], list[int], bool, bool]]:
    """Each series' labels, steps, value bits and writability (rows read as the series they make)."""
    series = QueryResult("vector", rows=found).series if isinstance(found, FloatRows) else found
    return [(s.labels, s.timestamps.tolist(), s.values.view(np.int64).tolist(), s.timestamps.flags.writeable,
             s.values.flags.writeable) for s in series]


@settings(max_examples=500, deadline=None)
@given(rows)
def test_fast_rows_match_the_general_path(spec: list[tuple[int, float, bool]]) -> None:
    v = _vector(spec)
    ts = np.asarray([123_000], dtype=np.int64)
    fast = _instant_rows(v, ts)
    present = [p for _, _, p in spec]
    distinct = len({i for i, _, _ in spec}) == len(spec)
    assert (fast is not None) == (all(present) and distinct)
    try:
        general = _instant_series(v, ts)
    except QueryError:
        assert fast is None  # two present rows with the same labels: only the general path tells
        return
    if fast is not None:
        assert _bits(fast) == _bits(general)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.floats(-1e9, 1e9), st.integers(0, 120)), min_size=1, max_size=20))
def test_engine_result_is_the_general_one(spec: list[tuple[int, float, int]]) -> None:
    store = MemorySeriesSelector()
    for i, val, t in spec:  # some samples older than the lookback: their series are absent
        store.add((("__name__", "up"), ("instance", f"h{i}")), [t * 5_000], [val])
    eng = Engine(lookback_delta_ms=300_000)
    at = 600_000
    res = eng.instant(store, "up", at)
    ev = eng._evaluator(store, at, at, 0, True, None, None, None)
    ts = np.asarray([at], dtype=np.int64)
    general = _instant_series(ev.eval(parse("up"), ts), ts)  # type: ignore[arg-type]
    assert res.result_type == "vector"
    assert _bits(res.series) == _bits(general)


def test_result_holds_series_or_rows() -> None:
    """A result given rows makes its series from them once; given both it refuses (an encoder
    reading the rows would answer other series than a reader of ``series``); setting ``series``
    drops the rows."""
    import pytest

    labels = [(("__name__", "up"), ("instance", "a")), (("__name__", "up"), ("instance", "b"))]
    ts = np.asarray([1000], dtype=np.int64)
    rows = FloatRows(labels, ts, np.asarray([[1.0], [2.0]]))
    res = QueryResult("vector", rows=rows)
    assert res.series is res.series and [(s.labels, s.values.tolist()) for s in res.series] == \
        [(labels[0], [1.0]), (labels[1], [2.0])]
    with pytest.raises(ValueError, match="not both"):
        QueryResult("vector", [], rows=rows)
    res.series = []
    assert res.rows is None and res.series == []
