"""Token buckets with a fake clock: burst, refill at the rate, the wait answered, the bound on buckets."""

from __future__ import annotations

import pytest

from clearsight.auth import ratelimit
from clearsight.auth.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    b = TokenBuckets(2.0, 3, clock)
    assert [b.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("a") == 0.5  # one token needs half a second at 2/s
    assert b.take("b") == 0.0  # another key has its own bucket
    clock.t += 0.5
    assert b.take("a") == 0.0 and b.take("a") == 0.5
    clock.t += 100
    assert [b.take("a") for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]  # refilled to the burst, not beyond


def test_zero_rate_is_off_and_buckets_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not TokenBuckets(0, 10).enabled
    clock = Clock()
    b = TokenBuckets(1.0, 1, clock)
    monkeypatch.setattr(ratelimit, "MAX_BUCKETS", 10)
    for i in range(10):
        b.take(f"k{i}")
    clock.t += 5  # all refilled: dropped when the next key arrives
    b.take("new")
    assert len(b._b) == 1
    for i in range(12):
        b.take(f"busy{i}")  # none full: when the bound is hit, all are dropped
    assert len(b._b) <= 10
