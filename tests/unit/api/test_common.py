import math

import pytest

from clearsight.api.common import ApiError, format_float, format_ts, parse_time_ms


@pytest.mark.parametrize(
    ("v", "s"),
    [
        (1.2345678e-67, "1.2345678e-67"),
        (0.0000012345678, "0.0000012345678"),
        (1234567.8, "1234567.8"),
        (1.0, "1"),
        (1e21, "1e+21"),
        (float("nan"), "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (-2.5, "-2.5"),
    ],
)
def test_format_float_matches_prometheus(v: float, s: str) -> None:
    assert format_float(v) == s


def test_format_ts() -> None:
    assert format_ts(123400) == 123.4
    assert format_ts(1) == 0.001
    assert format_ts(5000) == 5


def test_parse_time() -> None:
    assert parse_time_ms("1.5", "t") == 1500
    assert parse_time_ms("2015-07-01T20:10:51.781Z", "t") == 1435781451781
    for bad in ("abc", "NaN", "2015-07-01T20:10:51"):
        with pytest.raises(ApiError) as e:
            parse_time_ms(bad, "start")
        assert e.value.error_type == "bad_data"
        assert 'invalid parameter "start"' in e.value.message


@pytest.mark.parametrize("value", ["1e308", "-1e308", "1e20", "9999999999-01-01T00:00:00Z"])
def test_parse_time_out_of_range(value: str) -> None:
    with pytest.raises(ApiError) as e:
        parse_time_ms(value, "end")
    assert e.value.error_type == "bad_data"
