"""``POST /api/v1/write`` dispatches by Content-Type: remote-write 2.0 bodies go to the 2.0 decoder and
the answer carries the X-Prometheus-Remote-Write-*-Written headers; 1.0 stays as it was."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Route

from clearsight.api.prometheus_write import make_remote_write_handler
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy, snappy
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.ingestor import MetricsIngestor
from clearsight.pipeline.limits import WriteLimits
from clearsight.selfmetrics import SelfMetrics
from clearsight.store.embedded.exemplar_store import EmbeddedExemplarStore
from clearsight.store.interface import AppendResult
from tests.support.rw2_encode import HEADERS, Series2, encode_snappy_v2


class _Store:
    def __init__(self) -> None:
        self.batches: list[SampleBatch] = []

    def append(self, tenant: str, batch: SampleBatch) -> concurrent.futures.Future[AppendResult]:
        self.batches.append(batch)
        fut: concurrent.futures.Future[AppendResult] = concurrent.futures.Future()
        fut.set_result(AppendResult(samples_written=batch.num_samples + batch.num_histograms,
                                    histograms_written=batch.num_histograms))
        return fut


def _post(body: bytes, headers: dict[str, str],
          exemplars: EmbeddedExemplarStore | None = None) -> tuple[httpx.Response, _Store]:
    store = _Store()
    handler = make_remote_write_handler(MetricsIngestor(store, exemplars=exemplars),  # type: ignore[arg-type]
                                        WriteLimits(),
                                        lambda r: "t", SelfMetrics())
    app = Starlette(routes=[Route("/api/v1/write", handler, methods=["POST"])])

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            return await c.post("/api/v1/write", content=body, headers=headers)

    return asyncio.run(go()), store


def test_v2_written_headers(tmp_path: Path) -> None:
    body = encode_snappy_v2([
        Series2([("__name__", "a"), ("x", "1")], [(1_700_000_000_000, 1.0), (1_700_000_001_000, 2.0)],
                exemplars=[([("trace_id", "t")], 1.0, 1_700_000_000_000)]),
        Series2([("__name__", "h")], histograms=3),
    ])
    kept = EmbeddedExemplarStore(tmp_path, 10)
    r, store = _post(body, HEADERS, kept)
    assert r.status_code == 204, r.text
    assert r.headers["X-Prometheus-Remote-Write-Samples-Written"] == "2"
    assert r.headers["X-Prometheus-Remote-Write-Histograms-Written"] == "3"
    assert r.headers["X-Prometheus-Remote-Write-Exemplars-Written"] == "1"
    [batch] = store.batches
    assert batch.key_kind == "rw2"
    assert batch.num_histograms == 3 and batch.histograms_dropped == 0
    assert batch.exemplars_dropped == 0 and len(batch.exemplars) == 1
    assert len(kept) == 1
    kept.close()


def test_v2_malformed_is_400_with_zero_written_and_nothing_stored() -> None:
    r, store = _post(snappy(b"\x22\x01x"), HEADERS)
    assert r.status_code == 400
    assert "symbols[0] must be the empty string" in r.text
    assert r.headers["X-Prometheus-Remote-Write-Samples-Written"] == "0"
    assert store.batches == []


def test_v1_still_decoded_as_v1_without_v2_headers() -> None:
    body = encode_snappy(WriteRequest([TimeSeries([("__name__", "up")], [(1_700_000_000_000, 1.0)])]))
    r, store = _post(body, {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})
    assert r.status_code == 204
    assert "X-Prometheus-Remote-Write-Samples-Written" not in r.headers
    assert store.batches[0].key_kind == "prompb"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120))
def test_fuzzed_v2_bodies_get_4xx_or_write_whole(raw: bytes) -> None:
    r, store = _post(snappy(raw), HEADERS)
    if r.status_code == 204:
        assert len(store.batches) == 1
    else:
        assert r.status_code == 400, r.text
        assert store.batches == []
