"""A test-side encoder of remote-write 2.0 (``io.prometheus.write.v2.Request``), written from the
public specification's schema (independent of the decoder in ingest/remote_write2.py)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from clearsight.ingest.prompb_encode import len_field, snappy, varint

CONTENT_TYPE = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
HEADERS = {"Content-Type": CONTENT_TYPE, "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "2.0.0"}
TYPES = {"unknown": 0, "counter": 1, "gauge": 2, "histogram": 3, "gaugehistogram": 4, "summary": 5,
         "info": 6, "stateset": 7}


@dataclass
class Series2:
    labels: list[tuple[str, str]]
    samples: list[tuple[int, float]] = field(default_factory=list)
    histograms: int = 0  # this many (minimal) native histogram samples
    exemplars: list[tuple[list[tuple[str, str]], float, int]] = field(default_factory=list)
    metric_type: str | None = None
    help: str = ""
    unit: str = ""
    created_timestamp: int = 0


class _Symbols:
    def __init__(self) -> None:
        self.table: list[str] = [""]
        self.index: dict[str, int] = {"": 0}

    def ref(self, s: str) -> int:
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.table)
            self.table.append(s)
        return i

    def refs(self, labels: list[tuple[str, str]]) -> bytes:
        packed = b"".join(varint(self.ref(n)) + varint(self.ref(v)) for n, v in labels)
        return len_field(1, packed) if packed else b""


def _signed(v: int) -> int:
    return v & 0xFFFFFFFFFFFFFFFF


def encode_request(series: list[Series2]) -> bytes:
    syms = _Symbols()
    body = b""
    for s in series:
        ts = syms.refs(s.labels)
        for t, v in s.samples:
            ts += len_field(2, b"\x09" + struct.pack("<d", v) + b"\x10" + varint(_signed(t)))
        for i in range(s.histograms):
            # count_int=1, sum=3, schema=4 (sint32 0), timestamp=15
            ts += len_field(3, b"\x08" + varint(i + 1) + b"\x19" + struct.pack("<d", 1.5) + b"\x20\x00"
                            + b"\x78" + varint(1000 + i))
        for lbls, v, t in s.exemplars:
            ts += len_field(4, syms.refs(lbls) + b"\x11" + struct.pack("<d", v) + b"\x18" + varint(_signed(t)))
        if s.metric_type is not None:
            meta = b"\x08" + varint(TYPES[s.metric_type])
            if s.help:
                meta += b"\x18" + varint(syms.ref(s.help))
            if s.unit:
                meta += b"\x20" + varint(syms.ref(s.unit))
            ts += len_field(5, meta)
        if s.created_timestamp:
            ts += b"\x30" + varint(_signed(s.created_timestamp))
        body += len_field(5, ts)
    return b"".join(len_field(4, x.encode()) for x in syms.table) + body


def encode_snappy_v2(series: list[Series2]) -> bytes:
    return snappy(encode_request(series))
