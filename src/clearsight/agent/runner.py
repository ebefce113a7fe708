"""The agent's lifecycle: one ``start()``, one ``stop()``.

Two threads: the collect loop runs each collector when its interval is due, stamps its samples with
the wall clock, encodes them and puts the requests in the buffer; the ship loop sends the buffer's
oldest request until it is accepted. ``stop()`` ends collection, buffers the self-metrics once more
(final counters), gives the shipper ``flush_timeout`` seconds to drain the buffer, then stops it (a disk
buffer keeps the rest for the next start).
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clearsight import __version__
from clearsight.agent.buffer import Buffer
from clearsight.agent.sample import Sample, sample
from clearsight.agent.shipper import Encoder, Shipper

log = logging.getLogger("clearsight.agent")


class Collector(Protocol):
    name: str
    errors: dict[str, int]

    def collect(self) -> list[Sample]: ...


@dataclass
class Scheduled:
    collector: Collector
    interval: float  # seconds
    next_due: float = 0.0  # monotonic seconds
    runs: int = 0
    failures: int = 0
    last_duration: float = 0.0
    last_samples: int = 0


@dataclass
class AgentStats:
    samples_collected: int = 0
    cycles: int = 0
    scheduled: list[Scheduled] = field(default_factory=list)


class SelfCollector:
    """The agent's own metrics (``clearsight_agent_*``), shipped like any other collector's."""

    name = "agent"

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.errors: dict[str, int] = {}

    def collect(self) -> list[Sample]:
        a = self.agent
        st, buf = a.shipper.stats, a.buffer
        out = [
            sample("clearsight_agent_info", 1, version=__version__),
            sample("clearsight_agent_samples_collected_total", a.stats.samples_collected),
            sample("clearsight_agent_samples_sent_total", st.samples_sent),
            sample("clearsight_agent_requests_sent_total", st.requests_sent),
            sample("clearsight_agent_retries_total", st.retries),
            sample("clearsight_agent_rejected_samples_total", st.rejected_samples),
            sample("clearsight_agent_dropped_samples_total", buf.dropped_samples),
            sample("clearsight_agent_buffered_requests", len(buf)),
            sample("clearsight_agent_buffered_bytes", buf.size_bytes()),
        ]
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out.append(sample("clearsight_agent_process_cpu_seconds_total", ru.ru_utime + ru.ru_stime))
        try:
            with open("/proc/self/statm") as fh:
                rss_pages = int(fh.read().split()[1])
            out.append(sample("clearsight_agent_process_resident_memory_bytes",
                              rss_pages * os.sysconf("SC_PAGE_SIZE")))
        except (OSError, ValueError, IndexError):
            pass
        for s in a.stats.scheduled:
            name = s.collector.name
            out.append(sample("clearsight_agent_collector_duration_seconds", s.last_duration, collector=name))
            out.append(sample("clearsight_agent_collector_runs_total", s.runs, collector=name))
            out.append(sample("clearsight_agent_collector_failures_total", s.failures, collector=name))
            for part, n in sorted(s.collector.errors.items()):
                out.append(sample("clearsight_agent_collector_errors_total", n, collector=name, part=part))
        return out


class Agent:
    def __init__(
        self,
        collectors: Sequence[tuple[Collector, float]],
        encoder: Encoder,
        buffer: Buffer,
        shipper: Shipper,
        *,
        self_metrics_interval: float | None = 10.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        flush_timeout: float = 5.0,
    ) -> None:
        self.encoder = encoder
        self.buffer = buffer
        self.shipper = shipper
        self.clock = clock
        self.monotonic = monotonic
        self.flush_timeout = flush_timeout
        self.stats = AgentStats(scheduled=[Scheduled(c, interval) for c, interval in collectors])
        if self_metrics_interval is not None:
            self.stats.scheduled.append(Scheduled(SelfCollector(self), self_metrics_interval))
        self._stop_collect = threading.Event()
        self._stop_ship = threading.Event()
        self._threads: list[threading.Thread] = []
        self._state = "new"  # -> started -> stopped

    def collect_due(self) -> int:
        """Run every collector whose interval is due; returns the number of samples buffered."""
        total = 0
        for s in self.stats.scheduled:
            now = self.monotonic()
            if now < s.next_due:
                continue
            # fixed slots; the first run, or a run later than a whole interval, starts a new slot from now
            nxt = s.next_due + s.interval
            s.next_due = nxt if nxt > now else now + s.interval
            ts_ms = int(self.clock() * 1000)
            t0 = time.perf_counter()
            try:
                samples = s.collector.collect()
            except Exception:
                s.failures += 1
                log.exception("collector %s failed", s.collector.name)
                continue
            finally:
                s.runs += 1
                s.last_duration = time.perf_counter() - t0
            s.last_samples = len(samples)
            for payload, n in self.encoder.encode(samples, ts_ms):
                self.buffer.put(payload, n)
            total += len(samples)
        self.stats.samples_collected += total
        self.stats.cycles += 1
        return total

    def _final_self_metrics(self) -> None:
        """One last self-metrics collection, so the final counters reach the server with the rest."""
        for s in self.stats.scheduled:
            if isinstance(s.collector, SelfCollector):
                samples = s.collector.collect()
                self.stats.samples_collected += len(samples)
                for payload, n in self.encoder.encode(samples, int(self.clock() * 1000)):
                    self.buffer.put(payload, n)

    def _collect_loop(self) -> None:
        while not self._stop_collect.is_set():
            self.collect_due()
            next_due = min(s.next_due for s in self.stats.scheduled)
            self._stop_collect.wait(max(0.0, next_due - self.monotonic()))

    def start(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"the agent is already {self._state} (one start, one stop)")
        if not self.stats.scheduled:
            raise RuntimeError("no collector is enabled")
        self._threads = [
            threading.Thread(target=self._collect_loop, name="clearsight-agent-collect", daemon=True),
            threading.Thread(target=self.shipper.run, args=(self._stop_ship,), name="clearsight-agent-ship",
                             daemon=True),
        ]
        for t in self._threads:
            t.start()
        self._state = "started"
        log.info("agent started: %s, shipping to %s",
                 ", ".join(f"{s.collector.name} every {s.interval:g}s" for s in self.stats.scheduled),
                 self.shipper.url)

    def stop(self) -> None:
        if self._state != "started":
            return
        self._state = "stopped"
        collect, ship = self._threads
        self._stop_collect.set()
        collect.join()
        self._final_self_metrics()
        deadline = time.monotonic() + self.flush_timeout  # real time, whatever clock schedules collection
        while len(self.buffer) and time.monotonic() < deadline and ship.is_alive():
            self._stop_ship.wait(0.05)
        self._stop_ship.set()
        self.buffer.wake()
        ship.join()
        self.shipper.close()
        log.info("agent stopped: %d samples sent, %d left in the buffer, %d dropped",
                 self.shipper.stats.samples_sent, len(self.buffer), self.buffer.dropped_samples)
