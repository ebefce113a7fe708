import numpy as np
import pytest

from clearsight.model.labels import fingerprint, format_labels, make_labels, with_label
from clearsight.model.matchers import Matcher, MatchType
from clearsight.model.samples import STALE_NAN, SampleBatch, is_stale_nan, stale_mask


def test_make_labels_sorts_and_drops_empty() -> None:
    assert make_labels({"b": "2", "a": "1", "c": ""}) == (("a", "1"), ("b", "2"))


def test_make_labels_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="duplicate label name 'a'"):
        make_labels([("a", "1"), ("a", "2")])


def test_fingerprint_stable_and_order_independent() -> None:
    a = make_labels({"__name__": "up", "job": "x"})
    b = make_labels([("job", "x"), ("__name__", "up")])
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(with_label(a, "job", "y"))


def test_format_labels() -> None:
    assert format_labels(make_labels({"__name__": "up", "job": 'a"b'})) == 'up{job="a\\"b"}'


@pytest.mark.parametrize(
    ("t", "v", "value", "expected"),
    [
        ("=", "a", "a", True),
        ("!=", "a", "a", False),
        ("=~", "a|b", "b", True),
        ("=~", "a", "ab", False),  # anchored
        ("!~", "a.*", "abc", False),
        ("=~", ".*", "", True),
        ("=~", "a.b", "a\nb", True),  # dot matches newline like Prometheus
    ],
)
def test_matchers(t: str, v: str, value: str, expected: bool) -> None:
    assert Matcher.of(t, "x", v).matches(value) is expected


def test_invalid_regex() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        Matcher.of(MatchType.RE, "x", "(")


def test_stale_nan_bits_preserved() -> None:
    b = SampleBatch.from_series([((("__name__", "m"),), [(1, 1.0), (2, STALE_NAN)])])
    assert is_stale_nan(float(b.values[1]))
    assert stale_mask(b.values).tolist() == [False, True]
    assert not is_stale_nan(float("nan"))
    assert np.isnan(b.values[1])


def test_regex_is_linear_time_re2() -> None:
    # Catastrophic backtracking for a backtracking engine; RE2 answers at once.
    m = Matcher.of("=~", "x", "(a+)+$")
    assert m.matches("a" * 50_000 + "b") is False
    assert m.matches("aaa") is True


def test_re2_syntax_like_prometheus() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        Matcher.of("=~", "x", "(?<=a)b")  # lookbehind: not RE2
    assert Matcher.of("=~", "x", r"\d+").matches("123")
