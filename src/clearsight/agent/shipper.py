"""Ship samples to the server as Prometheus remote-write 1.0 (snappy protobuf to ``/api/v1/write``).

``Encoder`` turns one collection (samples + a timestamp) into compressed requests of at most
``max_samples`` series, adding the host labels (instance, job, tags; these win over a sample's own
label of the same name). ``Shipper`` sends the oldest buffered request until it is accepted:
2xx acknowledges it; 429, 5xx, 409 and connection errors are retried with exponential backoff and
full jitter (``Retry-After``, seconds or an HTTP date, is honoured up to ``retry_after_max``); any
other 4xx means the server will never take it: it is dropped, counted and logged with the server's
reason. Every attempt carries the request's idempotency key (``x-idempotency-key``, buffer.py): the
server answers a re-sent request it already wrote with the stored answer (``x-idempotent-replay``,
counted in ``ShipperStats.replays``) and 409 while the first attempt is still being handled.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import random
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from clearsight.agent.buffer import Buffer, Entry, batch_key
from clearsight.agent.sample import LabelPairs, Sample, merged_labels
from clearsight.ingest.prompb_encode import encode_labels, encode_sample, len_field, snappy

log = logging.getLogger("clearsight.agent.shipper")

IDEMPOTENCY_HEADER = "x-idempotency-key"

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


class Response(NamedTuple):
    status: int
    headers: Mapping[str, str]  # lower-case names
    text: str


class Transport(Protocol):
    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """One POST; raises OSError or http.client.HTTPException when no answer came back."""
        ...

    def close(self) -> None: ...


class HttpTransport:
    """A kept-alive connection from the standard library (httpx costs the agent ~18 MiB of RSS)."""

    def __init__(self, url: str, timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port
        self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                         context=self.ssl_context or ssl.create_default_context())
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        reused = self._conn is not None
        try:
            r, text = self._post(self._connect(), body, headers)
        except (ConnectionError, http.client.RemoteDisconnected):
            self.close()
            if not reused:
                raise
            # the server closed the idle kept-alive connection: once more on a new one (harmless: the
            # same idempotency key goes with it)
            r, text = self._post(self._connect(), body, headers)
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, text)

    def _post(self, conn: http.client.HTTPConnection, body: bytes,
              headers: Mapping[str, str]) -> tuple[http.client.HTTPResponse, str]:
        try:
            conn.request("POST", self.path, body=body, headers=dict(headers))
            r = conn.getresponse()
            return r, r.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            self.close()  # a fresh connection for the next attempt
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class StopSignal(Protocol):
    """What the shipper waits on between attempts (a ``threading.Event``)."""

    def wait(self, timeout: float | None = None) -> bool: ...
    def is_set(self) -> bool: ...


class Encoder:
    """Caches each series' encoded labels (a series' labels rarely change between collections)."""

    def __init__(self, host_labels: Mapping[str, str], max_samples: int = 2000, cache_size: int = 50_000) -> None:
        self.host_labels = dict(host_labels)
        self.max_samples = max_samples
        self.cache_size = cache_size
        self._cache: dict[tuple[str, LabelPairs, bool], bytes] = {}

    def _labels(self, name: str, labels: LabelPairs, own_labels_win: bool = False) -> bytes:
        key = (name, labels, own_labels_win)
        b = self._cache.get(key)
        if b is None:
            merged = merged_labels(self.host_labels, labels, own_labels_win)
            merged["__name__"] = name
            b = encode_labels(sorted(merged.items()))
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[key] = b
        return b

    def encode(self, samples: Sequence[Sample], timestamp_ms: int,
               own_labels_win: bool = False) -> list[tuple[bytes, int]]:
        """Compressed requests ``(payload, number of samples)``; ``own_labels_win``: a sample's labels win
        over the host labels (scraped series)."""
        out = []
        for start in range(0, len(samples), self.max_samples):
            chunk = samples[start:start + self.max_samples]
            body = b"".join(
                len_field(1, self._labels(s.name, s.labels, own_labels_win)
                          + len_field(2, encode_sample(timestamp_ms, s.value)))
                for s in chunk
            )
            out.append((snappy(body), len(chunk)))
        return out


@dataclass
class ShipperStats:
    requests_sent: int = 0
    samples_sent: int = 0
    retries: int = 0
    rejected_requests: int = 0
    rejected_samples: int = 0
    replays: int = 0  # 2xx answers the server replayed for a key it had (the request was written before)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class Shipper:
    def __init__(
        self,
        url: str,
        buffer: Buffer,
        *,
        transport: Transport | None = None,
        headers: Mapping[str, str] | None = None,
        base_headers: Mapping[str, str] = HEADERS,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 300.0,
        rng: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,
        shared: bool = False,
    ) -> None:
        self.url = url
        self.shared = shared  # one of several senders on the buffer: claim requests instead of peeking
        self.buffer = buffer
        self.transport = transport or HttpTransport(url, timeout, ssl_context)
        self.headers = {**base_headers, **(headers or {})}
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.rng = rng
        self.wall_clock = wall_clock
        self.stats = ShipperStats()
        self._failing = False

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [backoff_min, min(backoff_max, backoff_min * 2**attempt)]."""
        cap = min(self.backoff_max, self.backoff_min * (2 ** min(attempt, 32)))
        return self.backoff_min + self.rng() * (cap - self.backoff_min)

    def try_send(self, payload: bytes, key: str | None = None) -> tuple[str, float | None]:
        """One attempt with the idempotency ``key`` (default: ``batch_key(payload)``):
        ("ok"|"retry"|"reject", a Retry-After delay in seconds or None)."""
        headers = {**self.headers, IDEMPOTENCY_HEADER: key or batch_key(payload)}
        try:
            r = self.transport.post(payload, headers)
        except (OSError, http.client.HTTPException) as e:
            reason = f"{type(e).__name__}: {e}"
            if self.url.startswith("https://") and isinstance(e, ssl.SSLError | ConnectionResetError
                                                               | http.client.RemoteDisconnected):
                reason += " (over TLS, how a refused client certificate looks: the server's log says why)"
            self._outage(reason)
            return "retry", None
        if 200 <= r.status < 300:
            if self._failing:
                log.info("server %s accepts samples again", self.url)
                self._failing = False
            if r.headers.get("x-idempotent-replay") == "true":
                self.stats.replays += 1
                log.debug("server %s had this request already (idempotency key %s)", self.url,
                          headers[IDEMPOTENCY_HEADER])
            return "ok", None
        if r.status == 409:  # the first attempt with this key is still being handled: ask again later
            log.debug("server %s is still handling key %s: %s", self.url, headers[IDEMPOTENCY_HEADER], r.text[:200])
            return "retry", None
        if r.status == 429 or r.status >= 500:
            self._outage(f"HTTP {r.status}: {r.text[:200]}")
            delay = retry_after_seconds(r.headers.get("retry-after"), self.wall_clock())
            return "retry", None if delay is None else min(delay, self.retry_after_max)
        log.error("server %s rejected a request (HTTP %d): %s; dropped", self.url, r.status, r.text[:500])
        return "reject", None

    def _outage(self, reason: str) -> None:
        if not self._failing:
            log.warning("cannot ship to %s (%s); retrying with backoff, samples stay buffered", self.url, reason)
            self._failing = True
        else:
            log.debug("still cannot ship to %s: %s", self.url, reason)

    def send_oldest(self, stop: StopSignal) -> bool:
        """Deliver the oldest buffered request (retrying until accepted, rejected or ``stop``).

        Returns False when the buffer was empty or ``stop`` was set before delivery.
        """
        entry = self.buffer.claim() if self.shared else self.buffer.peek()
        if entry is None:
            return False
        try:
            return self._deliver(entry, stop)
        finally:
            if self.shared:
                self.buffer.release(entry.seq)  # a no-op once acknowledged

    def _deliver(self, entry: Entry, stop: StopSignal) -> bool:
        attempt = 0
        while True:
            outcome, delay = self.try_send(entry.payload, entry.key)
            if outcome == "ok":
                self.stats.requests_sent += 1
                self.stats.samples_sent += entry.samples
                self.buffer.ack(entry.seq)
                return True
            if outcome == "reject":
                self.stats.rejected_requests += 1
                self.stats.rejected_samples += entry.samples
                self.buffer.ack(entry.seq)
                return True
            self.stats.retries += 1
            if stop.wait(self.backoff(attempt) if delay is None else delay):
                return False
            attempt += 1

    def run(self, stop: StopSignal) -> None:
        """Send until ``stop`` is set; waits on the buffer when there is nothing to send."""
        while not stop.is_set():
            if not self.send_oldest(stop) and not stop.is_set():
                self.buffer.wait(1.0)

    def close(self) -> None:
        self.transport.close()
