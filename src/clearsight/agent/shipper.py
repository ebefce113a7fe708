"""Ship samples to the server as Prometheus remote-write 1.0 (snappy protobuf to ``/api/v1/write``).

``Encoder`` turns one collection (samples + a timestamp) into compressed requests of at most
``max_samples`` series, adding the host labels (instance, job, tags; these win over a sample's own
label of the same name). ``Shipper`` sends the oldest buffered request until it is accepted:
2xx acknowledges it; 429, 5xx and connection errors are retried with exponential backoff and full
jitter (``Retry-After``, seconds or an HTTP date, is honoured up to ``retry_after_max``); any other
4xx means the server will never take it: it is dropped, counted and logged with the server's reason.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from clearsight.agent.buffer import Buffer
from clearsight.agent.sample import LabelPairs, Sample
from clearsight.ingest.prompb_encode import encode_labels, encode_sample, len_field, snappy

log = logging.getLogger("clearsight.agent.shipper")

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


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
        self._cache: dict[tuple[str, LabelPairs], bytes] = {}

    def _labels(self, name: str, labels: LabelPairs) -> bytes:
        key = (name, labels)
        b = self._cache.get(key)
        if b is None:
            merged = dict(labels)
            merged.update(self.host_labels)
            merged["__name__"] = name
            b = encode_labels(sorted(merged.items()))
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[key] = b
        return b

    def encode(self, samples: Sequence[Sample], timestamp_ms: int) -> list[tuple[bytes, int]]:
        """Compressed requests ``(payload, number of samples)``."""
        out = []
        for start in range(0, len(samples), self.max_samples):
            chunk = samples[start:start + self.max_samples]
            body = b"".join(
                len_field(1, self._labels(s.name, s.labels) + len_field(2, encode_sample(timestamp_ms, s.value)))
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
        client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 300.0,
        rng: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.buffer = buffer
        self.client = client or httpx.Client(timeout=timeout)
        self.headers = {**HEADERS, **(headers or {})}
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

    def try_send(self, payload: bytes) -> tuple[str, float | None]:
        """One attempt: ("ok"|"retry"|"reject", a Retry-After delay in seconds or None)."""
        try:
            r = self.client.post(self.url, content=payload, headers=self.headers)
        except httpx.HTTPError as e:
            self._outage(f"{type(e).__name__}: {e}")
            return "retry", None
        if 200 <= r.status_code < 300:
            if self._failing:
                log.info("server %s accepts samples again", self.url)
                self._failing = False
            return "ok", None
        if r.status_code == 429 or r.status_code >= 500:
            self._outage(f"HTTP {r.status_code}: {r.text[:200]}")
            delay = retry_after_seconds(r.headers.get("Retry-After"), self.wall_clock())
            return "retry", None if delay is None else min(delay, self.retry_after_max)
        log.error("server %s rejected a request (HTTP %d): %s; dropped", self.url, r.status_code, r.text[:500])
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
        entry = self.buffer.peek()
        if entry is None:
            return False
        attempt = 0
        while True:
            outcome, delay = self.try_send(entry.payload)
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
        self.client.close()
