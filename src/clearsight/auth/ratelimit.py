"""Request rate limits: token buckets per client IP, per credential (API key, session, signing key
or user) and per organisation, answering **429** with ``Retry-After`` and the JSON error envelope.

- ``IpRateLimitMiddleware`` runs before authentication, so guessing credentials costs tokens too;
  requests without a client address (tests, Unix sockets) are not limited by IP.
- ``PrincipalRateLimitMiddleware`` runs after it: the credential's bucket, then its organisation's.
  The anonymous principal (loopback) has one shared bucket per organisation only.

Rates are requests per second with a burst (the bucket's size); 0 turns a limit off (the default for
all three: the server does not guess a deployment's traffic). Cost per request: a dict lookup and a
few float operations per bucket, on the event loop. Buckets are held in memory per process (at most
``MAX_BUCKETS`` per kind; beyond it the full ones are dropped, then all).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from clearsight.auth.principal import Principal, principal_of_scope
from clearsight.http_answer import Answer, send_answer

MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """Buckets of one kind: ``rate`` tokens per second up to ``burst``; ``take`` answers the seconds to
    wait (0.0 when the request may go)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(max(1, burst))
        self.clock = clock
        self._b: dict[str, _Bucket] = {}
        self.enabled = rate > 0  # (an attribute: read by every request's guards)

    def take(self, key: str) -> float:
        now = self.clock()
        b = self._b.get(key)
        if b is None:
            if len(self._b) >= MAX_BUCKETS:
                self._shrink(now)
            b = self._b[key] = _Bucket(self.burst, now)
        else:
            b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate)
            b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self.rate

    def _shrink(self, now: float) -> None:
        full = [k for k, b in self._b.items() if b.tokens + (now - b.stamp) * self.rate >= self.burst]
        for k in full:
            del self._b[k]
        if len(self._b) >= MAX_BUCKETS:
            self._b.clear()


def too_many_answer(what: str, wait_s: float) -> Answer:
    """The 429 of an exhausted bucket: ``what`` names the limit, ``wait_s`` the seconds to wait."""
    body = orjson.dumps({"status": "error", "errorType": "too_many_requests",
                         "error": f"rate limit exceeded ({what}): retry after the Retry-After seconds"})
    return Answer(429, [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(max(1, math.ceil(wait_s))).encode())], body)


async def too_many(send: Send, what: str, wait_s: float) -> None:
    await send_answer(send, too_many_answer(what, wait_s))


class IpRateLimitMiddleware:
    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    def check(self, client: tuple[str, int] | None) -> Answer | None:
        """Takes a token of ``client``'s address: None, or the 429 when its bucket is empty."""
        if client and self.buckets.enabled:
            wait = self.buckets.take(client[0])
            if wait:
                return too_many_answer("per client address, auth.rate_limit_ip", wait)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self.check(scope.get("client"))
            if refused is not None:
                await send_answer(send, refused)
                return
        await self.app(scope, receive, send)


class PrincipalRateLimitMiddleware:
    def __init__(self, app: ASGIApp, per_credential: TokenBuckets, per_org: TokenBuckets) -> None:
        self.app = app
        self.per_credential = per_credential
        self.per_org = per_org

    def check(self, p: Principal | None) -> Answer | None:
        """Takes a token of ``p``'s credential (not for the anonymous principal), then of its
        organisation: None, or the 429 of the first empty bucket."""
        if p is not None:
            if self.per_credential.enabled and not p.anonymous:
                wait = self.per_credential.take(f"{p.kind}:{p.id}")
                if wait:
                    return too_many_answer("per API key or user, auth.rate_limit_key", wait)
            if self.per_org.enabled:
                wait = self.per_org.take(p.org)
                if wait:
                    return too_many_answer(f"organisation {p.org}, auth.rate_limit_org", wait)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self.check(principal_of_scope(scope))
            if refused is not None:
                await send_answer(send, refused)
                return
        await self.app(scope, receive, send)
