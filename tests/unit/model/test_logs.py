"""LogBatch columns, the builder's interning and severity helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.logs import (
    LogBatch,
    LogBatchBuilder,
    LogEntry,
    severity_number_of,
    severity_range_name,
)


def test_columns_and_interning() -> None:
    b = LogBatchBuilder()
    s1 = b.stream((("app", "a"),))
    s2 = b.stream((("app", "b"),))
    assert b.stream((("app", "a"),)) == s1 != s2
    r = b.resource((("host", "h1"),))
    b.add(s1, 2**62 + 1, "one", 9, "INFO", (("k", "v"), ("k2", "v2")), b"\x01" * 16, b"\x02" * 8, r)
    b.add(s2, -5, "two")
    batch = b.build()
    assert len(batch) == 2 and batch.num_streams == 2
    assert batch.timestamps.dtype == np.int64 and batch.timestamps.tolist() == [2**62 + 1, -5]
    assert batch.attr_offsets.tolist() == [0, 2, 2]
    assert batch.severity_texts == ["", "INFO"] and batch.severity_text_idx.tolist() == [1, 0]
    assert batch.trace_ids.shape == (2, 16) and batch.span_ids.shape == (2, 8)
    assert batch.trace_id(0) == b"\x01" * 16 and batch.trace_id(1) == b""
    assert batch.span_id(1) == b""
    assert batch.resources == [(), (("host", "h1"),)] and batch.resource_idx.tolist() == [1, 0]
    assert batch.body_bytes == 6


def test_empty() -> None:
    e = LogBatch.empty()
    assert len(e) == 0 and e.trace_ids.shape == (0, 16) and e.attr_offsets.tolist() == [0]


entries = st.builds(
    LogEntry,
    stream=st.lists(st.tuples(st.sampled_from("abc"), st.text(min_size=1, max_size=3)), max_size=2,
                    unique_by=lambda p: p[0]).map(lambda x: tuple(sorted(x))),
    timestamp=st.integers(-(2**63), 2**63 - 1),
    body=st.text(max_size=20),
    severity_number=st.integers(0, 24),
    severity_text=st.text(max_size=5),
    attributes=st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3)), max_size=3).map(tuple),
    trace_id=st.one_of(st.just(b""), st.binary(min_size=16, max_size=16).filter(any)),
    span_id=st.one_of(st.just(b""), st.binary(min_size=8, max_size=8).filter(any)),
    resource=st.sampled_from([(), (("host", "x"),)]),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(entries, max_size=8))
def test_from_entries_round_trip(items: list[LogEntry]) -> None:
    batch = LogBatch.from_entries(items)
    batch.check()
    assert batch.entries() == items


def test_check_names_the_broken_invariant() -> None:
    good = LogBatch.from_entries([LogEntry(stream=(("a", "1"),), timestamp=1, body="x")])
    good.check()
    bad = LogBatch.from_entries([LogEntry(stream=(("b", "1"), ("a", "1")), timestamp=1, body="x")])
    with pytest.raises(ValueError, match="not canonical"):
        bad.check()
    good.attr_offsets = np.array([0, 1])
    with pytest.raises(ValueError, match="attr_offsets end"):
        good.check()


def test_severity_words() -> None:
    assert severity_number_of("WARNING") == 13 and severity_number_of("err") == 17
    assert severity_number_of("nonsense") == 0
    assert [severity_range_name(n) for n in (0, 1, 5, 12, 13, 20, 24, 25)] == [
        "", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", ""]
