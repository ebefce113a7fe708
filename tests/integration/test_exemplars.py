"""Exemplars end to end: a real Prometheus (exemplar storage on) scrapes an OpenMetrics target with
exemplars and remote-writes them (``send_exemplars: true``) to Clearsight; ``/api/v1/query_exemplars``
answers as Prometheus' own does, and still does after a ``kill -9`` and restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import start_clearsight, start_prometheus

PROM_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["{target}"]
remote_write:
  - url: "{clearsight}/api/v1/write"
    send_exemplars: true
    queue_config:
      batch_send_deadline: 200ms
      min_backoff: 50ms
      max_backoff: 1s
"""


class _Target:
    """An OpenMetrics target: every scrape a counter and a histogram with a fresh exemplar each."""

    def __init__(self) -> None:
        self.scrapes = 0
        self.lock = threading.Lock()

    def body(self) -> bytes:
        with self.lock:
            self.scrapes += 1
            n = self.scrapes
        now = time.time()
        return (
            "# TYPE req counter\n"
            "# HELP req Requests.\n"
            f'req_total{{path="/a"}} {n} # {{trace_id="req{n}"}} 1.0 {now:.3f}\n'
            "# TYPE lat histogram\n"
            f'lat_bucket{{le="0.5"}} {n} # {{trace_id="fast{n}",span_id="s{n}"}} 0.25 {now:.3f}\n'
            f'lat_bucket{{le="+Inf"}} {2 * n} # {{trace_id="slow{n}"}} 2.5 {now:.3f}\n'
            f"lat_sum {1.5 * n}\n"
            f"lat_count {2 * n}\n"
            "# EOF\n"
        ).encode()


@pytest.fixture
def target() -> Iterator[tuple[str, _Target]]:
    state = _Target()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = state.body()
            self.send_response(200)
            self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _exemplars(url: str, query: str, start: float, end: float) -> dict[tuple[tuple[str, str], ...], list[Any]]:
    r = httpx.get(f"{url}/api/v1/query_exemplars", params={"query": query, "start": start, "end": end}, timeout=30)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "success"
    return {
        tuple(sorted(item["seriesLabels"].items())): [
            (tuple(sorted(e["labels"].items())), e["value"], e["timestamp"]) for e in item["exemplars"]
        ]
        for item in doc["data"]
    }


def test_remote_written_exemplars_answer_like_prometheus_and_survive_kill(
    tmp_path: Path, target: tuple[str, _Target]
) -> None:
    address, _ = target
    cs = start_clearsight(tmp_path / "cs")
    prom = None
    try:
        prom = start_prometheus(tmp_path / "prom", PROM_CONFIG.format(target=address, clearsight=cs.url),
                                extra_args=["--enable-feature=exemplar-storage"])
        start = time.time() - 60
        query = '{__name__=~"req_total|lat_bucket"}'
        deadline = time.monotonic() + 90
        ours: dict[Any, Any] = {}
        while time.monotonic() < deadline:  # until a few scrapes' exemplars have arrived
            ours = _exemplars(cs.url, query, start, time.time() + 60)
            if sum(len(v) for v in ours.values()) >= 9:
                break
            time.sleep(0.5)
        assert sum(len(v) for v in ours.values()) >= 9, ours
        end = time.time() + 60
        ours = _exemplars(cs.url, query, start, end)
        prom_view = _exemplars(prom.url, query, start, end)  # read second: it holds at least what it sent
        assert set(ours) == set(prom_view)
        for series, got in ours.items():  # each series' exemplars are sent in order: ours is a prefix
            assert len(got) >= 3 and got == prom_view[series][:len(got)], (series, got, prom_view[series])
        labels = {dict(k)["__name__"] + "/" + dict(k).get("le", "") for k in ours}
        assert labels == {"req_total/", "lat_bucket/0.5", "lat_bucket/+Inf"}
        fast = ours[tuple(sorted({"__name__": "lat_bucket", "le": "0.5", "job": "app", "instance": address}.items()))]
        assert all(dict(lbls)["trace_id"].startswith("fast") and "span_id" in dict(lbls) for lbls, _, _ in fast)
        assert all(value == "0.25" for _, value, _ in fast)
        # Only what a selector selects, and the time range is honoured.
        assert set(_exemplars(cs.url, "req_total", start, end)) == {k for k in ours if dict(k)["__name__"] == "req_total"}
        first_ts = min(ts for v in ours.values() for _, _, ts in v)
        assert all(ts > first_ts for v in _exemplars(cs.url, query, first_ts + 0.001, end).values()
                   for _, _, ts in v)

        prom.stop()
        prom = None
        ours = _exemplars(cs.url, query, start, end)
        cs.kill9()  # what was acknowledged must come back
        cs = start_clearsight(tmp_path / "cs2", data_dir=tmp_path / "cs" / "data")
        assert _exemplars(cs.url, query, start, end) == ours
    finally:
        if prom is not None:
            prom.stop()
        cs.stop()


def test_query_exemplars_rejects_bad_parameters(tmp_path: Path) -> None:
    cs = start_clearsight(tmp_path / "cs")
    try:
        for params in ({"query": "up{"}, {"query": "up", "start": "x"}, {"query": "up", "start": "10", "end": "5"}):
            r = httpx.get(f"{cs.url}/api/v1/query_exemplars", params=params, timeout=10)
            assert r.status_code == 400 and r.json()["errorType"] == "bad_data", (params, r.text)
    finally:
        cs.stop()
