"""The server's metrics write and read surfaces, in process (real store in a temp dir)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import Metadata, TimeSeries, WriteRequest, encode_snappy, snappy
from clearsight.server import build

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    cfg.tenancy.trust_tenant_header = True
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            yield c
    finally:
        built.store.close()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _write(client: TestClient, series: list[TimeSeries], tenant: str | None = None,
           metadata: list[Metadata] | None = None) -> int:
    headers = dict(RW_HEADERS)
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    r = client.post("/api/v1/write", content=encode_snappy(WriteRequest(series, metadata or [])), headers=headers)
    return r.status_code


def test_write_then_read_series_labels_values_metadata(client: TestClient) -> None:
    t = _now_ms()
    series = [
        TimeSeries([("__name__", "http_requests_total"), ("job", "api"), ("code", str(code))], [(t - 1000, 1.0), (t, 2.0)])
        for code in (200, 404, 500)
    ] + [TimeSeries([("__name__", "up"), ("job", "api"), ("instance", "a:1")], [(t, 1.0)])]
    md = [Metadata(1, "http_requests_total", "Requests served.", "")]
    assert _write(client, series, metadata=md) == 204

    r = client.get("/api/v1/series", params={"match[]": 'http_requests_total{code=~"2..|5.."}'})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "success"
    assert sorted(s["code"] for s in body["data"]) == ["200", "500"]
    assert body["data"][0]["__name__"] == "http_requests_total"

    r = client.get("/api/v1/labels")
    assert r.json() == {"status": "success", "data": ["__name__", "code", "instance", "job"]}
    r = client.get("/api/v1/label/__name__/values")
    assert r.json()["data"] == ["http_requests_total", "up"]
    r = client.get("/api/v1/label/code/values", params={"match[]": "http_requests_total", "limit": "2"})
    assert r.json() == {"status": "success", "data": ["200", "404"], "warnings": ["results truncated due to limit"]}
    r = client.get("/api/v1/metadata")
    assert r.json()["data"]["http_requests_total"] == [{"type": "counter", "help": "Requests served.", "unit": ""}]

    # POST form works like GET.
    r = client.post("/api/v1/series", data={"match[]": "up"})
    assert r.json()["data"] == [{"__name__": "up", "instance": "a:1", "job": "api"}]


def test_series_time_range_is_honoured(client: TestClient) -> None:
    t = _now_ms()
    assert _write(client, [TimeSeries([("__name__", "old"), ("a", "1")], [(t - 3_600_000, 1.0)])]) == 204
    assert _write(client, [TimeSeries([("__name__", "new"), ("a", "1")], [(t, 1.0)])]) == 204
    r = client.get("/api/v1/series", params={"match[]": '{a="1"}', "start": (t - 60_000) / 1000, "end": t / 1000 + 1})
    assert [s["__name__"] for s in r.json()["data"]] == ["new"]


def test_tenants_are_isolated(client: TestClient) -> None:
    t = _now_ms()
    assert _write(client, [TimeSeries([("__name__", "secret"), ("org", "a")], [(t, 1.0)])], tenant="org-a") == 204
    r = client.get("/api/v1/series", params={"match[]": "secret"}, headers={"X-Scope-OrgID": "org-b"})
    assert r.json()["data"] == []
    r = client.get("/api/v1/series", params={"match[]": "secret"}, headers={"X-Scope-OrgID": "org-a"})
    assert len(r.json()["data"]) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"not snappy at all", RW_HEADERS, 400, "snappy"),
        (snappy(b"\xff\xff\xff"), RW_HEADERS, 400, "truncated varint in WriteRequest at byte 0"),
        (encode_snappy(WriteRequest([])), {**RW_HEADERS, "Content-Type": "application/json"}, 415, "content-type"),
        (snappy(b"\x22\x01a"),  # remote-write 2.0 whose symbols[0] is "a"
         {**RW_HEADERS, "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"}, 400,
         "symbols[0] must be the empty string"),
        (encode_snappy(WriteRequest([])),
         {**RW_HEADERS, "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v3.Request"}, 415,
         "expected prometheus.WriteRequest"),
    ],
)
def test_bad_requests_are_rejected_with_reason(client: TestClient, body: bytes, headers: dict[str, str],
                                               status: int, message: str) -> None:
    r = client.post("/api/v1/write", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert message.lower() in r.text.lower()
    assert client.get("/api/v1/labels").json()["data"] == []


def test_rejected_request_writes_nothing(client: TestClient) -> None:
    t = _now_ms()
    good = TimeSeries([("__name__", "good"), ("a", "1")], [(t, 1.0)])
    bad = TimeSeries([("__name__", "bad"), ("a", "1"), ("a", "2")], [(t, 1.0)])  # duplicate label name
    r = client.post("/api/v1/write", content=encode_snappy(WriteRequest([good, bad])), headers=RW_HEADERS)
    assert r.status_code == 400
    assert "duplicate" in r.text.lower()
    assert client.get("/api/v1/series", params={"match[]": '{a="1"}'}).json()["data"] == []


def test_oversize_body_is_413(tmp_path: Path) -> None:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    cfg.limits = type(cfg.limits)(max_body_bytes=100)
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            req = WriteRequest([TimeSeries([("__name__", f"m{i}")], [(_now_ms(), 1.0)]) for i in range(50)])
            r = c.post("/api/v1/write", content=encode_snappy(req), headers=RW_HEADERS)
            assert r.status_code == 413
            assert "limit of 100 bytes" in r.text
    finally:
        built.store.close()


def test_ops_endpoints(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    assert _write(client, [TimeSeries([("__name__", "m")], [(_now_ms(), 1.0)])]) == 204
    client.post("/api/v1/write", content=b"junk", headers=RW_HEADERS)
    text = client.get("/metrics").text
    assert 'clearsight_ingested_samples_total{protocol="remote_write"} 1.0' in text
    assert 'clearsight_rejected_requests_total{protocol="remote_write",reason=' in text
    assert "clearsight_active_series{tenant=\"default\"} 1.0" in text
    assert "clearsight_store_write_queue_depth" in text
    # one series: its key and its label set, each in a table of the smallest size (64 slots x 20 B)
    assert "clearsight_store_series_key_bytes 2560.0" in text
    assert client.get("/api/v1/status/buildinfo").json()["status"] == "success"
    assert client.get("/docs").status_code == 200


def test_cardinality_limit_rejects_whole_request_and_is_reported(tmp_path: Path) -> None:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    cfg.limits = type(cfg.limits)(max_active_series_per_tenant=5)
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            t = _now_ms()
            first = [TimeSeries([("__name__", "m"), ("i", str(i))], [(t, 1.0)]) for i in range(4)]
            assert _write(c, first) == 204
            more = [TimeSeries([("__name__", "m"), ("i", str(i))], [(t + 1000, 2.0)]) for i in range(8)]
            r = c.post("/api/v1/write", content=encode_snappy(WriteRequest(more)), headers=RW_HEADERS)
            assert r.status_code == 400
            assert "active series" in r.text.lower() and "5" in r.text, r.text
            # All-or-nothing: not even the samples of the 4 known series were written.
            body = c.get("/api/v1/query", params={"query": "count_over_time(m[1h])", "time": t / 1000 + 5}).json()
            assert sorted(float(x["value"][1]) for x in body["data"]["result"]) == [1.0] * 4
            text = c.get("/metrics").text
            assert 'clearsight_rejected_requests_total{protocol="remote_write",reason="limit_' in text
            assert 'clearsight_active_series{tenant="default"} 4.0' in text
    finally:
        built.store.close()


def test_label_values_of_utf8_label_name_with_u_escaping(client: TestClient) -> None:
    t = _now_ms()
    assert _write(client, [TimeSeries([("__name__", "m"), ("service.name", "checkout")], [(t, 1.0)])]) == 204
    r = client.get("/api/v1/label/U__service_2e_name/values")
    assert r.json() == {"status": "success", "data": ["checkout"]}
