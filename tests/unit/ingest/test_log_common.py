"""Shared pieces of the log decoders: RFC 3339 timestamps, label set text, label and attribute checks."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.ingest.log_common import (
    LogDecodeError,
    LogLimits,
    check_attributes,
    check_stream_labels,
    parse_label_set,
    parse_rfc3339_ns,
    parse_rfc3339_slow,
    sanitize_label_name,
)
from clearsight.pipeline.errors import LimitExceeded


def test_rfc3339_exact_nanoseconds_and_offsets() -> None:
    assert parse_rfc3339_ns("1970-01-01T00:00:00Z") == 0
    assert parse_rfc3339_ns("2019-05-17T15:31:56.746609046Z") == 1558107116746609046
    assert parse_rfc3339_ns("2019-05-17T17:31:56.746609046+02:00") == 1558107116746609046
    assert parse_rfc3339_ns("2019-05-17t15:31:56.7466090469999z") == 1558107116746609046  # extra digits dropped
    assert parse_rfc3339_ns("1969-12-31T23:59:59.5Z") == -500_000_000
    assert parse_rfc3339_ns("2024-05-01 10:00:00", require_offset=False) == 1714557600 * 10**9


@pytest.mark.parametrize("text", ["2024-02-30T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T10:00:00",
                                  "2024-05-01T10:00:00+25:00", "yesterday", "", "99999-01-01T00:00:00Z"])
def test_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339_ns(text)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(2262, 4, 11)),
       st.integers(-23 * 60, 23 * 60))
def test_rfc3339_agrees_with_datetime(when: dt.datetime, offset_min: int) -> None:
    tz = dt.timezone(dt.timedelta(minutes=offset_min))
    aware = when.replace(tzinfo=tz)
    expect = (aware - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000
    if not -(2**63) <= expect < 2**63:
        return
    assert parse_rfc3339_ns(aware.isoformat()) == expect


def _render(labels: dict[str, str]) -> str:
    esc = {"\\": "\\\\", '"': '\\"', "\n": "\\n"}
    return "{" + ", ".join(f'{k}="{"".join(esc.get(c, c) for c in v)}"' for k, v in labels.items()) + "}"


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True), st.text(max_size=10),
                       max_size=5))
def test_label_set_text_round_trip(labels: dict[str, str]) -> None:
    assert parse_label_set(_render(labels)) == labels


@pytest.mark.parametrize(("text", "fragment"), [
    ('a="1"', "must start with '{'"),
    ('{a="1"', "invalid label set syntax"),
    ('{a="1",a="2"}', "duplicate label name 'a'"),
    ('{a="1"} x', "unexpected text"),
    ("{1a=\"x\"}", "invalid label set syntax at character 1"),
])
def test_label_set_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_label_set(text)


def test_label_and_attribute_checks() -> None:
    lim = LogLimits(max_labels_per_stream=2, max_label_name_length=3, max_label_value_length=4,
                    max_attributes_per_entry=2, max_attribute_bytes_per_entry=6)
    check_stream_labels((("a", "1"), ("b", "2")), lim, "s")
    with pytest.raises(LimitExceeded, match="s: stream has 3 labels"):
        check_stream_labels((("a", "1"), ("b", "2"), ("c", "3")), lim, "s")
    with pytest.raises(LimitExceeded, match="label_name_length"):
        check_stream_labels((("abcd", "1"),), lim, "s")
    with pytest.raises(LimitExceeded, match="value of label 'a' is 5 characters"):
        check_stream_labels((("a", "12345"),), lim, "s")
    with pytest.raises(LogDecodeError, match="invalid label name 'a-b'"):
        check_stream_labels((("a-b", "1"),), lim, "s")
    check_attributes(["k"], ["vvvvv"], lim, "e")
    with pytest.raises(LimitExceeded, match="e: attributes of 7 bytes"):
        check_attributes(["k"], ["é" * 3], lim, "e")  # 1 + 6 UTF-8 bytes
    with pytest.raises(LimitExceeded, match="3 attributes exceed the limit of 2"):
        check_attributes(["a", "b", "c"], ["", "", ""], lim, "e")
    assert sanitize_label_name("service.name") == "service_name" and sanitize_label_name("9x") == "_9x"


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.builds(lambda y, mo, d, h, mi, s, frac, zone: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{zone}",
              st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24),
              st.integers(0, 60), st.integers(0, 61),
              st.sampled_from(["", ".", ".5", ".123456789", ".1234567891", ".12a", ".²"]),
              st.sampled_from(["Z", "z", "+02:00", "-23:59", "+24:00", "-00:60", "", "+0200"])),
    st.text(max_size=30),
))
def test_fast_path_agrees_with_the_reference_parser(text: str) -> None:
    def outcome(f: object) -> object:
        try:
            return f()  # type: ignore[operator]
        except ValueError:
            return "error"
    for req in (True, False):
        assert outcome(lambda r=req: parse_rfc3339_ns(text, require_offset=r)) == outcome(  # type: ignore[misc]
            lambda r=req: parse_rfc3339_slow(text, require_offset=r))  # type: ignore[misc]
