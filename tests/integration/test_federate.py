"""``GET /federate`` in process (real store): Prometheus' text format, latest sample within the lookback,
stale series left out, bad selectors a plain-text 400; the output parses back with our exposition parser."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.api.federate import render
from clearsight.config import load_config
from clearsight.ingest.prom_text import parse_prometheus_text
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import build

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            yield c
    finally:
        built.store.close()


def test_federate_text_format(client: TestClient) -> None:
    now = int(time.time() * 1000)
    series = [
        TimeSeries([("__name__", "fed_b"), ("job", "x"), ("instance", "h:1")], [(now - 20_000, 1.0), (now - 5000, 1234567.0)]),
        TimeSeries([("__name__", "fed_a"), ("path", 'a"b\\c\nd')], [(now - 1000, 0.5)]),
        TimeSeries([("__name__", "fed_a"), ("path", "/")], [(now - 1000, float("inf"))]),
        TimeSeries([("__name__", "fed_gone")], [(now - 3000, 1.0), (now - 2000, STALE)]),
        TimeSeries([("__name__", "fed_old")], [(now - 600_000, 1.0)]),  # outside the 5m lookback
    ]
    assert client.post("/api/v1/write", content=encode_snappy(WriteRequest(series)), headers=RW).status_code == 204
    r = client.get("/federate", params=[("match[]", '{__name__=~"fed_.*"}'), ("match[]", "fed_b")])
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert r.text == (
        "# TYPE fed_a untyped\n"
        f'fed_a{{path="/"}} +Inf {now - 1000}\n'
        f'fed_a{{path="a\\"b\\\\c\\nd"}} 0.5 {now - 1000}\n'
        "# TYPE fed_b untyped\n"
        f'fed_b{{instance="h:1",job="x"}} 1.234567e+06 {now - 5000}\n'
    )
    parsed = parse_prometheus_text(r.content, r.headers["content-type"], 0)
    assert sorted(v for _, v, _ in parsed.samples) == [0.5, 1234567.0, float("inf")]


@pytest.mark.parametrize(("query", "message"), [
    ([], "no match[] parameter provided"),
    ([("match[]", "up{")], 'invalid parameter "match[]"'),
    ([("match[]", '{a=~"("}')], 'invalid parameter "match[]"'),
])
def test_federate_bad_params(client: TestClient, query: list[tuple[str, str]], message: str) -> None:
    r = client.get("/federate", params=query)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/plain")
    assert message in r.text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=30), min_size=1, max_size=3))
def test_fuzzed_selectors_are_200_or_400(client: TestClient, selectors: list[str]) -> None:
    r = client.get("/federate", params=[("match[]", s) for s in selectors])
    assert r.status_code in (200, 400), r.text


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(
    st.tuples(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True),
              st.text(st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1,
                      max_size=8)),
    st.tuples(st.integers(0, 2**53), st.floats(allow_nan=False)), max_size=6))
def test_render_parses_back(items: dict[tuple[str, str], tuple[int, float]]) -> None:
    latest = {(("__name__", name), ("l", val)): tv for (name, val), tv in items.items()}
    parsed = parse_prometheus_text(render(latest).encode(), "text/plain; version=0.0.4", 0)
    assert {labels: (ts, v) for labels, v, ts in parsed.samples} == latest
