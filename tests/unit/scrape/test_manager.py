"""Scrape manager tests against a real local HTTP server whose exposition changes between scrapes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import yaml

from clearsight.scrape.config import ScrapeConfig, parse_scrape_configs
from clearsight.scrape.manager import ACCEPT_HEADER, REPORT_SERIES, ScrapeManager, resolve_target_labels
from tests.unit.scrape.helpers import ExpositionServer, MemorySink, select, value, wait_for_async

T0 = 1_700_000_000.0


@pytest.fixture
def server() -> Iterator[ExpositionServer]:
    s = ExpositionServer()
    yield s
    s.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 15.0) -> int:
        self.now += seconds
        return int(self.now * 1000)


def configs(text: str, **fmt: Any) -> list[ScrapeConfig]:
    return parse_scrape_configs(yaml.safe_load(text.format(**fmt)), "test.yml")


def job(address: str, extra: str = "", name: str = "app") -> list[ScrapeConfig]:
    return configs(
        "- job_name: {name}\n  scrape_interval: 15s\n  static_configs: [{{targets: ['{a}']}}]\n{x}",
        a=address,
        x=extra,
        name=name,
    )


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro_fn())  # type: ignore[arg-type]


def test_scrape_writes_samples_report_series_and_metadata(server: ExpositionServer) -> None:
    server.exposition.body = (
        "# HELP requests_total Requests.\n# TYPE requests_total counter\n"
        'requests_total{code="200"} 7\nrequests_total{code="500"} 1\n'
    )
    server.exposition.gzip = True
    sink, clock = MemorySink(), FakeClock()

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "acme", clock, run_loops=False)
        await m.start()
        await m.scrape_now()
        (st,) = m.targets()
        assert st.health == "up" and st.last_error == "" and st.last_scrape == T0
        assert st.scrape_url == f"http://{server.address}/metrics"
        assert st.samples_scraped == 2
        await m.stop()

    run(main)
    assert sink.tenants == ["acme"]
    (batch,) = sink.batches
    target = {"job": "app", "instance": server.address}
    (p,) = select(batch, "requests_total", code="200", **target)
    assert (p.ts, p.value) == (int(T0 * 1000), 7.0)
    assert value(select(batch, "up", **target)) == 1.0
    assert value(select(batch, "scrape_samples_scraped")) == 2.0
    assert value(select(batch, "scrape_samples_post_metric_relabeling")) == 2.0
    assert value(select(batch, "scrape_series_added")) == 2.0
    assert value(select(batch, "scrape_duration_seconds")) >= 0.0
    assert {p.ts for p in batch} == {int(T0 * 1000)}
    assert any(
        md.metric == "requests_total" and md.type == "counter" and md.help == "Requests."
        for md in sink.metadata
    )
    ((path, headers),) = server.requests
    assert path == "/metrics"
    assert headers["accept"] == ACCEPT_HEADER
    assert headers["x-prometheus-scrape-timeout-seconds"] == "10"
    assert "gzip" in headers["accept-encoding"]
    assert headers["user-agent"].startswith("Clearsight/")


def test_vanished_series_get_stale_markers_and_new_ones_count_as_added(server: ExpositionServer) -> None:
    sink, clock = MemorySink(), FakeClock()

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "t", clock, run_loops=False)
        await m.start()
        server.exposition.body = "a 1\nb 2\n"
        await m.scrape_now()
        server.exposition.body = "a 3\nc 4\n"
        ts2 = clock.tick()
        await m.scrape_now()
        second = sink.batches[-1]
        (b,) = select(second, "b")
        assert b.stale and b.ts == ts2
        assert not select(second, "a")[0].stale
        assert value(select(second, "scrape_series_added")) == 1.0  # c
        server.exposition.body = "a 3\nc 4\n"
        clock.tick()
        await m.scrape_now()
        assert not any(p.stale for p in sink.batches[-1])  # nothing vanished
        await m.stop()

    run(main)


def test_failed_scrape_writes_up_0_and_stale_markers(server: ExpositionServer) -> None:
    sink, clock = MemorySink(), FakeClock()

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "t", clock, run_loops=False)
        await m.start()
        server.exposition.body = 'a{x="1"} 1\nb 2\n'
        await m.scrape_now()
        server.exposition.status = 500
        ts = clock.tick()
        await m.scrape_now()
        batch = sink.batches[-1]
        assert value(select(batch, "up")) == 0.0
        assert value(select(batch, "scrape_samples_scraped")) == 0.0
        stale = sorted(dict(p.labels)["__name__"] for p in batch if p.stale)
        assert stale == ["a", "b"] and all(p.ts == ts for p in batch)
        (st,) = m.targets()
        assert st.health == "down" and "HTTP status 500" in st.last_error
        # recovery: up again, the old series come back without staleness
        server.exposition.status = 200
        clock.tick()
        await m.scrape_now()
        assert value(sink.last("up")) == 1.0
        assert not any(p.stale for p in sink.batches[-1])
        await m.stop()

    run(main)


def test_parse_error_fails_the_scrape_with_line_number(server: ExpositionServer) -> None:
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "t", FakeClock(), run_loops=False)
        await m.start()
        server.exposition.body = "ok 1\nbroken{ 2\n"
        await m.scrape_now()
        (st,) = m.targets()
        assert st.health == "down" and st.last_error.startswith("line 2:")
        await m.stop()

    run(main)
    assert value(sink.last("up")) == 0.0
    assert not select(sink.batches[-1], "ok")


def test_openmetrics_response_is_negotiated(server: ExpositionServer) -> None:
    server.exposition.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    server.exposition.body = (
        '# TYPE c counter\nc_total 5 1700000000.5 # {trace_id="x"} 1\nc_created 1600000000\n# EOF\n'
    )
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "t", FakeClock(), run_loops=False)
        await m.start()
        await m.scrape_now()
        await m.stop()

    run(main)
    (p,) = select(sink.batches[0], "c_total")
    assert (p.ts, p.value) == (1_700_000_000_500, 5.0)  # honor_timestamps: exposition ts kept
    assert not select(sink.batches[0], "c_created")


def test_honor_labels_false_renames_conflicts_to_exported(server: ExpositionServer) -> None:
    server.exposition.body = 'm{job="scraped",instance="i",exported_job="e"} 1\n'
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "t", FakeClock(), run_loops=False)
        await m.start()
        await m.scrape_now()
        await m.stop()

    run(main)
    (p,) = select(sink.batches[0], "m")
    assert dict(p.labels) == {
        "__name__": "m",
        "job": "app",
        "instance": server.address,
        "exported_instance": "i",
        "exported_exported_job": "scraped",
        "exported_job": "e",
    }


def test_honor_labels_true_keeps_scraped_labels(server: ExpositionServer) -> None:
    server.exposition.body = 'm{job="scraped"} 1\n'
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(
            job(server.address, "  honor_labels: true\n"), sink, "t", FakeClock(), run_loops=False
        )
        await m.start()
        await m.scrape_now()
        await m.stop()

    run(main)
    (p,) = select(sink.batches[0], "m")
    assert dict(p.labels) == {"__name__": "m", "job": "scraped", "instance": server.address}
    # the synthetic series always carry the target's labels
    assert dict(select(sink.batches[0], "up")[0].labels)["job"] == "app"


def test_resolve_target_labels_examples() -> None:
    assert resolve_target_labels((("job", "x"),), (("job", "t"),), honor=False) == {
        "job": "t",
        "exported_job": "x",
    }
    assert resolve_target_labels((("job", "x"),), (("job", "t"),), honor=True) == {"job": "x"}


def test_explicit_timestamps_are_not_tracked_for_staleness(server: ExpositionServer) -> None:
    sink, clock = MemorySink(), FakeClock()

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "t", clock, run_loops=False)
        await m.start()
        server.exposition.body = "with_ts 1 1600000000000\nwithout 1\n"
        await m.scrape_now()
        server.exposition.body = ""
        clock.tick()
        await m.scrape_now()
        stale = [dict(p.labels)["__name__"] for p in sink.batches[-1] if p.stale]
        assert stale == ["without"]
        await m.stop()

    run(main)


def test_honor_timestamps_false_uses_scrape_time(server: ExpositionServer) -> None:
    server.exposition.body = "with_ts 1 1600000000000\n"
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(
            job(server.address, "  honor_timestamps: false\n"), sink, "t", FakeClock(), run_loops=False
        )
        await m.start()
        await m.scrape_now()
        await m.stop()

    run(main)
    assert select(sink.batches[0], "with_ts")[0].ts == int(T0 * 1000)


def test_metric_relabeling_and_limits(server: ExpositionServer) -> None:
    server.exposition.body = 'go_x 1\nkeep_me{a="1"} 2\nkeep_me{a="2"} 3\n'
    extra = (
        "  metric_relabel_configs:\n  - {action: drop, source_labels: [__name__], regex: 'go_.*'}\n"
        "  - {action: labeldrop, regex: a}\n"
    )
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(job(server.address, extra), sink, "t", FakeClock(), run_loops=False)
        await m.start()
        await m.scrape_now()
        (st,) = m.targets()
        assert st.duplicates_dropped == 1  # both keep_me series collapse after labeldrop
        await m.stop()

    run(main)
    batch = sink.batches[0]
    assert not select(batch, "go_x")
    assert len(select(batch, "keep_me")) == 1
    assert value(select(batch, "scrape_samples_scraped")) == 3.0
    assert value(select(batch, "scrape_samples_post_metric_relabeling")) == 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  sample_limit: 2\n", "sample limit exceeded (3 samples, limit 2)"),
        ("  label_limit: 3\n", "label_limit exceeded (metric: m, number of labels: 4, limit: 3)"),
        ("  label_value_length_limit: 4\n", "label_value_length_limit exceeded"),
        ("  body_size_limit: 10B\n", "body size limit exceeded (10 bytes)"),
    ],
)
def test_limits_fail_the_scrape(server: ExpositionServer, extra: str, message: str) -> None:
    server.exposition.body = 'a 1\nb 1\nm{x="12345"} 1\n'
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(job(server.address, extra), sink, "t", FakeClock(), run_loops=False)
        await m.start()
        await m.scrape_now()
        (st,) = m.targets()
        assert st.health == "down"
        assert message in st.last_error
        await m.stop()

    run(main)
    assert value(sink.last("up")) == 0.0
    assert not select(sink.batches[0], "a")


def test_timeout_fails_the_scrape(server: ExpositionServer) -> None:
    server.exposition.body = "a 1\n"
    server.exposition.delay = 30.0
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(
            job(server.address, "  scrape_timeout: 200ms\n"), sink, "t", FakeClock(), run_loops=False
        )
        await m.start()
        await m.scrape_now()
        (st,) = m.targets()
        assert st.health == "down" and st.last_error == "scrape timed out after 0.2s"
        await m.stop()

    run(main)
    assert server.requests[0][1]["x-prometheus-scrape-timeout-seconds"] == "0.2"


def test_unreachable_target_is_down() -> None:
    s = ExpositionServer()
    address = s.address
    s.close()  # nothing listens there any more
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(job(address), sink, "t", FakeClock(), run_loops=False)
        await m.start()
        await m.scrape_now()
        (st,) = m.targets()
        assert st.health == "down" and st.last_error
        await m.stop()

    run(main)
    assert value(sink.last("up")) == 0.0


def test_basic_auth_and_params_are_sent(server: ExpositionServer) -> None:
    extra = "  basic_auth: {username: u, password: p}\n  params: {module: [m1]}\n"
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(job(server.address, extra), sink, "t", FakeClock(), run_loops=False)
        await m.start()
        await m.scrape_now()
        await m.stop()

    run(main)
    path, headers = server.requests[0]
    assert path == "/metrics?module=m1"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


def test_sink_errors_are_reported_not_raised(server: ExpositionServer) -> None:
    server.exposition.body = "a 1\n"
    sink = MemorySink(fail=RuntimeError("store full"))

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "t", FakeClock(), run_loops=False)
        await m.start()
        await m.scrape_now()
        (st,) = m.targets()
        assert st.health == "up" and st.write_error == "RuntimeError: store full"
        await m.stop()

    run(main)


def test_removed_target_gets_stale_markers_and_kept_target_does_not(server: ExpositionServer) -> None:
    other = ExpositionServer()
    server.exposition.body = "a 1\n"
    other.exposition.body = "b 1\n"
    sink, clock = MemorySink(), FakeClock()
    two = configs(
        "- job_name: app\n  static_configs: [{{targets: ['{a}', '{b}']}}]\n",
        a=server.address,
        b=other.address,
    )

    async def main() -> None:
        m = ScrapeManager(two, sink, "t", clock, run_loops=False)
        await m.start()
        await m.scrape_now()
        n = len(sink.batches)
        ts = clock.tick()
        await m.apply(job(server.address).copy())  # `other` removed; interval changed too
        stale_batches = sink.batches[n:]
        assert len(stale_batches) == 1
        stale = stale_batches[0]
        assert all(p.stale and p.ts == ts for p in stale)
        assert {dict(p.labels)["instance"] for p in stale} == {other.address}
        assert sorted(dict(p.labels)["__name__"] for p in stale) == sorted(["b", *REPORT_SERIES])
        # The kept target's loop handed its series over: a vanished series still goes stale.
        server.exposition.body = ""
        clock.tick()
        await m.scrape_now()
        assert [dict(p.labels)["__name__"] for p in sink.batches[-1] if p.stale] == ["a"]
        (st,) = m.targets()
        assert st.scrape_interval == 15.0
        await m.stop()

    try:
        run(main)
    finally:
        other.close()


def test_stop_writes_no_stale_markers(server: ExpositionServer) -> None:
    server.exposition.body = "a 1\n"
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "t", FakeClock(), run_loops=False)
        await m.start()
        await m.scrape_now()
        await m.stop()
        assert m.targets() == []

    run(main)
    assert len(sink.batches) == 1


def test_removed_job_gets_stale_markers(server: ExpositionServer) -> None:
    server.exposition.body = "a 1\n"
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "t", FakeClock(), run_loops=False)
        await m.start()
        await m.scrape_now()
        await m.apply([])
        assert m.targets() == []
        await m.stop()

    run(main)
    assert len(sink.batches) == 2 and all(p.stale for p in sink.batches[1])


def test_loops_scrape_on_their_own(server: ExpositionServer) -> None:
    server.exposition.body = "a 1\n"
    sink = MemorySink()
    cfg = configs(
        "- job_name: fast\n  scrape_interval: 100ms\n  static_configs: [{{targets: ['{a}']}}]\n",
        a=server.address,
    )

    async def main() -> None:
        m = ScrapeManager(cfg, sink, "t")
        await m.start()
        await wait_for_async(lambda: len(sink.batches) >= 3)
        await m.stop()
        n = len(sink.batches)
        await asyncio.sleep(0.3)
        assert len(sink.batches) == n  # stopped loops do not scrape

    run(main)
    ts = [select(b, "up")[0].ts for b in sink.batches]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)


def test_initial_delay_is_within_the_interval_and_stable(server: ExpositionServer) -> None:
    sink = MemorySink()

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "t", FakeClock(), run_loops=False)
        await m.start()
        (lp,) = next(iter(m._jobs.values())).loops.values()
        d1 = lp.initial_delay(T0)
        assert 0 <= d1 <= 15.0
        # the same phase: one interval later the delay is the same
        assert lp.initial_delay(T0 + 15.0) == pytest.approx(d1, abs=1e-6)
        await m.stop()

    run(main)


def test_samples_refused_by_the_write_path_fail_the_scrape(server: ExpositionServer) -> None:
    from clearsight.model.samples import SampleBatch
    from clearsight.pipeline.errors import InvalidInput
    from clearsight.store.interface import AppendResult

    inner = MemorySink()

    async def picky(tenant: str, batch: SampleBatch) -> AppendResult:
        names = {dict(batch.decode_labels(k))["__name__"] for k in batch.keys}
        if "too_long" in names:
            raise InvalidInput("label value too long")
        return await inner(tenant, batch)

    server.exposition.body = "ok 1\n"
    clock = FakeClock()

    async def main() -> None:
        m = ScrapeManager(job(server.address), picky, "t", clock, run_loops=False)
        await m.start()
        await m.scrape_now()
        server.exposition.body = "ok 1\ntoo_long 2\n"
        ts = clock.tick()
        await m.scrape_now()
        (st,) = m.targets()
        assert st.health == "down"
        assert st.last_error == "samples rejected by the write path: label value too long"
        assert st.write_error == ""  # the fallback batch was written
        batch = inner.batches[-1]
        assert value(select(batch, "up")) == 0.0
        (ok,) = select(batch, "ok")
        assert ok.stale and ok.ts == ts
        await m.stop()

    run(main)


def test_api_targets_shape(server: ExpositionServer) -> None:
    server.exposition.body = "a 1\n"
    extra = "  relabel_configs: [{action: drop, source_labels: [__address__], regex: 'nope.*'}]\n"
    cfg = configs(
        "- job_name: app\n  scrape_interval: 15s\n  static_configs: [{{targets: ['{a}', 'nope:1']}}]\n{x}",
        a=server.address,
        x=extra,
    )
    clock = FakeClock()
    clock.now = 1_700_000_000.25

    async def main() -> None:
        m = ScrapeManager(cfg, MemorySink(), "t", clock, run_loops=False)
        await m.start()
        await m.scrape_now()
        data = m.api_targets()
        (t,) = data["activeTargets"]
        assert t["labels"] == {"instance": server.address, "job": "app"}
        assert t["scrapePool"] == "app" and t["health"] == "up" and t["lastError"] == ""
        assert t["lastScrape"] == "2023-11-14T22:13:20.25Z"
        assert t["scrapeInterval"] == "15s" and t["scrapeTimeout"] == "10s"
        assert data["droppedTargets"] == [
            {
                "discoveredLabels": {
                    "__address__": "nope:1",
                    "__metrics_path__": "/metrics",
                    "__scheme__": "http",
                    "__scrape_interval__": "15s",
                    "__scrape_timeout__": "10s",
                    "job": "app",
                }
            }
        ]
        assert m.api_targets(state="active", scrape_pool="other") == {"activeTargets": []}
        with pytest.raises(ValueError, match="invalid state"):
            m.api_targets(state="bogus")
        await m.stop()

    run(main)


def test_reload_while_loops_run_and_clean_shutdown() -> None:
    a, b, c = ExpositionServer(), ExpositionServer(), ExpositionServer()
    for i, s in enumerate((a, b, c)):
        s.exposition.body = f"from_{i} 1\n"
    sink = MemorySink()

    def cfg(*servers: ExpositionServer) -> list[ScrapeConfig]:
        targets = ", ".join(f"'{s.address}'" for s in servers)
        return configs(
            "- job_name: fast\n  scrape_interval: 100ms\n  static_configs: [{{targets: [{t}]}}]\n", t=targets
        )

    def scraped(s: ExpositionServer) -> bool:
        return any(dict(p.labels).get("instance") == s.address and not p.stale for p in sink.points)

    async def main() -> None:
        m = ScrapeManager(cfg(a, b), sink, "t")
        await m.start()
        await wait_for_async(lambda: scraped(a) and scraped(b))
        await m.apply(cfg(a, c))  # b goes, c comes, a keeps its loop
        removed = [p for p in sink.points if p.stale and dict(p.labels)["instance"] == b.address]
        assert sorted(dict(p.labels)["__name__"] for p in removed) == sorted(["from_1", *REPORT_SERIES])
        await wait_for_async(lambda: scraped(c))
        assert {dict(t.labels)["instance"] for t in m.targets()} == {a.address, c.address}
        await m.stop()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert not [p for p in sink.points if p.stale and dict(p.labels)["instance"] == a.address]

    try:
        run(main)
    finally:
        for s in (a, b, c):
            s.close()
