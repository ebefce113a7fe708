"""Prometheus' status and management endpoints (api/prometheus_status.py), in process on a real store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.api.prometheus_status import config_document, redact, tsdb_stats
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import build

RW_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}
SCRAPE_YAML = """
scrape_configs:
  - job_name: node
    basic_auth: {username: u, password: hunter2}
    static_configs: [{targets: ['127.0.0.1:9100']}]
  - job_name: api
    authorization: {type: Bearer, credentials: tok-123}
    static_configs: [{targets: ['127.0.0.1:9101']}]
"""


def _client(tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(SCRAPE_YAML)
    cfg = load_config(cfg_file, env={}, overrides={"storage.data_dir": str(tmp_path / "data"), **overrides})
    cfg.tenancy.trust_tenant_header = True
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            yield c
    finally:
        built.store.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path)


def _write(client: TestClient, series: list[TimeSeries], tenant: str | None = None) -> None:
    headers = dict(RW_HEADERS)
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    r = client.post("/api/v1/write", content=encode_snappy(WriteRequest(series, [])), headers=headers)
    assert r.status_code == 204, r.text


def test_healthy_and_ready_answer_like_prometheus_for_get_and_head(client: TestClient) -> None:
    r = client.get("/-/healthy")
    assert (r.status_code, r.text) == (200, "Prometheus Server is Healthy.\n")
    assert r.headers["content-type"].startswith("text/plain")
    assert client.head("/-/healthy").status_code == 200
    r = client.get("/-/ready")
    assert (r.status_code, r.text) == (200, "Prometheus Server is Ready.\n")
    assert client.head("/-/ready").status_code == 200
    r = client.post("/-/reload")
    assert (r.status_code, r.text) == (403, "Lifecycle API is not enabled.")


def test_status_config_is_the_effective_yaml_with_secrets_redacted(client: TestClient) -> None:
    body = client.get("/api/v1/status/config").json()
    assert body["status"] == "success"
    text = body["data"]["yaml"]
    assert "hunter2" not in text and "tok-123" not in text
    doc = yaml.safe_load(text)
    assert doc["scrape_configs"][0]["basic_auth"] == {"username": "u", "password": "<secret>"}
    assert doc["scrape_configs"][1]["authorization"] == {"type": "Bearer", "credentials": "<secret>"}
    assert doc["storage"]["retention"] == "15d"
    assert doc["global"]["scrape_interval"] == "1m"


def test_redact_keeps_file_references_and_empty_values() -> None:
    doc = {"a": [{"password": "x", "password_file": "/p", "token": ""}], "key": "k"}
    assert redact(doc) == {"a": [{"password": "<secret>", "password_file": "/p", "token": ""}], "key": "<secret>"}


def test_status_flags_and_runtimeinfo_shapes(client: TestClient) -> None:
    flags = client.get("/api/v1/status/flags").json()["data"]
    assert flags["storage.retention"] == "15d"
    assert flags["server.enable_admin_api"] == "false"
    assert all(isinstance(v, str) for v in flags.values())
    info = client.get("/api/v1/status/runtimeinfo").json()["data"]
    assert set(info) == {"startTime", "CWD", "reloadConfigSuccess", "lastConfigTime", "corruptionCount",
                         "goroutineCount", "GOMAXPROCS", "GOGC", "GODEBUG", "storageRetention"}
    assert info["storageRetention"] == "15d" and info["startTime"].endswith("Z")
    assert isinstance(info["goroutineCount"], int) and info["goroutineCount"] >= 1


def test_status_tsdb_counts_the_tenants_series_top_limit(client: TestClient) -> None:
    now = int(time.time() * 1000)
    series = [TimeSeries([("__name__", "http_requests_total"), ("code", str(c)), ("job", "api")], [(now, 1.0)])
              for c in (200, 404, 500)]
    series.append(TimeSeries([("__name__", "up"), ("job", "api")], [(now, 1.0)]))
    _write(client, series)
    _write(client, [TimeSeries([("__name__", "other_tenant_metric")], [(now, 1.0)])], tenant="t2")
    data = client.get("/api/v1/status/tsdb").json()["data"]
    assert data["headStats"]["numSeries"] == 4
    assert data["headStats"]["numLabelPairs"] == 6  # 2 names + 3 codes + job=api
    assert data["headStats"]["minTime"] < data["headStats"]["maxTime"]
    assert data["seriesCountByMetricName"] == [{"name": "http_requests_total", "value": 3}, {"name": "up", "value": 1}]
    assert data["labelValueCountByLabelName"][0] == {"name": "code", "value": 3}
    assert data["seriesCountByLabelValuePair"][0] == {"name": "job=api", "value": 4}
    assert {"name": "__name__", "value": len("http_requests_total") + len("up")} in data["memoryInBytesByLabelName"]
    limited = client.get("/api/v1/status/tsdb", params={"limit": "1"}).json()["data"]
    assert limited["seriesCountByMetricName"] == [{"name": "http_requests_total", "value": 3}]
    other = client.get("/api/v1/status/tsdb", headers={"X-Scope-OrgID": "t2"}).json()["data"]
    assert other["seriesCountByMetricName"] == [{"name": "other_tenant_metric", "value": 1}]
    for bad in ("0", "-3", "x"):
        r = client.get("/api/v1/status/tsdb", params={"limit": bad})
        assert r.status_code == 400 and r.json()["errorType"] == "bad_data"


def test_tsdb_stats_ties_are_ordered_by_name() -> None:
    series = [(("__name__", "b"),), (("__name__", "a"),)]
    out = tsdb_stats(series, 10, (0, 1))
    assert out["seriesCountByMetricName"] == [{"name": "a", "value": 1}, {"name": "b", "value": 1}]


def test_targets_metadata_and_alertmanagers(client: TestClient) -> None:
    assert client.get("/api/v1/targets/metadata").json() == {"status": "success", "data": []}
    r = client.get("/api/v1/targets/metadata", params={"match_target": '{job=~"a'})
    assert r.status_code == 400 and r.json()["errorType"] == "bad_data"
    r = client.get("/api/v1/targets/metadata", params={"limit": "x"})
    assert r.status_code == 400
    assert client.get("/api/v1/alertmanagers").json() == {
        "status": "success", "data": {"activeAlertmanagers": [], "droppedAlertmanagers": []}}


def test_query_exemplars_validates_like_prometheus_and_answers_empty(client: TestClient) -> None:
    ok = {"status": "success", "data": []}
    assert client.get("/api/v1/query_exemplars", params={"query": "up", "start": "0", "end": "100"}).json() == ok
    assert client.post("/api/v1/query_exemplars", data={"query": "up"}).json() == ok
    for p, fragment in (({}, "no expression found"), ({"query": "up("}, "unclosed left parenthesis"),
                        ({"query": "up", "start": "abc"}, 'invalid parameter "start"'),
                        ({"query": "up", "start": "10", "end": "5"}, "end timestamp must not be before start")):
        r = client.get("/api/v1/query_exemplars", params=p)
        assert r.status_code == 400, p
        assert r.json()["errorType"] == "bad_data" and fragment in r.json()["error"], r.json()


def test_admin_api_disabled_by_default(client: TestClient) -> None:
    for path in ("/api/v1/admin/tsdb/delete_series", "/api/v1/admin/tsdb/clean_tombstones"):
        r = client.post(path, params={"match[]": "up"})
        assert r.status_code == 500
        assert r.json() == {"status": "error", "errorType": "unavailable", "error": "admin APIs disabled"}
        assert client.put(path).status_code == 500
        assert client.get(path).status_code == 405


def test_admin_api_enabled_answers_like_prometheus(tmp_path: Path) -> None:
    # delete_series itself: tests/integration/test_admin_delete_series.py
    for c in _client(tmp_path, **{"server.enable_admin_api": "true"}):
        assert c.post("/api/v1/admin/tsdb/delete_series", params={"match[]": "up"}).status_code == 204
        r = c.post("/api/v1/admin/tsdb/delete_series")
        assert r.status_code == 400 and r.json()["error"] == "no match[] parameter provided"
        assert c.post("/api/v1/admin/tsdb/clean_tombstones").status_code == 204
        assert c.post("/api/v1/admin/tsdb/snapshot").status_code == 501


def test_config_document_sections_use_file_names(tmp_path: Path) -> None:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path)})
    doc = config_document(cfg)
    assert "global" in doc and "global_" not in doc and doc["scrape_configs"] == []
