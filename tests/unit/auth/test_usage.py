"""Usage counting on SQLite and PostgreSQL: counts per org, day and kind survive flushes (added to
what is stored), pending counts are visible before a flush, quotas refuse a batch that would pass
them (counting what is stored), and prices turn counts into a cost."""

from __future__ import annotations

import pytest

from clearsight.auth.state import StateDb
from clearsight.auth.usage import Prices, QuotaExceeded, Usage
from clearsight.model.samples import SampleBatch
from clearsight.model.spans import Span, SpanBatch
from clearsight.store.interface import AppendResult

DAY0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC


class Clock:
    def __init__(self) -> None:
        self.t = DAY0

    def __call__(self) -> float:
        return self.t


def _batch(n: int) -> SampleBatch:
    return SampleBatch.from_series([((("__name__", "m"),), [(i, 1.0) for i in range(n)])])  # type: ignore[arg-type]


def test_counts_flush_and_add_up(state: StateDb) -> None:
    clock = Clock()
    u = Usage(state, clock=clock)
    u.add("a", "samples", 10)
    u.add("a", "queries", 1)
    u.add("b", "samples", 5)
    u.add("a", "samples", 0)  # nothing
    assert u.daily("a", "2027-01-01", "2027-01-31") == {"2027-01-15": {"samples": 10, "queries": 1}}  # pending
    u.flush()
    u.add("a", "samples", 7)
    u.flush()
    clock.t += 86400
    u.add("a", "samples", 3)
    u.flush()
    assert u.daily("a", "2027-01-01", "2027-01-31") == {"2027-01-15": {"samples": 17, "queries": 1},
                                                        "2027-01-16": {"samples": 3}}
    assert u.daily("b", "2027-01-15", "2027-01-15") == {"2027-01-15": {"samples": 5}}
    assert u.daily("a", "2027-02-01", "2027-02-28") == {}
    u2 = Usage(state, clock=clock)  # another process sees what was flushed
    assert u2.daily("a", "2027-01-16", "2027-01-16") == {"2027-01-16": {"samples": 3}}


def _write(u: Usage, org: str, n: int) -> None:
    """What the ingestor does: the step (quota check), then, once committed, the count."""
    u.metrics_committed(org, AppendResult(samples_written=u.metrics_step(org, _batch(n)).num_samples))


def test_sample_quota_counts_stored_usage(state: StateDb) -> None:
    clock = Clock()
    first = Usage(state, quota_samples_per_day=100, clock=clock)
    _write(first, "a", 60)
    first.close()  # flushed
    u = Usage(state, quota_samples_per_day=100, clock=clock)
    _write(u, "a", 30)  # 90
    with pytest.raises(QuotaExceeded) as e:
        _write(u, "a", 11)
    assert e.value.status == 429 and "usage.quota_samples_per_day = 100" in e.value.message and "90 used" in e.value.message
    _write(u, "a", 10)  # exactly the quota
    _write(u, "b", 100)  # another organisation
    clock.t += 86400
    _write(u, "a", 100)  # a new day
    u.close()
    assert u.daily("a", "2027-01-15", "2027-01-16") == {"2027-01-15": {"samples": 100}, "2027-01-16": {"samples": 100}}


def test_samples_count_what_the_store_took_as_new(state: StateDb) -> None:
    """Counted at commit: a batch refused by its quota, a re-sent sample the store already held
    and one outside the out-of-order window are not counted."""
    u = Usage(state, clock=Clock())
    assert u.metrics_step("a", _batch(5)).num_samples == 5  # the step itself counts nothing
    assert u.daily("a", "2027-01-15", "2027-01-15") == {}
    u.metrics_committed("a", AppendResult(samples_written=5))
    u.metrics_committed("a", AppendResult(samples_written=5, duplicates=5))  # an identical re-send
    u.metrics_committed("a", AppendResult(samples_written=3, duplicates=1, out_of_bounds=2))
    assert u.daily("a", "2027-01-15", "2027-01-15") == {"2027-01-15": {"samples": 7}}


def test_prices() -> None:
    p = Prices(per_million_samples=2.0, per_gib_logs=0.5, per_thousand_queries=0.01, per_million_spans=4.0)
    c = p.cost({"samples": 3_000_000, "log_bytes": 2**31, "queries": 500, "spans": 250_000})
    assert c == {"samples": 6.0, "logs": 1.0, "queries": 0.005, "spans": 1.0, "total": 8.005}
    assert Prices().cost({"samples": 10})["total"] == 0.0


def test_active_series_is_the_days_peak(state: StateDb) -> None:
    clock = Clock()
    now = {"a": 10, "b": 0}
    u = Usage(state, clock=clock)
    u.series_source = lambda: now
    u.flush()
    now["a"] = 25
    u.flush()
    now["a"] = 12  # fewer later in the day: the peak stays
    u.flush()
    clock.t += 86400
    now["a"] = 4
    u.flush()
    assert u.daily("a", "2027-01-01", "2027-01-31") == {"2027-01-15": {"active_series": 25},
                                                        "2027-01-16": {"active_series": 4}}
    assert u.daily("b", "2027-01-01", "2027-01-31") == {}  # none active: nothing recorded

    def broken() -> dict[str, int]:
        raise RuntimeError("store closed")

    u.series_source = broken
    u.add("a", "samples", 1)
    u.flush()  # the counts are still written
    assert u.daily("a", "2027-01-16", "2027-01-16") == {"2027-01-16": {"active_series": 4, "samples": 1}}


def _spans(n: int) -> SpanBatch:
    return SpanBatch([Span(b"\x01" * 16, (i + 1).to_bytes(8, "big"), b"", "op", 0, 1, 2, 0, "", "s")
                      for i in range(n)])


def test_spans_are_counted_and_quota_refuses_the_whole_batch(state: StateDb) -> None:
    clock = Clock()
    u = Usage(state, quota_spans_per_day=10, clock=clock)
    u.spans_step("a", _spans(4))
    u.spans_step("b", _spans(10))  # another organisation
    with pytest.raises(QuotaExceeded) as e:
        u.spans_step("a", _spans(7))
    assert e.value.status == 429 and "usage.quota_spans_per_day = 10" in e.value.message
    u.spans_step("a", _spans(6))  # exactly the quota
    u.close()
    assert u.daily("a", "2027-01-15", "2027-01-15") == {"2027-01-15": {"spans": 10}}
    assert u.daily("b", "2027-01-15", "2027-01-15") == {"2027-01-15": {"spans": 10}}
