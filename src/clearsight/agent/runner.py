"""The agent's lifecycle: one ``start()``, one ``stop()``.

Two threads: the collect loop runs each collector when its interval is due, stamps its samples with
the wall clock, encodes them and puts the requests in the buffer; the ship loop sends the buffer's
oldest request until it is accepted. ``stop()`` ends collection, buffers the self-metrics once more
(final counters), gives the shipper ``flush_timeout`` seconds to drain the buffer, then stops it (a disk
buffer keeps the rest for the next start).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from clearsight import __version__
from clearsight.agent.buffer import Buffer
from clearsight.agent.heartbeat import Heartbeat
from clearsight.agent.otlp_logs import LogEncoder
from clearsight.agent.sample import Sample, sample
from clearsight.agent.shipper import Shipper
from clearsight.agent.sources import LogSource
from clearsight.agent.tidy import Tidy

log = logging.getLogger("clearsight.agent")


class SampleEncoder(Protocol):
    """Samples -> requests: remote-write (shipper.Encoder) or OTLP metrics (otlp_metrics.MetricsEncoder)."""

    def encode(self, samples: Sequence[Sample], timestamp_ms: int,
               own_labels_win: bool = False) -> list[tuple[bytes, int]]: ...


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
class ScheduledLogs:
    source: LogSource
    tidy: Tidy
    interval: float
    next_due: float = 0.0
    runs: int = 0
    failures: int = 0
    last_duration: float = 0.0
    records_read: int = 0  # records the source produced (before filters and collapsing)
    records_buffered: int = 0

    @property
    def collector(self) -> LogSource:
        return self.source


@dataclass
class LogShipping:
    """Log records' own path: OTLP logs to ``/v1/logs`` through their own buffer and shipper."""

    encoder: LogEncoder
    buffer: Buffer
    shipper: Shipper
    extra_senders: list[Shipper] = field(default_factory=list)  # more senders on the same buffer

    @property
    def senders(self) -> list[Shipper]:
        return [self.shipper, *self.extra_senders]


@dataclass
class AgentStats:
    samples_collected: int = 0
    cycles: int = 0
    scheduled: list[Scheduled] = field(default_factory=list)
    log_sources: list[ScheduledLogs] = field(default_factory=list)


class SelfCollector:
    """The agent's own metrics (``clearsight_agent_*``), shipped like any other collector's."""

    name = "agent"

    def __init__(self, agent: Agent, status_path: Path | None = None) -> None:
        self.agent = agent
        self.status_path = status_path
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
            sample("clearsight_agent_replayed_requests_total", st.replays),
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
        if a.logs is not None:
            lbuf = a.logs.buffer
            stats = [sh.stats for sh in a.logs.senders]
            out += [
                sample("clearsight_agent_log_records_sent_total", sum(x.samples_sent for x in stats)),
                sample("clearsight_agent_log_requests_sent_total", sum(x.requests_sent for x in stats)),
                sample("clearsight_agent_log_retries_total", sum(x.retries for x in stats)),
                sample("clearsight_agent_log_rejected_records_total", sum(x.rejected_samples for x in stats)),
                sample("clearsight_agent_log_replayed_requests_total", sum(x.replays for x in stats)),
                sample("clearsight_agent_log_dropped_records_total", lbuf.dropped_samples),
                sample("clearsight_agent_log_buffered_requests", len(lbuf)),
                sample("clearsight_agent_log_buffered_bytes", lbuf.size_bytes()),
            ]
        if a.heartbeat is not None:
            out.append(sample("clearsight_agent_heartbeats_sent_total", a.heartbeat.sent))
            out.append(sample("clearsight_agent_heartbeat_failures_total", a.heartbeat.failures))
        scheduled: list[Scheduled | ScheduledLogs] = [*a.stats.scheduled, *a.stats.log_sources]
        for s in scheduled:
            name = s.collector.name
            out.append(sample("clearsight_agent_collector_duration_seconds", s.last_duration, collector=name))
            out.append(sample("clearsight_agent_collector_runs_total", s.runs, collector=name))
            out.append(sample("clearsight_agent_collector_failures_total", s.failures, collector=name))
            for part, n in sorted(s.collector.errors.items()):
                out.append(sample("clearsight_agent_collector_errors_total", n, collector=name, part=part))
        for ls in a.stats.log_sources:
            name = ls.source.name
            out.append(sample("clearsight_agent_log_records_read_total", ls.records_read, collector=name))
            out.append(sample("clearsight_agent_log_records_filtered_total", ls.tidy.filtered, collector=name))
            out.append(sample("clearsight_agent_log_records_collapsed_total", ls.tidy.collapsed, collector=name))
        self.write_status(out)
        return out

    def write_status(self, samples: list[Sample]) -> None:
        """The same numbers for ``clearsight agent status``: a JSON file replaced atomically."""
        if self.status_path is None:
            return
        doc = {"time": time.time(), "pid": os.getpid(), "version": __version__, "url": self.agent.shipper.url,
               "metrics": [{"name": s.name, "labels": dict(s.labels), "value": s.value} for s in samples]}
        try:
            self.status_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.status_path.with_name(self.status_path.name + ".tmp")
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.status_path)
        except OSError as e:
            self.errors["status_file"] = self.errors.get("status_file", 0) + 1
            log.warning("cannot write the status file %s: %s", self.status_path, e)


class Agent:
    def __init__(
        self,
        collectors: Sequence[tuple[Collector, float]],
        encoder: SampleEncoder,
        buffer: Buffer,
        shipper: Shipper,
        *,
        self_metrics_interval: float | None = 10.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        flush_timeout: float = 5.0,
        logs: LogShipping | None = None,
        log_sources: Sequence[tuple[LogSource, Tidy, float]] = (),
        heartbeat: Heartbeat | None = None,
        heartbeat_interval: float = 30.0,
        status_path: Path | None = None,
    ) -> None:
        self.encoder = encoder
        self.logs = logs
        self.heartbeat = heartbeat
        self.heartbeat_interval = heartbeat_interval
        self.buffer = buffer
        self.shipper = shipper
        self.clock = clock
        self.monotonic = monotonic
        self.flush_timeout = flush_timeout
        self.stats = AgentStats(scheduled=[Scheduled(c, interval) for c, interval in collectors])
        if self_metrics_interval is not None:
            self.stats.scheduled.append(Scheduled(SelfCollector(self, status_path), self_metrics_interval))
        if log_sources and logs is None:
            raise ValueError("log sources need a LogShipping")
        self.stats.log_sources = [ScheduledLogs(src, tidy, interval) for src, tidy, interval in log_sources]
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
            for payload, n in self.encoder.encode(samples, ts_ms, getattr(s.collector, "own_labels_win", False)):
                self.buffer.put(payload, n)
            total += len(samples)
        for ls in self.stats.log_sources:
            now = self.monotonic()
            if now < ls.next_due:
                continue
            nxt = ls.next_due + ls.interval
            ls.next_due = nxt if nxt > now else now + ls.interval
            self._read_logs(ls)
        self.stats.samples_collected += total
        self.stats.cycles += 1
        return total

    def _read_logs(self, ls: ScheduledLogs) -> None:
        """Read a source, tidy, encode and stage the requests, commit the position naming them, then
        publish them to the senders: killed before the commit, the source reads the lines again and the
        staged requests are deleted at the next start; killed after it, they are published then."""
        assert self.logs is not None
        t0 = time.perf_counter()
        try:
            records = ls.source.read()
            ls.records_read += len(records)
            kept = ls.tidy.apply(records)
            staged: list[str] = []
            try:
                for payload, n in self.logs.encoder.encode(ls.source.service, kept, int(self.clock() * 1e9)):
                    staged.append(self.logs.buffer.stage(payload, n))
                ls.source.commit(staged)
            except BaseException:
                self.logs.buffer.discard(staged)
                raise
            self.logs.buffer.publish(staged)
            ls.records_buffered += len(kept)
        except Exception:
            ls.failures += 1
            log.exception("log source %s failed", ls.source.name)
        finally:
            ls.runs += 1
            ls.last_duration = time.perf_counter() - t0

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
            dues = [s.next_due for s in self.stats.scheduled] + [ls.next_due for ls in self.stats.log_sources]
            next_due = min(dues)
            self._stop_collect.wait(max(0.0, next_due - self.monotonic()))

    def _heartbeat_loop(self) -> None:
        assert self.heartbeat is not None
        while not self._stop_ship.is_set():
            try:
                self.heartbeat.beat()
            except Exception:
                log.exception("heartbeat failed")
            self._stop_ship.wait(self.heartbeat_interval)

    def _buffered(self) -> int:
        return len(self.buffer) + (len(self.logs.buffer) if self.logs is not None else 0)

    def start(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"the agent is already {self._state} (one start, one stop)")
        if not self.stats.scheduled and not self.stats.log_sources:
            raise RuntimeError("no collector is enabled")
        self._threads = [
            threading.Thread(target=self._collect_loop, name="clearsight-agent-collect", daemon=True),
            threading.Thread(target=self.shipper.run, args=(self._stop_ship,), name="clearsight-agent-ship",
                             daemon=True),
        ]
        if self.logs is not None:
            for i, sender in enumerate(self.logs.senders):
                self._threads.append(threading.Thread(target=sender.run, args=(self._stop_ship,),
                                                      name=f"clearsight-agent-ship-logs-{i}", daemon=True))
        if self.heartbeat is not None:
            self._threads.append(threading.Thread(target=self._heartbeat_loop, name="clearsight-agent-heartbeat",
                                                  daemon=True))
        for t in self._threads:
            t.start()
        self._state = "started"
        everything: list[Scheduled | ScheduledLogs] = [*self.stats.scheduled, *self.stats.log_sources]
        log.info("agent started: %s, shipping to %s",
                 ", ".join(f"{s.collector.name} every {s.interval:g}s" for s in everything),
                 self.shipper.url)

    def stop(self) -> None:
        if self._state != "started":
            return
        self._state = "stopped"
        collect, ship = self._threads[:2]
        self._stop_collect.set()
        collect.join()
        self._final_self_metrics()
        deadline = time.monotonic() + self.flush_timeout  # real time, whatever clock schedules collection
        while self._buffered() and time.monotonic() < deadline and ship.is_alive():
            self._stop_ship.wait(0.05)
        self._stop_ship.set()
        self.buffer.wake()
        if self.logs is not None:
            self.logs.buffer.wake()
        for t in self._threads[1:]:
            t.join()
        self.shipper.close()
        if self.logs is not None:
            for sender in self.logs.senders:
                sender.close()
        for ls in self.stats.log_sources:
            ls.source.close()
        log.info("agent stopped: %d samples sent, %d left in the buffer, %d dropped",
                 self.shipper.stats.samples_sent, len(self.buffer), self.buffer.dropped_samples)
