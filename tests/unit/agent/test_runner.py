"""The agent loop: per-collector intervals on fixed slots, timestamps, self-metrics, one start/stop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import cramjam
import pytest

from clearsight.agent.buffer import MemoryBuffer
from clearsight.agent.runner import Agent, SelfCollector
from clearsight.agent.sample import Sample, sample
from clearsight.agent.shipper import Encoder, Response, Shipper
from clearsight.ingest import remote_write as rw


class Counting:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.calls = 0
        self.fail = fail
        self.errors: dict[str, int] = {}

    def collect(self) -> list[Sample]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("boom")
        return [sample(f"{self.name}_calls_total", self.calls)]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def decoded(buf: MemoryBuffer) -> list[tuple[str, int, float]]:
    out = []
    while (e := buf.peek()) is not None:
        b = rw.batch_from_protobuf(bytes(cramjam.snappy.decompress_raw(e.payload)))
        for i, t, v in zip(b.series_idx, b.timestamps, b.values, strict=True):
            out.append((dict(b.decode_labels(b.keys[int(i)]))["__name__"], int(t), float(v)))
        buf.ack(e.seq)
    return out


class FakeTransport:
    def __init__(self, handle: Callable[[bytes], Response] = lambda body: Response(204, {}, "")) -> None:
        self.handle = handle

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        return self.handle(body)

    def close(self) -> None:
        pass


def make_agent(collectors: list[tuple[Counting, float]], buf: MemoryBuffer, clock: Clock,
               transport: FakeTransport | None = None, self_interval: float | None = None) -> Agent:
    shipper = Shipper("http://server.test/api/v1/write", buf, transport=transport or FakeTransport())
    return Agent(collectors, Encoder({"instance": "h", "job": "node"}), buf, shipper,
                 self_metrics_interval=self_interval, clock=lambda: clock.t + 1_700_000_000, monotonic=clock)


def test_each_collector_runs_on_its_own_interval() -> None:
    buf, clock = MemoryBuffer(1 << 20), Clock()
    fast, slow = Counting("fast"), Counting("slow")
    agent = make_agent([(fast, 10.0), (slow, 30.0)], buf, clock)
    for step in range(7):  # t = 100, 105, ..., 130
        clock.t = 100.0 + 5 * step
        agent.collect_due()
    assert (fast.calls, slow.calls) == (4, 2)  # 100, 110, 120, 130 / 100, 130
    got = decoded(buf)
    assert ("fast_calls_total", 1_700_000_110_000, 2.0) in got
    assert ("slow_calls_total", 1_700_000_130_000, 2.0) in got
    assert agent.stats.samples_collected == 6


def test_a_late_cycle_does_not_pile_up_runs() -> None:
    buf, clock = MemoryBuffer(1 << 20), Clock()
    c = Counting("c")
    agent = make_agent([(c, 10.0)], buf, clock)
    agent.collect_due()
    clock.t = 165.0  # six intervals late
    agent.collect_due()
    agent.collect_due()
    assert c.calls == 2


def test_a_failing_collector_is_counted_and_the_others_still_run() -> None:
    buf, clock = MemoryBuffer(1 << 20), Clock()
    bad, good = Counting("bad", fail=True), Counting("good")
    agent = make_agent([(bad, 10.0), (good, 10.0)], buf, clock, self_interval=10.0)
    agent.collect_due()
    clock.t += 10
    agent.collect_due()
    names = {(n, v) for n, _, v in decoded(buf)}
    assert ("good_calls_total", 2.0) in names
    self_samples = {(s.name, s.labels): s.value for s in SelfCollector(agent).collect()}
    assert self_samples[("clearsight_agent_collector_failures_total", (("collector", "bad"),))] == 2
    assert self_samples[("clearsight_agent_collector_runs_total", (("collector", "good"),))] == 2
    assert self_samples[("clearsight_agent_samples_collected_total", ())] == agent.stats.samples_collected


def test_start_ships_and_stop_flushes_then_stops_once() -> None:
    received: list[int] = []
    got_one = threading.Event()

    def handle(body: bytes) -> Response:
        received.append(len(body))
        got_one.set()
        return Response(204, {}, "")

    buf = MemoryBuffer(1 << 20)
    c = Counting("c")
    agent = make_agent([(c, 3600.0)], buf, Clock(), FakeTransport(handle), self_interval=3600.0)
    agent.start()
    with pytest.raises(RuntimeError, match="already started"):
        agent.start()
    assert got_one.wait(30)  # a guard against hanging, not a timing assertion
    agent.stop()
    agent.stop()  # idempotent
    with pytest.raises(RuntimeError, match="already stopped"):
        agent.start()
    assert c.calls == 1 and received and len(buf) == 0
    assert agent.shipper.stats.samples_sent == agent.stats.samples_collected
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("clearsight-agent"))


def test_a_full_buffer_drops_the_oldest_and_the_drop_is_in_the_agent_metrics() -> None:
    buf, clock = MemoryBuffer(1), Clock()  # every new request pushes the previous one out
    c = Counting("c")
    agent = make_agent([(c, 10.0)], buf, clock)
    for _ in range(4):
        agent.collect_due()
        clock.t += 10
    assert buf.dropped_samples == 3 and len(buf) == 1
    self_samples = {s.name: s.value for s in SelfCollector(agent).collect() if not s.labels}
    assert self_samples["clearsight_agent_dropped_samples_total"] == 3
    assert self_samples["clearsight_agent_buffered_requests"] == 1
    assert self_samples["clearsight_agent_samples_collected_total"] == 4
