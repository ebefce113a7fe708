"""The function signature table (signatures.py)."""

from __future__ import annotations

import pytest

from clearsight.query.promql.ast import ValueType
from clearsight.query.promql.parser import ParseError, parse
from clearsight.query.promql.signatures import FUNCTIONS, documented_type

DOCUMENTED = """abs absent absent_over_time avg_over_time ceil changes clamp clamp_max clamp_min
count_over_time days_in_month day_of_month day_of_week day_of_year deg delta deriv
double_exponential_smoothing exp floor histogram_avg histogram_count histogram_fraction
histogram_quantile histogram_stddev histogram_stdvar histogram_sum hour idelta increase info irate
label_join label_replace last_over_time ln log10 log2 mad_over_time max_over_time min_over_time
minute month pi predict_linear present_over_time quantile_over_time rad rate resets round scalar
sgn sort sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time stdvar_over_time
sum_over_time time timestamp vector year acos acosh asin asinh atan atanh cos cosh sin sinh tan
tanh first_over_time ts_of_first_over_time ts_of_last_over_time ts_of_max_over_time
ts_of_min_over_time histogram_quantiles start end step range min_of max_of start_timestamp""".split()


def test_every_documented_function_has_a_signature() -> None:
    missing = [f for f in DOCUMENTED if f not in FUNCTIONS]
    assert missing == []
    assert all(sig.name == name for name, sig in FUNCTIONS.items())


@pytest.mark.parametrize(("name", "min_args", "max_args", "ret"), [
    ("rate", 1, 1, ValueType.VECTOR),
    ("round", 1, 2, ValueType.VECTOR),
    ("label_join", 3, None, ValueType.VECTOR),
    ("histogram_quantiles", 3, 12, ValueType.VECTOR),
    ("time", 0, 0, ValueType.SCALAR),
    ("scalar", 1, 1, ValueType.SCALAR),
    ("year", 0, 1, ValueType.VECTOR),
    ("info", 1, 2, ValueType.VECTOR),
])
def test_arity_and_return_type(name: str, min_args: int, max_args: int | None, ret: ValueType) -> None:
    sig = FUNCTIONS[name]
    assert (sig.min_args, sig.max_args, sig.return_type) == (min_args, max_args, ret)


def test_variadic_arguments_repeat_the_last_type() -> None:
    sig = FUNCTIONS["label_join"]
    assert sig.arg_type(10) is ValueType.STRING
    assert parse('label_join(x, "d", ",", "a", "b", "c")').type is ValueType.VECTOR
    with pytest.raises(ParseError, match='expected type string in call to function "label_join", got scalar'):
        parse('label_join(x, "d", ",", "a", 1)')


def test_experimental_flags() -> None:
    assert FUNCTIONS["mad_over_time"].experimental
    assert FUNCTIONS["sort_by_label"].experimental
    assert not FUNCTIONS["rate"].experimental


def test_documented_type_names() -> None:
    assert documented_type(ValueType.VECTOR) == "instant vector"
    assert documented_type(ValueType.MATRIX) == "range vector"
    assert documented_type(ValueType.SCALAR) == "scalar"
    assert documented_type(ValueType.STRING) == "string"
