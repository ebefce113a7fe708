"""The aligned fast path of vector-vector operators (``binops._vector_vector_aligned``: both sides
with the same unique match signatures in the same order) against the general matching path on
random vectors: the same labels, values (bit for bit), presence and name flags, or the same error.
Random sides line up often (rows drawn from one pool of label sets), and sometimes do not (the
fast path must then decline)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.labels import Labels
from clearsight.query.promql import binops
from clearsight.query.promql.ast import BinaryExpr, Cardinality, NumberLiteral, VectorMatching
from clearsight.query.promql.values import QueryError, VectorSteps
from tests.support.spy import count_calls

POOL: list[dict[str, str]] = [
    {"instance": "a", "job": "node"},
    {"instance": "b", "job": "node"},
    {"instance": "a", "job": "node", "cpu": "0"},
    {"instance": "a", "job": "api", "cpu": "1"},
    {"instance": "b", "job": "api", "__type__": "gauge"},
]
value = st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e308]))


def _labels(name: str, d: dict[str, str]) -> Labels:
    return tuple(sorted({"__name__": name, **d}.items()))


@st.composite
def side(draw: st.DrawFn, name: str, rows: list[int], k: int) -> VectorSteps:
    n = len(rows)
    vals = np.asarray(draw(st.lists(value, min_size=n * k, max_size=n * k)), dtype=np.float64).reshape(n, k)
    pres = np.asarray(draw(st.lists(st.booleans(), min_size=n * k, max_size=n * k)), dtype=bool).reshape(n, k)
    return VectorSteps([_labels(name, POOL[r]) for r in rows], vals, pres)


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, bool, VectorMatching, VectorSteps, VectorSteps]:
    k = draw(st.integers(1, 4))
    lrows = draw(st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=4))
    rrows = lrows if draw(st.booleans()) else draw(st.lists(st.integers(0, len(POOL) - 1), min_size=1,
                                                              max_size=4))
    lhs = draw(side("l", lrows, k))
    rhs = draw(side("r" if draw(st.booleans()) else "l", rrows, k))
    op = draw(st.sampled_from(["+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<="]))
    return_bool = op in ("==", "!=", ">", "<", ">=", "<=") and draw(st.booleans())
    card = draw(st.sampled_from([Cardinality.ONE_TO_ONE, Cardinality.MANY_TO_ONE, Cardinality.ONE_TO_MANY]))
    on = draw(st.booleans())
    names = draw(st.lists(st.sampled_from(["instance", "job", "cpu", "__type__"]), max_size=2, unique=True))
    include = draw(st.lists(st.sampled_from(["cpu", "job"]), max_size=1)) if card is not Cardinality.ONE_TO_ONE else []
    return op, return_bool, VectorMatching(card=card, on=on, labels=names, include=include), lhs, rhs


def _answer(e: BinaryExpr, lhs: VectorSteps, rhs: VectorSteps, strict: bool) -> object:
    try:
        out = binops.evaluate_binary(e, lhs, rhs, strict)
    except QueryError as err:
        return ("error", str(err))
    assert isinstance(out, VectorSteps)
    return (out.labels, out.values.view(np.int64).tolist(), out.present.tolist(),
            None if out.drop_name is None else out.drop_name.tolist())


@settings(max_examples=400, deadline=None)
@given(cases(), st.booleans())
def test_aligned_path_answers_as_the_general_path(case: tuple[str, bool, VectorMatching, VectorSteps, VectorSteps],
                                                  strict: bool) -> None:
    op, return_bool, matching, lhs, rhs = case
    e = BinaryExpr(op, NumberLiteral(0.0), NumberLiteral(0.0), return_bool, matching)
    fast = _answer(e, lhs, rhs, strict)
    aligned = binops._vector_vector_aligned
    binops._vector_vector_aligned = lambda *a, **kw: None  # type: ignore[assignment]
    try:
        general = _answer(e, lhs, rhs, strict)
    finally:
        binops._vector_vector_aligned = aligned  # type: ignore[assignment]
    assert fast == general


def test_lined_up_sides_take_the_aligned_path(monkeypatch: pytest.MonkeyPatch) -> None:
    lhs = VectorSteps([_labels("a", POOL[0]), _labels("a", POOL[1])], np.asarray([[4.0, 6.0], [1.0, 2.0]]),
                      np.asarray([[True, True], [True, False]]))
    rhs = VectorSteps([_labels("b", POOL[0]), _labels("b", POOL[1])], np.asarray([[2.0, 3.0], [1.0, 1.0]]),
                      np.ones((2, 2), dtype=bool))
    unique = count_calls(monkeypatch, binops, "_vector_vector_unique")
    out = binops.evaluate_binary(BinaryExpr("/", NumberLiteral(0.0), NumberLiteral(0.0)), lhs, rhs, True)
    assert unique.calls == 0
    assert isinstance(out, VectorSteps)
    assert out.labels == [_labels("a", POOL[0])[1:], _labels("a", POOL[1])[1:]]
    assert out.values.tolist() == [[2.0, 2.0], [1.0, 2.0]]
    assert out.present.tolist() == [[True, True], [True, False]]


def test_sides_in_another_order_take_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    lhs = VectorSteps([_labels("a", POOL[0]), _labels("a", POOL[1])], np.asarray([[4.0], [1.0]]),
                      np.ones((2, 1), dtype=bool))
    rhs = VectorSteps([_labels("b", POOL[1]), _labels("b", POOL[0])], np.asarray([[2.0], [1.0]]),
                      np.ones((2, 1), dtype=bool))
    unique = count_calls(monkeypatch, binops, "_vector_vector_unique")
    out = binops.evaluate_binary(BinaryExpr("-", NumberLiteral(0.0), NumberLiteral(0.0)), lhs, rhs, True)
    assert unique.calls == 1
    assert isinstance(out, VectorSteps)
    assert out.values.tolist() == [[3.0], [-1.0]]
