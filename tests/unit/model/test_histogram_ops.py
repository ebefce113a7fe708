"""Binary operators with histogram operands (Prometheus' vectorElemBinop semantics)."""

from __future__ import annotations

import math

import pytest

from clearsight.model.histogram import CounterResetHint, FloatHistogram, IncompatibleSchemaError
from clearsight.model.histogram_ops import binop
from clearsight.model.histogram_range import Note
from clearsight.model.histogram_text import parse_histogram, promqltest_equal

NAN = math.nan


def H(text: str) -> FloatHistogram:
    return parse_histogram(text).histogram


def check(expected: str, got: FloatHistogram | None) -> None:
    p = parse_histogram(expected)
    assert got is not None and promqltest_equal(p.histogram, got, p.counter_reset_hint_set), repr(got)


M = "{{schema:0 sum:4 count:4 buckets:[1 2 1]}}"  # native_histograms.test "metric" at 5m


def test_subtraction_makes_gauges() -> None:
    # native_histograms.test: metric - 0.5 * metric, metric - 2 * metric
    m = H(M).with_hint(CounterResetHint.NOT_RESET)
    half = binop("*", 0.5, None, NAN, m)
    assert half.keep and half.histogram is not None
    r = binop("-", NAN, m, NAN, half.histogram)
    check("{{count:2 sum:2 counter_reset_hint:gauge buckets:[0.5 1 0.5]}}", r.histogram)
    twice = binop("*", NAN, m, 2, None).histogram
    assert twice is not None
    check(
        "{{count:-4 sum:-4 counter_reset_hint:gauge buckets:[-1 -2 -1]}}",
        binop("-", NAN, m, NAN, twice).histogram,
    )
    # Unary minus is multiplication by -1.
    check(
        "{{count:-4 sum:-4 counter_reset_hint:gauge buckets:[-1 -2 -1]}}",
        binop("*", NAN, m, -1, None).histogram,
    )


def test_addition_notes() -> None:
    a = H("{{count:1 buckets:[1] counter_reset_hint:reset}}")
    b = H("{{count:1 buckets:[1] counter_reset_hint:not_reset}}")
    r = binop("+", NAN, a, NAN, b)
    assert r.keep and r.notes == {Note.COUNTER_RESET_COLLISION_ADD}
    assert binop("-", NAN, a, NAN, b).notes == {Note.COUNTER_RESET_COLLISION_SUB}
    c1 = H("{{schema:-53 sum:1 count:1 custom_values:[10] buckets:[1]}}")
    c2 = H("{{schema:-53 sum:1 count:1 custom_values:[2 10] buckets:[1]}}")
    r = binop("+", NAN, c1, NAN, c2)
    assert r.notes == {Note.NHCB_RECONCILED_ADD}
    check("{{schema:-53 count:2 sum:2 custom_values:[10] buckets:[2]}}", r.histogram)
    r = binop("-", NAN, c1, NAN, c2)
    assert r.notes == {Note.NHCB_RECONCILED_SUB}
    check("{{schema:-53 custom_values:[10] counter_reset_hint:gauge}}", r.histogram)
    with pytest.raises(IncompatibleSchemaError):
        binop("+", NAN, c1, NAN, H(M))


def test_scalar_operands() -> None:
    m = H(M)
    check("{{count:2 sum:2 buckets:[0.5 1 0.5]}}", binop("/", NAN, m, 2, None).histogram)
    # Multiplying by zero leaves only empty buckets, which are compacted away.
    z = binop("*", NAN, m, 0, None).histogram
    assert z is not None and z.positive.size == 0
    t = binop("</", NAN, m, 1, None).histogram
    assert t is not None and t.count == 1
    for op in ("+", "-", "^", "%", "==", "!=", ">", "<", ">=", "<=", "atan2", "</", ">/"):
        r = binop(op, 1.0, None, NAN, m)
        assert not r.keep and r.notes == {Note.INCOMPATIBLE_TYPES_BINOP}, op
    for op in ("+", "-", "^", "%", "==", "!=", ">", "<", ">=", "<=", "atan2"):
        r = binop(op, NAN, m, 1.0, None)
        assert not r.keep and r.notes == {Note.INCOMPATIBLE_TYPES_BINOP}, op


def test_histogram_comparisons() -> None:
    a = H("{{schema:-53 sum:1 count:1 custom_values:[5 10] buckets:[1]}}")
    b = H("{{schema:-53 sum:1 count:1 custom_values:[2] buckets:[1]}}")
    assert binop("==", NAN, a, NAN, a).keep
    r = binop("!=", NAN, b, NAN, a)
    assert r.keep and r.histogram is b
    assert not binop("==", NAN, b, NAN, a).keep
    for op in ("*", "/", "^", "%", ">", "<", ">=", "<=", "atan2", "</", ">/"):
        r = binop(op, NAN, a, NAN, a)
        assert not r.keep and r.notes == {Note.INCOMPATIBLE_TYPES_BINOP}, op


def test_bad_calls() -> None:
    with pytest.raises(ValueError):
        binop("and", NAN, H(M), NAN, None)
    with pytest.raises(ValueError):
        binop("+", 1.0, None, 2.0, None)
