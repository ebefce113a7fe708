"""Per-tenant token buckets of lines/s and bytes/s."""

from __future__ import annotations

import pytest

from clearsight.model.logs import LogBatch, LogEntry
from clearsight.pipeline.errors import LimitExceeded, Overloaded
from clearsight.pipeline.log_rate_limit import LogRateLimiter
from clearsight.pipeline.log_settings import parse_log_pipeline


def _batch(n: int, body: str = "x" * 10) -> LogBatch:
    return LogBatch.from_entries([LogEntry((("app", "a"),), i, body) for i in range(n)])


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_lines_bucket_refuses_with_retry_after_then_refills() -> None:
    settings = parse_log_pipeline({"rate_lines": 10, "rate_lines_burst": 20}, {"big": {"rate_lines": 1000}})
    clock = Clock()
    rl = LogRateLimiter(settings.for_tenant, clock)
    rl.check("a", _batch(15))
    with pytest.raises(Overloaded) as e:
        rl.check("a", _batch(10))
    assert e.value.status == 429 and e.value.reason == "rate_limit_lines"
    assert e.value.retry_after == pytest.approx(0.5)
    assert "rate_lines = 10/s" in str(e.value) and "tenant 'a'" in str(e.value)
    rl.check("b", _batch(20))  # buckets are per tenant
    rl.check("big", _batch(1000))  # its own rate, burst 2 s worth
    clock.t += 0.5
    rl.check("a", _batch(10))  # refilled 5 tokens: 5 + 5 = 10


def test_refused_push_takes_no_tokens_from_either_bucket() -> None:
    settings = parse_log_pipeline({"rate_lines": 5, "rate_lines_burst": 5, "rate_bytes": 100,
                                   "rate_bytes_burst": 100}, {})
    rl = LogRateLimiter(settings.for_tenant, Clock())
    rl.check("a", _batch(2, "y" * 30))  # lines 3 left, bytes 40 left
    with pytest.raises(Overloaded, match="bytes rate limit"):
        rl.check("a", _batch(2, "y" * 30))
    rl.check("a", _batch(3, "z" * 10))  # the refused push took none of the 3 lines left


def test_push_over_the_burst_is_400() -> None:
    settings = parse_log_pipeline({"rate_lines": 5}, {})
    with pytest.raises(LimitExceeded) as e:
        LogRateLimiter(settings.for_tenant, Clock()).check("a", _batch(11))
    assert e.value.status == 400 and "burst of 10" in str(e.value)


def test_settings_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"^pipeline.rate_lines: expected a number"):
        parse_log_pipeline({"rate_lines": "fast"}, {})
    with pytest.raises(ValueError, match=r"^tenants.acme.retention: must be longer"):
        parse_log_pipeline({}, {"acme": {"retention": "0s"}})
    with pytest.raises(ValueError, match=r"^pipeline.retention: unknown key"):
        parse_log_pipeline({"retention": "1d"}, {})
    assert parse_log_pipeline({}, {"acme": {"retention": "30d"}, "b": {}}).retention_overrides() == {
        "acme": 30 * 86400 * 10**9}
    with pytest.raises(ValueError, match=r"^tenants.a b: "):
        parse_log_pipeline({}, {"a b": {}})
    with pytest.raises(ValueError, match=r"^pipeline.pii.custom.x: invalid RE2"):
        parse_log_pipeline({"pii": {"custom": {"x": "(a"}}}, {})
    with pytest.raises(ValueError, match=r"^pipeline.pii.custom.e: the pattern matches the empty"):
        parse_log_pipeline({"pii": {"custom": {"e": "a*"}}}, {})
    with pytest.raises(ValueError, match=r"^pipeline.dedup: unknown key"):
        parse_log_pipeline({"dedup": "10s"}, {})
    s = parse_log_pipeline({"pii": {"enabled": True, "custom": {"a": "x+"}}},
                           {"t": {"pii": {"ipv4": True, "custom": {"b": "y+"}}}})
    assert s.for_tenant("t").pii.custom == (("a", "x+"), ("b", "y+")) and s.for_tenant("t").pii.ipv4
    assert not s.for_tenant("other").pii.ipv4 and s.for_tenant("other").pii.enabled
