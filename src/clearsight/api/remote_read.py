"""``POST /api/v1/read``: Prometheus remote-read, so a Prometheus (``remote_read``) or Thanos can query
Clearsight as remote storage. Reads go through the store's public ``select``, per tenant.

Request: a snappy-compressed ``prometheus.ReadRequest`` (the schema below, written from Prometheus'
remote-read protocol description; only the fields read are listed)::

    message ReadRequest  { repeated Query queries = 1; repeated ResponseType accepted_response_types = 2; }
    message Query        { int64 start_timestamp_ms = 1; int64 end_timestamp_ms = 2;
                           repeated LabelMatcher matchers = 3; ReadHints hints = 4; }  // hints ignored
    message LabelMatcher { Type type = 1; string name = 2; string value = 3; }  // EQ NEQ RE NRE
    enum ResponseType    { SAMPLES = 0; STREAMED_XOR_CHUNKS = 1; }

Response, by the first supported entry of ``accepted_response_types`` (SAMPLES when empty):

- SAMPLES: a snappy-compressed ``ReadResponse { repeated QueryResult results = 1; }``, one result per
  query, each ``QueryResult { repeated TimeSeries timeseries = 1; }`` with labels and float samples.
- STREAMED_XOR_CHUNKS: ``application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse``,
  one frame per series: ``uvarint(len) + CRC32-Castagnoli(data) (big-endian) + data`` where data is
  ``ChunkedReadResponse { repeated ChunkedSeries chunked_series = 1; int64 query_index = 2; }``,
  ``ChunkedSeries { repeated Label labels = 1; repeated Chunk chunks = 2; }`` and
  ``Chunk { int64 min_time_ms = 1; int64 max_time_ms = 2; Encoding type = 3 (XOR = 1); bytes data = 4; }``
  with at most 120 samples per XOR chunk (``model.xorchunk``).

Errors: 400 (text) for corrupt snappy, a malformed protobuf (naming the field and byte offset), an
invalid regex, an unknown matcher type or a query without matchers, or when every accepted response
type is unknown; 413 over ``limits.max_body_bytes`` / ``max_decompressed_bytes``; 422 when the read
would return more than ``query.max_samples`` samples (nothing is sent). Stale markers are returned
as stored. Native histogram samples are returned in SAMPLES responses (``TimeSeries.histograms``,
the remote-write ``Histogram`` message: integer counts when every count is a whole number, float
counts otherwise); STREAMED_XOR_CHUNKS responses carry float samples only (Prometheus' histogram
chunk encodings are not implemented): a series' histogram samples are left out of them, and a
series with nothing else is not sent.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Iterator

import cramjam
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from clearsight.api.common import TenantOf, read_body, run_blocking
from clearsight.ingest import prom_histogram
from clearsight.ingest.prompb_encode import len_field, varint
from clearsight.ingest.remote_write import decompress
from clearsight.ingest.remote_write2 import WireError, expect_wire_type, iter_fields, read_varint
from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher, MatchType
from clearsight.model.samples import SeriesData
from clearsight.model.xorchunk import MAX_SAMPLES_PER_CHUNK, encode_xor
from clearsight.pipeline.errors import IngestError
from clearsight.pipeline.limits import WriteLimits
from clearsight.store.interface import MetricsStore, ReadLimits, SampleLimitExceeded, read_limits

SAMPLES, STREAMED_XOR_CHUNKS = 0, 1
STREAMED_CONTENT_TYPE = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
_MATCH_TYPES = {0: MatchType.EQ, 1: MatchType.NEQ, 2: MatchType.RE, 3: MatchType.NRE}


class ReadRequestError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _text(buf: bytes, s: int, e: int, where: str) -> str:
    try:
        return buf[s:e].decode("utf-8")
    except UnicodeDecodeError:
        raise WireError(f"invalid UTF-8 in {where}", s) from None


def _matcher(buf: bytes, s: int, e: int) -> Matcher:
    mtype, name, value = 0, "", ""
    for f, wt, tag, s2, e2 in iter_fields(buf, s, e, "LabelMatcher"):
        if f == 1:
            expect_wire_type(wt, 0, "LabelMatcher.type", tag)
            mtype = read_varint(buf, s2, e2, "LabelMatcher.type")[0]
        elif f == 2:
            expect_wire_type(wt, 2, "LabelMatcher.name", tag)
            name = _text(buf, s2, e2, "LabelMatcher.name")
        elif f == 3:
            expect_wire_type(wt, 2, "LabelMatcher.value", tag)
            value = _text(buf, s2, e2, "LabelMatcher.value")
    if mtype not in _MATCH_TYPES:
        raise WireError(f"unknown LabelMatcher.type {mtype} (expected 0-3: EQ, NEQ, RE, NRE)", s)
    try:
        return Matcher.of(_MATCH_TYPES[mtype], name, value)
    except Exception as e:  # an invalid regex
        raise ReadRequestError(f"invalid matcher {name}{_MATCH_TYPES[mtype].value}{value!r}: {e}") from None


def decode_read_request(data: bytes) -> tuple[list[tuple[int, int, list[Matcher]]], list[int]]:
    """(queries as (start_ms, end_ms, matchers), accepted response types) of an uncompressed ReadRequest."""
    queries: list[tuple[int, int, list[Matcher]]] = []
    accepted: list[int] = []
    try:
        for f, wt, tag, s, e in iter_fields(data, 0, len(data), "ReadRequest"):
            if f == 1:
                expect_wire_type(wt, 2, "ReadRequest.queries", tag)
                start = end = 0
                matchers: list[Matcher] = []
                for f2, wt2, tag2, s2, e2 in iter_fields(data, s, e, "Query"):
                    if f2 in (1, 2):
                        expect_wire_type(wt2, 0, "Query.start_timestamp_ms" if f2 == 1 else "Query.end_timestamp_ms",
                                         tag2)
                        v = _signed64(read_varint(data, s2, e2, "Query")[0])
                        if f2 == 1:
                            start = v
                        else:
                            end = v
                    elif f2 == 3:
                        expect_wire_type(wt2, 2, "Query.matchers", tag2)
                        matchers.append(_matcher(data, s2, e2))
                if not matchers:
                    raise ReadRequestError(f"query {len(queries)} has no matchers")
                queries.append((start, end, matchers))
            elif f == 2:
                if wt == 0:
                    accepted.append(read_varint(data, s, e, "ReadRequest.accepted_response_types")[0])
                elif wt == 2:
                    p = s
                    while p < e:
                        v, p = read_varint(data, p, e, "ReadRequest.accepted_response_types")
                        accepted.append(v)
                else:
                    expect_wire_type(wt, 2, "ReadRequest.accepted_response_types", tag)
    except WireError as e:
        raise ReadRequestError(f"invalid ReadRequest protobuf: {e.what} at byte {e.off}") from None
    return queries, accepted


def choose_response_type(accepted: list[int]) -> int:
    if not accepted:
        return SAMPLES
    for t in accepted:
        if t in (SAMPLES, STREAMED_XOR_CHUNKS):
            return t
    raise ReadRequestError(f"none of the accepted response types {accepted} is supported "
                           "(0 SAMPLES, 1 STREAMED_XOR_CHUNKS)")


def _labels_pb(labels: Labels) -> bytes:
    return b"".join(len_field(1, len_field(1, n.encode()) + len_field(2, v.encode())) for n, v in labels)


def _i64(field: int, v: int) -> bytes:
    return bytes([field << 3]) + varint(v & 0xFFFFFFFFFFFFFFFF)


def encode_read_response(results: list[SeriesData]) -> bytes:
    """An uncompressed ReadResponse."""
    out = bytearray()
    pack = struct.Struct("<d").pack
    for data in results:
        qr = bytearray()
        for i in range(len(data)):
            labels, ts, vals = data.series(i)
            hists = _histograms_of(data, i)
            body = bytearray(_labels_pb(labels))
            for j, (t, v) in enumerate(zip(ts.tolist(), vals.tolist(), strict=True)):
                h = hists[j] if hists is not None else None
                if h is None:
                    body += len_field(2, b"\x09" + pack(v) + _i64(2, t))
            if hists is not None:
                for t, h in zip(ts.tolist(), hists, strict=True):
                    if h is not None:
                        body += len_field(4, prom_histogram.encode(h, t))
            qr += len_field(1, bytes(body))
        out += len_field(1, bytes(qr))
    return bytes(out)


def _histograms_of(data: SeriesData, i: int) -> list[FloatHistogram | None] | None:
    """Series ``i``'s histogram column (None when the select has no native histograms)."""
    if data.histograms is None:
        return None
    hs: list[FloatHistogram | None] = data.histograms[int(data.offsets[i]) : int(data.offsets[i + 1])].tolist()
    return hs if any(h is not None for h in hs) else None


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as the streamed frames carry."""
    c = 0xFFFFFFFF
    t = _CRC32C
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def chunked_frames(results: list[SeriesData]) -> Iterator[bytes]:
    """One framed ChunkedReadResponse per series, query by query."""
    for qi, data in enumerate(results):
        for i in range(len(data)):
            labels, ts, vals = data.series(i)
            hists = _histograms_of(data, i)
            if hists is not None:  # float samples only (no histogram chunk encoding)
                floats = [j for j, h in enumerate(hists) if h is None]
                if not floats:
                    continue
                ts, vals = ts[floats], vals[floats]
            tl, vl = ts.tolist(), vals.tolist()
            series = bytearray(_labels_pb(labels))
            for a in range(0, len(tl), MAX_SAMPLES_PER_CHUNK):
                t_part, v_part = tl[a:a + MAX_SAMPLES_PER_CHUNK], vl[a:a + MAX_SAMPLES_PER_CHUNK]
                chunk = _i64(1, t_part[0]) + _i64(2, t_part[-1]) + b"\x18\x01" + len_field(4, encode_xor(t_part, v_part))
                series += len_field(2, chunk)
            msg = len_field(1, bytes(series)) + (_i64(2, qi) if qi else b"")
            yield varint(len(msg)) + struct.pack(">I", crc32c(msg)) + msg


def make_remote_read_handler(store: MetricsStore, tenant_of: TenantOf, limits: WriteLimits,
                             max_samples: int) -> Callable[[Request], Awaitable[Response]]:
    """``limits`` bounds the request body; ``max_samples`` (``query.max_samples``) the whole read."""

    async def remote_read(request: Request) -> Response:
        try:
            tenant = tenant_of(request)
            body = await read_body(request, limits.max_body_bytes)
            if (request.headers.get("content-encoding") or "snappy").strip().lower() not in ("", "snappy"):
                raise ReadRequestError("remote-read requests are snappy-compressed (Content-Encoding: snappy)", 415)
            data = bytes(decompress(body, limits))
            queries, accepted = decode_read_request(data)
            rtype = choose_response_type(accepted)

            def read_all() -> list[SeriesData]:
                out = []
                left = max_samples
                for start, end, matchers in queries:
                    with read_limits(ReadLimits(max_samples=left)):
                        res = store.select(tenant, matchers, start, end)
                    left -= int(res.timestamps.shape[0])
                    out.append(res)
                return out

            results: list[SeriesData] = await run_blocking(read_all)
        except ReadRequestError as e:
            return Response(e.message + "\n", status_code=e.status, media_type="text/plain; charset=utf-8")
        except IngestError as e:  # snappy / size errors of the shared decompressor
            return Response(e.message + "\n", status_code=e.status, media_type="text/plain; charset=utf-8")
        except SampleLimitExceeded as e:
            return Response(f"remote read: {e} (query.max_samples)\n", status_code=422,
                            media_type="text/plain; charset=utf-8")
        if rtype == SAMPLES:
            payload = await run_blocking(lambda: bytes(cramjam.snappy.compress_raw(encode_read_response(results))))
            return Response(payload, media_type="application/x-protobuf", headers={"Content-Encoding": "snappy"})
        return StreamingResponse(chunked_frames(results), media_type=STREAMED_CONTENT_TYPE)

    return remote_read
