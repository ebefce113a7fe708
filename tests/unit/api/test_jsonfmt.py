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


@settings(max_examples=200)
@given(st.lists(st.tuples(st.lists(st.tuples(st.integers(-(10**14), 10**14), st.floats()), max_size=20),
                          st.booleans()), max_size=6))
def test_many_matches_one_at_a_time(columns: list[tuple[list[tuple[int, float]], bool]]) -> None:
    """``encode_many`` writes each series as ``encode_points`` does, a timestamp column shared with
    the previous series (formatted once) or not."""
    ts_cols: list[np.ndarray] = []
    val_cols: list[np.ndarray] = []
    for points, shared in columns:
        if shared and ts_cols:  # the previous series' column object, new values of its length
            ts = ts_cols[-1]
            vals = np.array([v for _, v in points][:len(ts)] + [0.5] * max(0, len(ts) - len(points)))
        else:
            ts = np.array([t for t, _ in points], dtype=np.int64)
            vals = np.array([v for _, v in points], dtype=np.float64)
        ts_cols.append(ts)
        val_cols.append(vals)
    got = _jsonfmt.encode_many(ts_cols, val_cols, format_float)
    assert got == [orjson.dumps(_points_py(t, v)) for t, v in zip(ts_cols, val_cols, strict=True)]


def test_many_length_mismatch() -> None:
    import pytest

    with pytest.raises(ValueError, match="differ in length"):
        _jsonfmt.encode_many([np.zeros(2, dtype=np.int64)], [np.zeros(3)], format_float)
    with pytest.raises(ValueError, match="differ in length"):
        _jsonfmt.encode_many([np.zeros(2, dtype=np.int64)], [], format_float)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.booleans()), max_size=40), st.integers(1, 40))
def test_matrix_encoding_matches_python(rows: list[tuple[int, bool]], batch_points: int) -> None:
    """``encode_result`` of a matrix (rows sharing the steps' column or with their own, pieces of
    any size) writes what the pure-Python encoder writes."""
    import pytest

    from clearsight.api import prometheus_query as pq
    from clearsight.query.promql.result import QueryResult, SeriesResult

    steps = np.arange(5, dtype=np.int64) * 15_500
    steps.flags.writeable = False
    series = []
    for i, (n, shared) in enumerate(rows):
        ts = steps if shared else np.arange(n, dtype=np.int64) * 1_001 + i
        vals = np.linspace(-1.5, 1e6, len(ts)) * (i + 1)
        series.append(SeriesResult((("__name__", "m"), ("i", str(i))), ts, vals))
    result = QueryResult("matrix", series)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pq, "_NATIVE_POINTS", batch_points)
        native = orjson.dumps(pq.encode_result(result, 0, None)[0])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pq, "_float_points", pq._float_points_py)
        python = orjson.dumps(pq.encode_result(result, 0, None)[0])
    assert native == python


# Values the orjson-free path prints (``_short_digits``: at most 15 significant digits in
# [1e-4, 2**49), zeros, NaN, infinities) and their neighbours one ulp away (which it must refuse
# or print as the reference does), in columns where every value is such a value and in columns
# where one is not (the column then goes through orjson from its start).
few_digits = st.builds(lambda k, d, neg: (-k if neg else k) / 10.0 ** d, st.integers(0, 10**15), st.integers(0, 19),
                       st.booleans())
short_values = st.one_of(
    few_digits,
    few_digits.map(lambda v: float(np.nextafter(v, math.inf))),
    few_digits.map(lambda v: float(np.nextafter(v, -math.inf))),
    st.integers(-(2**53), 2**53).map(float),
    st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1e-4, 2.0**49, float(np.nextafter(2.0**49, 0)),
                     9.999999999999999e14, 5e-324, 0.1 + 0.2, 1 / 3]),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
)


@settings(max_examples=500)
@given(st.lists(short_values, max_size=40), st.integers(0, 10**13))
def test_short_digits_match_python(vals: list[float], t0: int) -> None:
    ts = [t0 + 15_000 * i for i in range(len(vals))]
    assert _native(ts, vals) == orjson.dumps(_points_py(np.array(ts, dtype=np.int64), np.array(vals)))
    singles = _jsonfmt.encode_many([np.array([t], dtype=np.int64) for t in ts], [np.array([v]) for v in vals],
                                   format_float)
    assert singles == [orjson.dumps(_points_py(np.array([t]), np.array([v]))) for t, v in zip(ts, vals, strict=True)]


def test_many_short_decimals_match_python() -> None:
    """200k decimals of up to 15 digits, their one-ulp neighbours and integers below 2**53, one
    value per column (each takes the orjson-free path alone when it can), against the reference."""
    rng = np.random.default_rng(11)
    nice = rng.integers(1, 10**15, size=50_000) / 10.0 ** rng.integers(0, 19, size=50_000)
    for vals in (nice, -nice, np.nextafter(nice, np.inf), np.nextafter(nice, -np.inf),
                 rng.integers(-(2**53), 2**53, size=50_000).astype(np.float64)):
        ts = np.zeros(1, dtype=np.int64)
        got = _jsonfmt.encode_many([ts] * vals.shape[0], [vals[i:i + 1] for i in range(vals.shape[0])], format_float)
        want = [f'[[0,"{format_float(v)}"]]'.encode() for v in vals.tolist()]
        assert got == want


@settings(max_examples=40, deadline=None)
@given(st.integers(1000, 3000), st.integers(0, 2**32 - 1), st.sampled_from(["short", "full", "mixed"]),
       st.floats(0, 0.05))
def test_long_columns_match_python(n: int, seed: int, kind: str, odd_share: float) -> None:
    """Columns of 1,024 points and more are formatted without the GIL (``NOGIL_POINTS``), the
    orjson path stopping at each value that needs the slow path (NaN, infinities, exponents, Go's
    positional rewrite) and going on after it: the same bytes as the pure-Python encoder, one column
    at a time and several sharing a timestamp column."""
    rng = np.random.default_rng(seed)
    short = rng.integers(0, 10**6, size=n) / 10.0 ** rng.integers(0, 4, size=n)
    full = rng.random(n) * 10.0 ** rng.integers(-3, 15, size=n)
    vals = {"short": short, "full": full, "mixed": np.where(rng.random(n) < 0.5, short, full)}[kind]
    odd = rng.random(n) < odd_share
    vals[odd] = rng.choice(np.asarray(EDGE), size=int(odd.sum()))
    ts = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * rng.choice([15_000, 1_500, 1])
    want = orjson.dumps(_points_py(ts, vals))
    assert _native(ts.tolist(), vals.tolist()) == want
    got = _jsonfmt.encode_many([ts, ts, ts], [vals, vals[::-1].copy(), short], format_float)
    assert got == [want, orjson.dumps(_points_py(ts, vals[::-1])), orjson.dumps(_points_py(ts, short))]


# Label text as a store may hold it: any code point but a lone surrogate (quotes, backslashes,
# control characters, non-ASCII, U+2028 included).
label_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
label_sets = st.dictionaries(label_text, label_text, max_size=4).map(lambda d: tuple(sorted(d.items())))


def _vector_bytes(result: object, at_ms: int, limit: int | None) -> tuple[bytes, list[str]]:
    from clearsight.api.prometheus_query import encode_result

    data, warnings = encode_result(result, at_ms, limit)  # type: ignore[arg-type]
    return orjson.dumps(data), warnings


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(label_sets, st.floats(allow_nan=True, allow_infinity=True)), max_size=12),
       st.integers(-(10**14), 10**14), st.none() | st.integers(1, 14))
def test_vector_rows_encode_as_series(items: list[tuple[tuple[tuple[str, str], ...], float]], t: int,
                                      limit: int | None) -> None:
    """An instant vector given as rows (the engine's short path, encoded natively by
    ``encode_vector``) is the same JSON, and the same truncation warning, as the same vector given
    as series (the dicts orjson encodes)."""
    from clearsight.query.promql.result import FloatRows, QueryResult, SeriesResult

    labels = [lbl for lbl, _ in items]
    ts = np.array([t], dtype=np.int64)
    values = np.array([[v] for _, v in items], dtype=np.float64).reshape(len(items), 1)
    rows = QueryResult("vector", rows=FloatRows(labels, ts, values))
    series = QueryResult("vector", [SeriesResult(lbl, ts, values[i]) for i, lbl in enumerate(labels)])
    assert _vector_bytes(rows, t, limit) == _vector_bytes(series, t, limit)
    assert rows._series is None  # encoded from the rows: no series made
    assert [(s.labels, s.timestamps.tolist(), s.values.tobytes()) for s in rows.series] == \
        [(s.labels, s.timestamps.tolist(), s.values.tobytes()) for s in series.series]


def test_vector_rows_refusals() -> None:
    """A lone surrogate falls back to the general encoder (orjson's own refusal); malformed input
    is refused, never read past."""
    import pytest

    from clearsight.query.promql.result import FloatRows, QueryResult

    ts = np.array([1000], dtype=np.int64)
    one = np.array([[1.0]])
    with pytest.raises(orjson.JSONEncodeError):
        _vector_bytes(QueryResult("vector", rows=FloatRows([(("a", "\ud800"),)], ts, one)), 1000, None)
    with pytest.raises(UnicodeEncodeError):
        _jsonfmt.encode_vector([(("a", "\ud800"),)], ts, one, 1, format_float)
    listed = [[["a", "b"]]]  # label sets as lists, not tuples: the general encoder writes them alike
    assert _vector_bytes(QueryResult("vector", rows=FloatRows(listed, ts, one)), 1000, None) == (  # type: ignore[arg-type]
        b'{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1,"1"]}]}', [])
    with pytest.raises(ValueError, match="more series"):
        _jsonfmt.encode_vector([(("a", "b"),)], ts, one, 2, format_float)
    with pytest.raises(ValueError, match="more series"):
        _jsonfmt.encode_vector([(("a", "b"),), (("a", "c"),)], ts, one, 2, format_float)
    with pytest.raises(ValueError, match="no timestamp"):
        _jsonfmt.encode_vector([(("a", "b"),)], np.zeros(0, dtype=np.int64), one, 1, format_float)
    with pytest.raises(ValueError, match="contiguous"):
        _jsonfmt.encode_vector([(("a", "b"),)], ts, np.array([1.0, 2.0, 3.0])[::2], 1, format_float)
    with pytest.raises(ValueError, match="contiguous"):
        _jsonfmt.encode_vector([(("a", "b"),)], ts, np.array([1], dtype=np.int64), 1, format_float)
    with pytest.raises(TypeError):
        _jsonfmt.encode_vector([[("a", "b")]], ts, one, 1, format_float)  # a list, not a label tuple
    with pytest.raises(TypeError):
        _jsonfmt.encode_vector([(("a", 1),)], ts, one, 1, format_float)
