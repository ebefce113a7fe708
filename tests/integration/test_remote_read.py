"""``POST /api/v1/read`` in process (real store in a temp dir): sampled and streamed-chunk answers decode
(with the test's own protobuf walk) to what was written; malformed requests are precise 400s."""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import cramjam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.api.remote_read import crc32c
from clearsight.config import load_config
from clearsight.ingest.otlp_common import read_varint as uvarint
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy, len_field, varint
from clearsight.model.xorchunk import decode_xor
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


def matcher(t: int, name: str, value: str) -> bytes:
    return (b"\x08" + varint(t) if t else b"") + len_field(2, name.encode()) + len_field(3, value.encode())


def read_request(queries: list[tuple[int, int, list[bytes]]], accepted: list[int] = ()) -> bytes:  # type: ignore[assignment]
    body = b""
    for start, end, ms in queries:
        q = b"\x08" + varint(start & (2**64 - 1)) + b"\x10" + varint(end & (2**64 - 1))
        q += b"".join(len_field(3, m) for m in ms)
        body += len_field(1, q)
    if accepted:
        body += len_field(2, b"".join(varint(a) for a in accepted))
    return bytes(cramjam.snappy.compress_raw(body))


def fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = uvarint(buf, pos)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = uvarint(buf, pos)
            yield f, v
        elif wt == 1:
            yield f, buf[pos:pos + 8]
            pos += 8
        elif wt == 2:
            n, pos = uvarint(buf, pos)
            yield f, buf[pos:pos + n]
            pos += n
        else:
            raise AssertionError(f"wire type {wt}")


def labels_of(raw: bytes) -> tuple[str, str]:
    d = dict(fields(raw))
    return bytes(d.get(1, b"")).decode(), bytes(d.get(2, b"")).decode()  # type: ignore[arg-type]


Decoded = list[dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]]


def decode_sampled(payload: bytes) -> Decoded:
    out: Decoded = []
    for _, qr in fields(bytes(cramjam.snappy.decompress_raw(payload))):
        res: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
        for _, ts in fields(qr):  # type: ignore[arg-type]
            labels, samples = [], []
            for f, v in fields(ts):  # type: ignore[arg-type]
                if f == 1:
                    labels.append(labels_of(v))  # type: ignore[arg-type]
                elif f == 2:
                    d = dict(fields(v))  # type: ignore[arg-type]
                    t = int(d.get(2, 0))  # type: ignore[arg-type]
                    samples.append((t - 2**64 if t >= 2**63 else t, struct.unpack("<d", d[1])[0]))  # type: ignore[arg-type]
            res[tuple(labels)] = samples
        out.append(res)
    return out


def decode_streamed(payload: bytes) -> Decoded:
    out: Decoded = []
    pos = 0
    while pos < len(payload):
        n, pos = uvarint(payload, pos)
        crc = struct.unpack(">I", payload[pos:pos + 4])[0]
        msg = payload[pos + 4:pos + 4 + n]
        pos += 4 + n
        assert crc32c(msg) == crc
        d = list(fields(msg))
        qi = next((int(v) for f, v in d if f == 2), 0)  # type: ignore[call-overload]
        while len(out) <= qi:
            out.append({})
        for f, cs in d:
            if f != 1:
                continue
            labels, samples = [], []
            for f2, v in fields(cs):  # type: ignore[arg-type]
                if f2 == 1:
                    labels.append(labels_of(v))  # type: ignore[arg-type]
                else:
                    chunk = dict(fields(v))  # type: ignore[arg-type]
                    assert chunk[3] == 1  # XOR
                    part = decode_xor(chunk[4])  # type: ignore[arg-type]
                    assert (chunk[1], chunk[2]) == (part[0][0], part[-1][0])
                    assert len(part) <= 120
                    samples += part
            out[qi][tuple(labels)] = samples
    return out


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


def _write(client: TestClient) -> int:
    t0 = int(time.time() * 1000) - 7_200_000
    series = [TimeSeries([("__name__", "rr_metric"), ("job", j)],
                         [(t0 + i * 15_000, float(i) * (1.5 if j == "a" else -0.25)) for i in range(300)])
              for j in ("a", "b")]
    series[0].samples.append((t0 + 300 * 15_000, STALE))
    series.append(TimeSeries([("__name__", "other")], [(t0, 1.0)]))
    assert client.post("/api/v1/write", content=encode_snappy(WriteRequest(series)), headers=RW).status_code == 204
    return t0


@pytest.mark.parametrize("accepted", [[], [0], [1], [7, 1, 0]])
def test_read_sampled_and_streamed(client: TestClient, accepted: list[int]) -> None:
    t0 = _write(client)
    req = read_request([(t0, t0 + 10_000_000, [matcher(0, "__name__", "rr_metric")]),
                        (t0, t0 + 30_000, [matcher(2, "__name__", "rr_.*"), matcher(1, "job", "a")])], accepted)
    r = client.post("/api/v1/read", content=req, headers={"Content-Type": "application/x-protobuf",
                                                          "Content-Encoding": "snappy"})
    assert r.status_code == 200, r.text
    if accepted and accepted[0] != 0:
        assert r.headers["content-type"].startswith("application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
        got = decode_streamed(r.content)
    else:
        assert r.headers["content-encoding"] == "snappy"
        got = decode_sampled(r.content)
    a = (("__name__", "rr_metric"), ("job", "a"))
    b = (("__name__", "rr_metric"), ("job", "b"))
    assert set(got[0]) == {a, b}
    assert got[0][b] == [(t0 + i * 15_000, -0.25 * i) for i in range(300)]
    assert got[0][a][:300] == [(t0 + i * 15_000, 1.5 * i) for i in range(300)]
    assert math.isnan(got[0][a][300][1])
    assert struct.pack("<d", got[0][a][300][1]) == struct.pack("<d", STALE)
    assert got[1] == {b: [(t0, 0.0), (t0 + 15_000, -0.25), (t0 + 30_000, -0.5)]}


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"garbage", 400, "snappy"),
    (bytes(cramjam.snappy.compress_raw(b"\x0a\x05\x1a\x03\x08\x09\x12")), 400, "invalid ReadRequest protobuf"),
    (bytes(cramjam.snappy.compress_raw(len_field(1, b"\x08\x01"))), 400, "query 0 has no matchers"),
    (bytes(cramjam.snappy.compress_raw(len_field(1, len_field(3, b"\x08\x09\x12\x01a")))), 400,
     "unknown LabelMatcher.type 9"),
    (read_request([(0, 1, [matcher(2, "a", "(")])]), 400, "invalid matcher"),
    (read_request([(0, 1, [matcher(0, "a", "b")])], [5, 6]), 400, "none of the accepted response types"),
    (bytes(cramjam.snappy.compress_raw(b"\x0b")), 400, "group wire type"),
])
def test_bad_requests(client: TestClient, body: bytes, status: int, message: str) -> None:
    r = client.post("/api/v1/read", content=body, headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == status
    assert message in r.text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=80))
def test_fuzzed_requests_get_200_or_400(client: TestClient, raw: bytes) -> None:
    r = client.post("/api/v1/read", content=bytes(cramjam.snappy.compress_raw(raw)),
                    headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.text.strip()
