"""``POST /api/v1/write`` (api/prometheus_write.py): no write without the protocol's Content-Type
(a browser's simple POST carries text/plain, a form type or none)."""

from __future__ import annotations

import asyncio
import concurrent.futures

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from clearsight.api.prometheus_write import make_remote_write_handler
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_write_request, snappy
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.ingestor import MetricsIngestor
from clearsight.pipeline.limits import WriteLimits
from clearsight.selfmetrics import SelfMetrics
from clearsight.store.interface import AppendResult

BODY = snappy(encode_write_request(WriteRequest(timeseries=[
    TimeSeries(labels=[("__name__", "up")], samples=[(1_700_000_000_000, 1.0)])])))


class _Store:
    def __init__(self) -> None:
        self.batches: list[SampleBatch] = []

    def append(self, tenant: str, batch: SampleBatch) -> concurrent.futures.Future[AppendResult]:
        self.batches.append(batch)
        fut: concurrent.futures.Future[AppendResult] = concurrent.futures.Future()
        fut.set_result(AppendResult(samples_written=batch.num_samples))
        return fut


def _post(headers: dict[str, str]) -> tuple[httpx.Response, _Store]:
    store = _Store()
    handler = make_remote_write_handler(MetricsIngestor(store), WriteLimits(),  # type: ignore[arg-type]
                                        lambda r: "t", SelfMetrics())
    app = Starlette(routes=[Route("/api/v1/write", handler, methods=["POST"])])

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            return await c.post("/api/v1/write", content=BODY, headers=headers)

    return asyncio.run(go()), store


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_write_without_the_protobuf_content_type_is_415_and_writes_nothing(content_type: str | None) -> None:
    headers = {"Content-Encoding": "snappy"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    r, store = _post(headers)
    assert r.status_code == 415
    assert "application/x-protobuf" in r.text
    assert store.batches == []


def test_write_with_prometheus_headers_is_accepted() -> None:
    r, store = _post({"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                      "X-Prometheus-Remote-Write-Version": "0.1.0"})
    assert r.status_code == 204
    assert store.batches[0].values.tolist() == [1.0]
