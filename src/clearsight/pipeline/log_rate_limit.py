"""Per-tenant log rate limits: token buckets of lines/s and body bytes/s (``logs.pipeline.rate_*``,
per tenant in ``logs.tenants``). A push that the buckets cannot cover is refused whole with 429 and
a Retry-After of when it could be (``Overloaded``), naming the limit; a push larger than a bucket's
burst could never pass and gets 400 (``LimitExceeded``). Tokens are taken only when both buckets
cover the push, so a refused push costs nothing and nothing of it is written.

Not ``auth/ratelimit.TokenBuckets``: those take one token per request at one rate per kind; these
take a push's line and byte counts from two buckets at once, at each tenant's own rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from clearsight.model.logs import LogBatch
from clearsight.pipeline.errors import LimitExceeded, Overloaded
from clearsight.pipeline.log_settings import TenantLogSettings


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def wait_for(self, amount: float) -> float:
        return max(0.0, (amount - self.tokens) / self.rate)


class LogRateLimiter:
    """Buckets per tenant, created on first use from ``settings_of(tenant)``."""

    def __init__(self, settings_of: Callable[[str], TenantLogSettings],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings_of = settings_of
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def _bucket(self, tenant: str, kind: str, rate: float, burst: int, now: float) -> _Bucket:
        b = self._buckets.get((tenant, kind))
        if b is None:
            b = self._buckets[(tenant, kind)] = _Bucket(rate, float(burst), float(burst), now)
        b.refill(now)
        return b

    def check(self, tenant: str, batch: LogBatch) -> LogBatch:
        s = self._settings_of(tenant)
        if s.rate_lines <= 0 and s.rate_bytes <= 0:
            return batch
        wants: list[tuple[str, float, float, int]] = []
        if s.rate_lines > 0:
            wants.append(("lines", float(len(batch)), s.rate_lines, s.rate_lines_burst))
        if s.rate_bytes > 0:
            wants.append(("bytes", float(batch.body_bytes), s.rate_bytes, s.rate_bytes_burst))
        for kind, amount, _rate, burst in wants:
            if amount > burst:
                raise LimitExceeded(f"tenant_{kind}_burst",
                                    f"push of {int(amount)} log {kind} is larger than tenant '{tenant}''s burst of "
                                    f"{burst} (logs rate_{kind}_burst); split it into smaller pushes")
        with self._lock:
            now = self._clock()
            buckets = [(kind, amount, rate, self._bucket(tenant, kind, rate, burst, now))
                       for kind, amount, rate, burst in wants]
            for kind, amount, rate, b in buckets:
                if amount > b.tokens:
                    wait = b.wait_for(amount)
                    err = Overloaded(f"tenant '{tenant}' is over its log {kind} rate limit "
                                     f"(logs rate_{kind} = {rate:g}/s, burst {int(b.burst)}): push of "
                                     f"{int(amount)} {kind} refused, retry after {wait:.1f}s", retry_after=wait)
                    err.reason = f"rate_limit_{kind}"
                    raise err
            for _, amount, _, b in buckets:
                b.tokens -= amount
        return batch
