"""The promqltest histogram literal: parsing, series expansion, formatting, test comparison."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.histogram import CounterResetHint, FloatHistogram
from clearsight.model.histogram_text import (
    HistogramSyntaxError,
    almost_equal,
    expand_histogram_item,
    format_histogram,
    format_histogram_brief,
    go_format_g,
    parse_histogram,
    promqltest_equal,
)


def H(text: str) -> FloatHistogram:
    return parse_histogram(text).histogram


def test_parse_all_keys() -> None:
    p = parse_histogram(
        "{{schema:1 sum:-3 count:22 z_bucket:3 z_bucket_w:0.001 buckets:[5 10 7] offset:-2 "
        "n_buckets:[1 2] n_offset:4 counter_reset_hint:gauge}}"
    )
    h = p.histogram
    assert p.counter_reset_hint_set
    assert h.schema == 1 and h.sum == -3 and h.count == 22
    assert h.zero_count == 3 and h.zero_threshold == 0.001
    assert h.positive_index.tolist() == [-2, -1, 0] and h.positive.tolist() == [5, 10, 7]
    assert h.negative_index.tolist() == [4, 5] and h.negative.tolist() == [1, 2]
    assert h.counter_reset_hint == CounterResetHint.GAUGE
    assert h.positive_spans() == [(-2, 3)]


def test_parse_empty_and_defaults() -> None:
    for text in ("{{}}", "{{ }}"):
        p = parse_histogram(text)
        assert not p.counter_reset_hint_set
        h = p.histogram
        assert (h.schema, h.count, h.sum, h.zero_count, h.zero_threshold) == (0, 0, 0, 0, 0)
        assert h.counter_reset_hint == CounterResetHint.UNKNOWN
        assert h.positive.size == 0 and h.negative.size == 0


def test_parse_custom_buckets_and_special_numbers() -> None:
    h = H("{{schema:-53 sum:NaN count:Inf custom_values:[-2 3] buckets:[1 +Inf 0x10] }}")
    assert h.uses_custom_buckets
    assert h.custom_values is not None and h.custom_values.tolist() == [-2, 3]
    assert math.isnan(h.sum) and h.count == math.inf
    assert h.positive.tolist() == [1, math.inf, 16]


@pytest.mark.parametrize(
    "text",
    [
        "{{schema:1 schema:2}}",  # duplicate key
        "{{buckets:5}}",
        "{{counter_reset_hint:maybe}}",
        "{{schema:1.5}}",
        "{{sum:abc}}",
        "{{foo:1}}",
        "{schema:1}",
    ],
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(HistogramSyntaxError):
        parse_histogram(text)


def test_expand_repeat() -> None:
    pts = expand_histogram_item("{{schema:0 sum:1 count:1 buckets:[1]}}x2")
    assert len(pts) == 3
    assert all(p.histogram is pts[0].histogram for p in pts)


def test_expand_increase_and_decrease() -> None:
    # From native_histograms.test: 0+{{...}}x style increments.
    pts = expand_histogram_item("{{schema:0 sum:0 count:0}}+{{schema:0 sum:2 count:2 buckets:[1 1]}}x3")
    assert [p.histogram.count for p in pts] == [0, 2, 4, 6]
    assert pts[3].histogram.positive.tolist() == [3, 3]
    down = expand_histogram_item("{{sum:10 count:10 buckets:[5 5]}}-{{sum:1 count:2 buckets:[1 1]}}x2")
    assert [p.histogram.count for p in down] == [10, 8, 6]
    assert down[2].histogram.positive.tolist() == [3, 3]


def test_expand_hint_flag_comes_from_increment() -> None:
    pts = expand_histogram_item("{{count:1 buckets:[1]}}+{{count:1 buckets:[1] counter_reset_hint:gauge}}x1")
    assert all(p.counter_reset_hint_set for p in pts)
    # The base has no hint: unknown + gauge gives gauge.
    assert pts[1].histogram.counter_reset_hint == CounterResetHint.GAUGE
    pts = expand_histogram_item("{{count:1 buckets:[1] counter_reset_hint:gauge}}+{{count:1 buckets:[1]}}x1")
    assert not any(p.counter_reset_hint_set for p in pts)


def test_expand_refuses_finer_base_schema() -> None:
    with pytest.raises(HistogramSyntaxError, match="cannot merge from schema 0 to 1"):
        expand_histogram_item("{{schema:1 count:1 buckets:[1]}}+{{schema:0 count:1 buckets:[1]}}x1")


def test_expand_mixed_schemas_error() -> None:
    with pytest.raises(HistogramSyntaxError, match="mix of exponential and custom"):
        expand_histogram_item("{{schema:-53 count:1 buckets:[1]}}+{{schema:0 count:1 buckets:[1]}}x1")


@pytest.mark.parametrize(
    ("v", "s"),
    [
        (1.0, "1"),
        (0.5, "0.5"),
        (-3.25, "-3.25"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (1e100, "1e+100"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
)
def test_go_format_g(v: float, s: str) -> None:
    assert go_format_g(v) == s


def test_format_is_test_expression() -> None:
    h = FloatHistogram.build(
        schema=1,
        count=22,
        sum=3,
        zero_count=3,
        zero_threshold=0.001,
        positive={-1: 5, 0: 10, 2: 7, 5: 0},
        negative={3: 1},
        counter_reset_hint=CounterResetHint.NOT_RESET,
    )
    # One dense run per side after dropping empty buckets; gaps become explicit zeros.
    assert format_histogram(h) == (
        "{{schema:1 count:22 sum:3 z_bucket:3 z_bucket_w:0.001 counter_reset_hint:not_reset "
        "offset:-1 buckets:[5 10 0 7] n_offset:3 n_buckets:[1]}}"
    )
    assert format_histogram(H("{{}}")) == "{{}}"
    assert format_histogram(H("{{schema:-53 custom_values:[-2 3]}}")) == "{{schema:-53 custom_values:[-2 3]}}"


def test_format_parse_round_trip() -> None:
    text = "{{schema:-2 count:9 sum:-1.5 z_bucket:1 z_bucket_w:0.25 offset:-3 buckets:[1 0 2] n_buckets:[5]}}"
    assert format_histogram(H(text)) == text


def test_brief_format() -> None:
    h = H("{{schema:0 count:6 sum:5 z_bucket:1 z_bucket_w:0.5 buckets:[2 3] n_buckets:[0 1] n_offset:1}}")
    assert format_histogram_brief(h) == "{count:6, sum:5, [-4,-2):1, [-0.5,0.5]:1, (0.5,1]:2, (1,2]:3}"


def test_equal_ignores_empty_buckets_and_tolerates_float_noise() -> None:
    exp = H("{{schema:0 count:4 sum:5 buckets:[1 2 1]}}")
    act = FloatHistogram.build(
        schema=0, count=4 + 1e-12, sum=5, positive={-3: 0.0, 0: 1, 1: 2 * (1 + 1e-9), 2: 1}
    )
    assert promqltest_equal(exp, act, False)
    assert not promqltest_equal(exp, act.mul(1.01), False)
    assert not promqltest_equal(
        exp, FloatHistogram.build(schema=0, count=4, sum=5, positive={1: 1, 2: 2, 3: 1}), False
    )
    assert not promqltest_equal(
        exp, FloatHistogram.build(schema=1, count=4, sum=5, positive={0: 1, 1: 2, 2: 1}), False
    )


def test_equal_hint_only_when_given() -> None:
    p = parse_histogram("{{count:1 buckets:[1]}}")
    act = H("{{count:1 buckets:[1] counter_reset_hint:reset}}")
    assert promqltest_equal(p.histogram, act, p.counter_reset_hint_set)
    p2 = parse_histogram("{{count:1 buckets:[1] counter_reset_hint:unknown}}")
    assert not promqltest_equal(p2.histogram, act, p2.counter_reset_hint_set)
    assert promqltest_equal(p2.histogram, act.with_hint(CounterResetHint.UNKNOWN), True)


def test_equal_custom_values_and_zero_bucket() -> None:
    exp = H("{{schema:-53 count:1 custom_values:[5 10] buckets:[1]}}")
    assert promqltest_equal(exp, H("{{schema:-53 count:1 custom_values:[5 10] buckets:[1]}}"), False)
    assert not promqltest_equal(exp, H("{{schema:-53 count:1 custom_values:[5] buckets:[1]}}"), False)
    z = H("{{count:1 z_bucket:1 z_bucket_w:0.001}}")
    assert not promqltest_equal(z, H("{{count:1 z_bucket:1 z_bucket_w:0.002}}"), False)
    assert promqltest_equal(H("{{sum:NaN}}"), H("{{sum:NaN}}"), False)


def test_almost_equal_matches_prometheus() -> None:
    assert almost_equal(1.0, 1.0 + 1e-9)
    assert not almost_equal(1.0, 1.001)
    assert almost_equal(math.nan, math.nan)
    assert almost_equal(math.inf, math.inf)
    assert not almost_equal(0.0, 1e-300)
    assert almost_equal(0.0, 0.0)
    stale = float(np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0])
    assert almost_equal(stale, stale) and not almost_equal(stale, math.nan)


def _series_items(line: str) -> list[str]:
    """Whitespace-separated items of a series line, keeping ``{{...}}`` literals whole."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        j = i
        while j < n and not line[j].isspace():
            if line.startswith("{{", j):
                j = line.index("}}", j) + 2
                continue
            j += 1
        out.append(line[i:j])
        i = j
    return out


def test_every_histogram_in_the_conformance_files_parses() -> None:
    shared = os.environ.get("CLEARSIGHT_SHARED") or Path(__file__).resolve().parents[3].parent / "shared"
    root = Path(shared) / "conformance" / "promqltest"
    files = sorted(root.glob("*.test"))
    assert files, f"no promqltest files under {root}"
    seen = 0
    for f in files:
        for lineno, line in enumerate(f.read_text().splitlines(), 1):
            if "{{" not in line or line.lstrip().startswith("#"):
                continue
            for item in _series_items(line.strip()):
                if item.startswith("{{"):
                    seen += 1
                    pts = expand_histogram_item(item)
                    assert pts, f"{f.name}:{lineno}: {item}"
                    for p in pts:
                        # The formatter's output parses back to an equal histogram.
                        again = parse_histogram(format_histogram(p.histogram)).histogram
                        assert promqltest_equal(p.histogram, again, True), f"{f.name}:{lineno}"
    assert seen > 700


_ALPHABET = "{}[]: +-x0123456789.eE_abcdfghiklmnorstuvwzINf\t"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_parse_never_crashes(text: str) -> None:
    for candidate in (text, "{{" + text + "}}", "{{" + text + "}}x2", "{{count:1}}+{{" + text + "}}x1"):
        try:
            for p in expand_histogram_item(candidate):
                assert isinstance(p.histogram, FloatHistogram)
        except HistogramSyntaxError:
            pass


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["sum", "count", "z_bucket", "z_bucket_w"]),
    st.one_of(st.floats(allow_nan=False), st.integers(min_value=-(10**400), max_value=10**400)),
)
def test_numbers_parse_like_go(key: str, v: float | int) -> None:
    text = repr(v) if isinstance(v, float) else str(v)
    text = text.replace("inf", "Inf")
    h = parse_histogram("{{" + f"{key}:{text}" + "}}").histogram
    got = {"sum": h.sum, "count": h.count, "z_bucket": h.zero_count, "z_bucket_w": h.zero_threshold}[key]
    try:
        want = float(v)
    except OverflowError:  # an integer beyond float range: Go's ParseFloat gives +-Inf
        want = math.inf if v > 0 else -math.inf
    assert got == want
