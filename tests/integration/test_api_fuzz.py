"""Fuzzing the HTTP parameters of the query and metadata APIs: whatever comes in, the answer is a
Prometheus envelope with a 2xx/4xx status (never a 500, never a hang)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import build

NOW = int(time.time())

QUERY_PARTS = st.sampled_from([
    "up", "m", "sum", "rate", "(", ")", "[5m]", "[1m:10s]", "{", "}", 'job="a"', "=~", '".*"', " by (job) ",
    "+", "/", "offset 5m", "@ 100", "topk(2,", "histogram_quantile(0.9,", "1", "NaN", "Inf", ",", "bool",
    "on(job)", "group_left", "and", "or", "unless", "-", "^", "abs(", "label_replace(", "'x'", "#",
    "count_values(", "quantile(", "0.5", "absent(", "time()", "[0s]", "\x00", "é", "\\",
])
TIMES = st.one_of(st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True).map(str),
                  st.sampled_from(["", "now", "2020-01-01T00:00:00Z", "1e309", "-1e309", "abc", str(NOW)]),
                  st.text(max_size=10))
STEPS = st.one_of(st.sampled_from(["0", "-1", "1", "15s", "1h", "0.001", "1e-9", "5m", "abc", "", "NaN"]),
                  st.text(max_size=6))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp / "data"), "query.timeout": "10s"})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            series = [TimeSeries([("__name__", "m"), ("job", j)], [(NOW * 1000 - 60_000 * k, float(k)) for k in range(10)])
                      for j in ("a", "b")] + [TimeSeries([("__name__", "up"), ("job", "a")], [(NOW * 1000, 1.0)])]
            assert c.post("/api/v1/write", content=encode_snappy(WriteRequest(series)),
                          headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}).status_code == 204
            yield c
    finally:
        built.store.close()


def _check(r: object) -> None:
    status = r.status_code  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert status in (200, 400, 413, 415, 422, 503), (status, body)
    assert body["status"] == ("success" if status == 200 else "error"), body
    if status != 200:
        assert body["errorType"] in ("bad_data", "execution", "timeout") and body["error"], body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(QUERY_PARTS, max_size=8), t=TIMES)
def test_instant_query_params(client: TestClient, parts: list[str], t: str) -> None:
    _check(client.get("/api/v1/query", params={"query": "".join(parts), "time": t}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(QUERY_PARTS, max_size=6), start=TIMES, end=TIMES, step=STEPS)
def test_range_query_params(client: TestClient, parts: list[str], start: str, end: str, step: str) -> None:
    _check(client.post("/api/v1/query_range", data={"query": "".join(parts) or "m", "start": start, "end": end,
                                                     "step": step}))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(match=st.lists(st.one_of(st.lists(QUERY_PARTS, max_size=4).map("".join), st.text(max_size=12)), max_size=3),
       start=TIMES, limit=st.one_of(st.just(""), st.integers(-5, 5).map(str), st.text(max_size=3)))
def test_metadata_params(client: TestClient, match: list[str], start: str, limit: str) -> None:
    for path in ("/api/v1/series", "/api/v1/labels", "/api/v1/label/job/values", "/api/v1/catalog"):
        _check(client.get(path, params={"match[]": match, "start": start, "limit": limit}))
