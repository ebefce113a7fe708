"""Native histogram series on the read paths that cannot carry them all: ``/api/v1/read`` answers
them in SAMPLES responses (``TimeSeries.histograms``, decoded back exactly) and leaves them out of
STREAMED_XOR_CHUNKS responses (float samples only); ``/federate`` and ``/api/v1/latest`` leave out
series whose latest sample is a native histogram. Nothing crashes, float series are unaffected."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cramjam
import pytest
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.ingest import prom_histogram
from clearsight.ingest.prompb_encode import encode_labels, encode_sample, len_field, snappy
from clearsight.model.histogram import FloatHistogram
from clearsight.server import build
from tests.integration.test_remote_read import decode_streamed, fields, labels_of, matcher, read_request

RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            yield c
    finally:
        built.store.close()


def _hist(k: int) -> FloatHistogram:
    return FloatHistogram.build(
        schema=2, count=5.0 + k, sum=1.5 * k, zero_count=1, positive={-1: 1.0, 3: 2.0 + k}, negative={0: 1.0}
    )


def _write(client: TestClient, t0: int) -> None:
    hist_only = encode_labels([("__name__", "nh_only"), ("job", "a")]) + b"".join(
        len_field(4, prom_histogram.encode(_hist(k), t0 + k * 1000)) for k in range(5)
    )
    mixed = (
        encode_labels([("__name__", "nh_mixed"), ("job", "a")])
        + b"".join(len_field(2, encode_sample(t0 + k * 1000, float(k))) for k in range(3))
        + b"".join(len_field(4, prom_histogram.encode(_hist(k), t0 + k * 1000)) for k in range(3, 5))
    )
    floats = encode_labels([("__name__", "fl_only"), ("job", "a")]) + b"".join(
        len_field(2, encode_sample(t0 + k * 1000, 2.0 * k)) for k in range(5)
    )
    body = snappy(b"".join(len_field(1, s) for s in (hist_only, mixed, floats)))
    r = client.post("/api/v1/write", content=body, headers=RW)
    assert r.status_code == 204, r.text


def test_remote_read_federate_and_latest_with_native_histograms(client: TestClient) -> None:
    t0 = (int(time.time()) - 60) * 1000
    _write(client, t0)
    q = [(t0 - 1, t0 + 10_000, [matcher(2, "__name__", "nh_.*|fl_.*")])]
    # SAMPLES: floats as samples, histograms as TimeSeries.histograms, decoded back exactly.
    r = client.post(
        "/api/v1/read", content=read_request(q), headers={"Content-Type": "application/x-protobuf"}
    )
    assert r.status_code == 200, r.text
    got: dict[str, tuple[list[float], list[tuple[int, FloatHistogram]]]] = {}
    for _, qr in fields(bytes(cramjam.snappy.decompress_raw(r.content))):
        for _, ts in fields(qr):  # type: ignore[arg-type]
            name, floats, hists = "", [], []
            for f, v in fields(ts):  # type: ignore[arg-type]
                if f == 1 and labels_of(v)[0] == "__name__":  # type: ignore[arg-type]
                    name = labels_of(v)[1]  # type: ignore[arg-type]
                elif f == 2:
                    floats.append(dict(fields(v)))  # type: ignore[arg-type]
                elif f == 4:
                    t, h = prom_histogram.decode(v, 0, len(v))  # type: ignore[arg-type]
                    assert h is not None
                    hists.append((t - t0, h))
            got[name] = ([float(len(floats))], hists)
    assert sorted(got) == ["fl_only", "nh_mixed", "nh_only"]
    assert got["fl_only"][0] == [5.0] and got["fl_only"][1] == []
    assert got["nh_mixed"][0] == [3.0] and [t for t, _ in got["nh_mixed"][1]] == [3000, 4000]
    assert [t for t, _ in got["nh_only"][1]] == [0, 1000, 2000, 3000, 4000]
    assert all(h.equals(_hist(t // 1000)) for t, h in got["nh_only"][1] + got["nh_mixed"][1])
    # STREAMED_XOR_CHUNKS: float samples only; the histogram-only series is not sent.
    r = client.post(
        "/api/v1/read", content=read_request(q, [1]), headers={"Content-Type": "application/x-protobuf"}
    )
    assert r.status_code == 200, r.text
    [streamed] = decode_streamed(r.content)
    by_name = {dict(k)["__name__"]: v for k, v in streamed.items()}
    assert sorted(by_name) == ["fl_only", "nh_mixed"]
    assert [t - t0 for t, _ in by_name["nh_mixed"]] == [0, 1000, 2000]
    # /federate and /api/v1/latest: only series whose latest sample is a float.
    r = client.get("/federate", params={"match[]": '{__name__=~"nh_.*|fl_.*"}'})
    assert r.status_code == 200, r.text
    assert "fl_only{" in r.text and "nh_" not in r.text
    r = client.get("/api/v1/latest", params={"match[]": '{__name__=~"nh_.*|fl_.*"}'})
    assert r.status_code == 200, r.text
    assert [x["metric"]["__name__"] for x in r.json()["data"]] == ["fl_only"]
    # PromQL over the same data.
    res = client.get(
        "/api/v1/query", params={"query": "histogram_count(nh_only)", "time": (t0 + 4500) / 1000}
    )
    assert [float(x["value"][1]) for x in res.json()["data"]["result"]] == [9.0]


def test_an_invalid_histogram_refuses_the_whole_request(client: TestClient) -> None:
    t0 = (int(time.time()) - 60) * 1000
    good = encode_labels([("__name__", "nh_good")]) + len_field(4, prom_histogram.encode(_hist(1), t0))
    floats = encode_labels([("__name__", "fl_good")]) + len_field(2, encode_sample(t0, 1.0))
    bad_h = FloatHistogram.build(schema=9, count=1, positive={1: 1.0})  # no such schema
    bad = encode_labels([("__name__", "nh_bad")]) + len_field(4, prom_histogram.encode(bad_h, t0))
    r = client.post(
        "/api/v1/write", content=snappy(b"".join(len_field(1, s) for s in (good, floats, bad))), headers=RW
    )
    assert r.status_code == 400
    assert 'invalid native histogram in series {__name__="nh_bad"}: invalid schema 9' in r.text
    res = client.get("/api/v1/query", params={"query": '{__name__=~"nh_.*|fl_.*"}', "time": t0 / 1000})
    assert res.json()["data"]["result"] == []  # nothing of the request was written


def test_remote_write_2_histograms_are_stored_and_counted_in_the_headers(client: TestClient) -> None:
    t0 = (int(time.time()) - 60) * 1000
    syms = b"".join(len_field(4, s) for s in (b"", b"__name__", b"rw2_hist", b"job", b"b"))
    ts = len_field(1, b"\x01\x02\x03\x04") + b"".join(
        len_field(3, prom_histogram.encode(_hist(k), t0 + k * 1000)) for k in range(3)
    )
    ts += len_field(2, encode_sample(t0 + 5000, 1.0))  # and one float sample
    r = client.post(
        "/api/v1/write",
        content=snappy(syms + len_field(5, ts)),
        headers={
            "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "Content-Encoding": "snappy",
        },
    )
    assert r.status_code == 204, r.text
    assert r.headers["X-Prometheus-Remote-Write-Histograms-Written"] == "3"
    assert r.headers["X-Prometheus-Remote-Write-Samples-Written"] == "1"
    res = client.get(
        "/api/v1/query_range",
        params={"query": "rw2_hist", "start": t0 / 1000, "end": (t0 + 5000) / 1000, "step": 1},
    )
    [series] = res.json()["data"]["result"]
    # steps 3 and 4 still see the last histogram (lookback), step 5 the float sample
    assert [h[1]["count"] for h in series["histograms"]] == ["5", "6", "7", "7", "7"]
    assert [v[1] for v in series["values"]] == ["1"]
