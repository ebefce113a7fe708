"""The native point encoder writes byte for byte what the pure-Python encoder writes."""

import math

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.api import _jsonfmt  # type: ignore[attr-defined]
from clearsight.api.common import format_float
from clearsight.api.prometheus_query import _points_py

EDGE = [0.0, -0.0, 1.0, 1e16, 1e-5, 1e-7, 1e21, 1e-6, 9.999e-5, 1e-4, 123.456, math.nan, math.inf, -math.inf,
        5e-324, 1.7976931348623157e308, -2.5e-6, 1.5e20]


def _native(ts: list[int], vals: list[float]) -> bytes:
    out: bytes = _jsonfmt.encode_points(np.array(ts, dtype=np.int64), np.array(vals, dtype=np.float64), format_float)
    return out


def test_edge_values() -> None:
    ts = [0, 1, -1, -1500, 1500, 1700000000123, 1700000000120, 1700000000100, 999, -999, 10, 100, 7, 8, 9, 11,
          12, 13]
    assert _native(ts, EDGE) == orjson.dumps(_points_py(np.array(ts), np.array(EDGE)))


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(-(10**14), 10**14),  # ms, up to the year 5138
                          st.floats(allow_nan=True, allow_infinity=True)), max_size=50))
def test_matches_python(points: list[tuple[int, float]]) -> None:
    ts = [t for t, _ in points]
    vals = [v for _, v in points]
    assert _native(ts, vals) == orjson.dumps(_points_py(np.array(ts, dtype=np.int64), np.array(vals)))


def test_length_mismatch() -> None:
    import pytest

    with pytest.raises(ValueError, match="differ in length"):
        _jsonfmt.encode_points(np.zeros(2, dtype=np.int64), np.zeros(1), format_float)


def test_histogram_points_use_prometheus_shape() -> None:
    from clearsight.api.prometheus_query import encode_result
    from clearsight.model.histogram_text import parse_histogram
    from clearsight.query.promql.result import QueryResult, SeriesResult

    hist = parse_histogram("{{schema:0 sum:5 count:4 buckets:[1 2 1]}}").histogram
    vec = QueryResult("vector", [SeriesResult((("__name__", "h"),), np.array([1000]), np.array([np.nan]), [hist])])
    data, _ = encode_result(vec, 1000, None)
    [item] = data["result"]
    assert item["histogram"][0] == 1 and item["histogram"][1]["count"] == "4" and item["histogram"][1]["sum"] == "5"
    assert [b[0] for b in item["histogram"][1]["buckets"]] == [0, 0, 0]
    mixed = QueryResult("matrix", [SeriesResult((("__name__", "h"),), np.array([1000, 2000]), np.array([3.0, np.nan]),
                                                [None, hist])])
    data, _ = encode_result(mixed, 1000, None)
    [item] = data["result"]
    assert orjson.loads(orjson.dumps(item["values"])) == [[1, "3"]]
    assert item["histograms"][0][0] == 2


def test_many_random_values_match_python() -> None:
    """The orjson-rendered digits agree with CPython's repr across magnitudes (100k values from
    random bit patterns and from every decade between 1e-8 and 1e22)."""
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**63, size=50_000, dtype=np.int64).view(np.float64)
    decades = rng.random(50_000) * 10.0 ** rng.integers(-8, 23, size=50_000)
    for vals in (bits, decades, -decades):
        ts = np.arange(vals.shape[0], dtype=np.int64) * 15_000
        assert _native(ts.tolist(), vals.tolist()) == orjson.dumps(_points_py(ts, vals))
