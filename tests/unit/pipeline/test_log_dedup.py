"""Dedup: identical lines of one stream within the window collapse into the first, counted."""

from __future__ import annotations

from clearsight.model.logs import LogBatch, LogEntry
from clearsight.pipeline.log_dedup import REPEAT_COUNT, dedup_batch, make_dedup_step

A = (("app", "a"),)
B = (("app", "b"),)
S = 1_000_000_000


def test_repeats_collapse_with_a_count() -> None:
    batch = LogBatch.from_entries([
        LogEntry(A, 1 * S, "boom", 17, "error", (("k", "v"),), trace_id=b"t" * 16),
        LogEntry(A, 2 * S, "boom"),
        LogEntry(B, 2 * S, "boom"),  # another stream
        LogEntry(A, 3 * S, "other"),
        LogEntry(A, 4 * S, "boom"),
        LogEntry(A, 12 * S, "boom"),  # outside the 10 s window of the first: opens a new one
        LogEntry(A, 13 * S, "boom"),
    ])
    out, removed = dedup_batch(batch, 10 * S)
    out.check()
    assert removed == 3
    got = [(e.stream, e.timestamp, e.body, dict(e.attributes).get(REPEAT_COUNT)) for e in out.entries()]
    assert got == [(A, 1 * S, "boom", "3"), (B, 2 * S, "boom", None), (A, 3 * S, "other", None),
                   (A, 12 * S, "boom", "2")]
    first = out.entry(0)
    assert first.attributes == (("k", "v"), (REPEAT_COUNT, "3"))
    assert first.severity_number == 17 and first.severity_text == "error" and first.trace_id == b"t" * 16
    assert len(out) + removed == len(batch)


def test_unsorted_batch_keeps_the_earliest() -> None:
    batch = LogBatch.from_entries([LogEntry(A, 5 * S, "x"), LogEntry(A, 1 * S, "x"), LogEntry(A, 3 * S, "x")])
    out, removed = dedup_batch(batch, 10 * S)
    assert removed == 2 and [(e.timestamp, e.attributes) for e in out.entries()] == [(1 * S, ((REPEAT_COUNT, "3"),))]


def test_off_or_no_repeats_returns_the_batch() -> None:
    batch = LogBatch.from_entries([LogEntry(A, 1, "x"), LogEntry(A, 2, "x")])
    assert dedup_batch(batch, 0) == (batch, 0)
    distinct = LogBatch.from_entries([LogEntry(A, 1, "x"), LogEntry(A, 2, "y")])
    assert dedup_batch(distinct, 10 * S)[0] is distinct


def test_step_counts_per_tenant() -> None:
    counted: list[tuple[str, int]] = []
    step = make_dedup_step(lambda t: 10 * S if t == "acme" else 0, lambda t, n: counted.append((t, n)))
    batch = LogBatch.from_entries([LogEntry(A, 1, "x"), LogEntry(A, 2, "x")])
    assert len(step("other", batch)) == 2
    assert len(step("acme", batch)) == 1
    assert counted == [("acme", 1)]
