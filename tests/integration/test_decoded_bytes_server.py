"""The global cap on decompressed request bytes (``server.max_inflight_decoded_bytes``) on the real
``clearsight server``: eight remote-writes that each expand to ~6 MB, sent at once against a 10 MB
cap, re-sent after ``Retry-After`` when answered 503 as Prometheus does. The server never holds more
than the cap (its own ``/metrics``), every refusal is a 503 that names the setting and carries
``Retry-After``, and every request is in the end acknowledged and stored whole.

The memory this bounds, on the real server (``bench/memory_bounds.py --parts 4b``, ten 239 MiB
requests at once): +1,266 MiB RSS with the default 256 MiB cap against +4,183 MiB without it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_write_request, snappy
from tests.support.peers import Proc, start_clearsight

CAP = 10_000_000
SERIES = 2_000
REQUESTS = 8
HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    cs = start_clearsight(tmp_path_factory.mktemp("decoded"), config_yaml=f"""
server:
  max_inflight_decoded_bytes: {CAP}
  inline_decode_max_bytes: 0
  ingest_workers: 4
limits:
  max_decompressed_bytes: 8000000
""")
    yield cs
    cs.stop()


def _metric(cs: Proc, name: str) -> float:
    for line in httpx.get(f"{cs.url}/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing from /metrics")


def test_writes_beyond_the_cap_wait_their_turn_and_all_land(server: Proc) -> None:
    now_ms = int(time.time() * 1000) // 1000 * 1000
    pads = [(f"pad_{c}", c * 1000) for c in "abc"]
    bodies = []
    for r in range(REQUESTS):
        raw = encode_write_request(WriteRequest([
            TimeSeries([("__name__", "wide_labels"), ("instance", f"i{i:05d}"), *pads], [(now_ms - r * 1000, float(r))])
            for i in range(SERIES)]))
        assert len(raw) > 6_000_000
        bodies.append(snappy(raw))
    refusals: list[httpx.Response] = []
    acknowledged: list[int] = []
    lock = threading.Lock()

    def send(body: bytes) -> None:
        for _ in range(200):
            r = httpx.post(f"{server.url}/api/v1/write", content=body, headers=HEADERS, timeout=60)
            if r.status_code == 503:
                with lock:
                    refusals.append(r)
                time.sleep(float(r.headers["Retry-After"]) / 4)  # sooner than asked: more contention
                continue
            with lock:
                acknowledged.append(r.status_code)
            return

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert acknowledged == [204] * REQUESTS
    for refusal in refusals:
        assert "server.max_inflight_decoded_bytes" in refusal.text
        assert int(refusal.headers["Retry-After"]) >= 1
    peak = _metric(server, "clearsight_decoded_request_bytes_peak")
    assert 6_000_000 < peak <= CAP
    assert _metric(server, "clearsight_decoded_request_bytes_refused_total") == len(refusals)
    assert _metric(server, "clearsight_decoded_request_bytes") == 0  # every hold given back
    got = httpx.get(f"{server.url}/api/v1/query", timeout=30,
                    params={"query": "count_over_time(wide_labels[1m])", "time": now_ms / 1000 + 1}).json()
    counts = [int(s["value"][1]) for s in got["data"]["result"]]
    assert len(counts) == SERIES
    assert set(counts) == {REQUESTS}
