"""Scrape log levels: a target going down (or failing for a new reason) logs one WARNING with the
reason; the same failure again and every success log at DEBUG; recovery logs INFO once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from clearsight.logs import setup_logging
from clearsight.scrape.manager import ScrapeManager
from tests.unit.scrape.helpers import ExpositionServer, MemorySink
from tests.unit.scrape.test_manager import FakeClock, job


@pytest.fixture
def server() -> Iterator[ExpositionServer]:
    s = ExpositionServer()
    yield s
    s.close()


def _levels(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    out = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "clearsight.scrape"]
    caplog.clear()
    return out


def test_scrape_log_levels(server: ExpositionServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.exposition.body = "up_metric 1\n"
    sink, clock = MemorySink(), FakeClock()
    url = f"http://{server.address}/metrics"

    async def main() -> None:
        m = ScrapeManager(job(server.address), sink, "t", clock, run_loops=False)
        await m.start()
        await m.scrape_now()
        assert _levels(caplog) == [("DEBUG", f"scrape of {url} succeeded")]
        server.exposition.status = 500
        clock.tick()
        await m.scrape_now()
        (warning,) = _levels(caplog)
        prefix = f"scrape of {url} failed: "
        assert warning[0] == "WARNING" and warning[1].startswith(prefix) and "500" in warning[1][len(prefix):]
        clock.tick()
        await m.scrape_now()
        assert [lvl for lvl, _ in _levels(caplog)] == ["DEBUG"]  # the same failure again
        server.exposition.status = 200
        server.exposition.body = "not a valid exposition {\n"
        clock.tick()
        await m.scrape_now()
        (changed,) = _levels(caplog)
        # a new reason is a new warning (its reason only: the URL's free port may contain "500")
        assert changed[0] == "WARNING" and "500" not in changed[1][len(prefix):]
        server.exposition.body = "up_metric 1\n"
        clock.tick()
        await m.scrape_now()
        assert _levels(caplog) == [("INFO", f"scrape of {url} succeeded again"),
                                   ("DEBUG", f"scrape of {url} succeeded")]
        await m.stop()

    asyncio.run(main())


def test_logging_setup_keeps_httpx_request_lines_out_of_the_info_log() -> None:
    # httpx logs each scrape request at INFO; the logging setup raises it to WARNING.
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("httpx").level)
    try:
        setup_logging("info", "json")
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert logging.getLogger("clearsight.scrape").isEnabledFor(logging.WARNING)
        assert not logging.getLogger("clearsight.scrape").isEnabledFor(logging.DEBUG)
    finally:
        logging.captureWarnings(False)
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("httpx").setLevel(saved[2])
