"""Log records -> OTLP ``ExportLogsServiceRequest`` protobuf, encoded by hand (the agent does not load
protobuf: it would double its memory). Sent to the server's ``/v1/logs``, gzip-compressed.

One request holds one source's records (``service.name`` = the source) under one resource carrying the
host metadata (``host.name``, ``host.id`` = machine id, ``host.arch``, ``os.type``, ``os.version`` =
kernel, ``os.description``, ``clearsight.agent.version`` and the configured tags) and
``service.instance.id`` = the instance name; the server turns ``service.name`` and
``service.instance.id`` into the stream labels ``service_name`` and ``service_instance_id``.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Mapping, Sequence

from clearsight.agent.logrecord import AttrValue, LogRecord
from clearsight.ingest.prompb_encode import len_field, varint

_FIXED64 = struct.Struct("<Q")

HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}


def _any_value(v: AttrValue) -> bytes:
    if isinstance(v, int):
        return b"\x18" + varint(v)  # int_value = 3
    return len_field(1, v.encode("utf-8", "replace"))  # string_value = 1


def _key_value(k: str, v: AttrValue) -> bytes:
    return len_field(1, k.encode()) + len_field(2, _any_value(v))


def encode_record(r: LogRecord, observed_ns: int) -> bytes:
    out = bytearray()
    if r.time_ns:
        out += b"\x09" + _FIXED64.pack(r.time_ns)  # time_unix_nano = 1 (fixed64)
    if r.severity_number:
        out += b"\x10" + varint(r.severity_number)  # severity_number = 2
    if r.severity_text:
        out += len_field(3, r.severity_text.encode())
    out += len_field(5, _any_value(r.body))  # body = 5
    for k, v in r.attributes:
        out += len_field(6, _key_value(k, v))  # attributes = 6
    out += b"\x59" + _FIXED64.pack(observed_ns)  # observed_time_unix_nano = 11 (fixed64)
    return bytes(out)


class LogEncoder:
    def __init__(self, resource: Mapping[str, str], max_records: int = 1000, compress_level: int = 1) -> None:
        self.resource = dict(resource)
        self.max_records = max_records
        self.compress_level = compress_level
        self._scope = len_field(1, b"clearsight-agent")  # InstrumentationScope.name

    def encode(self, service: str, records: Sequence[LogRecord], observed_ns: int) -> list[tuple[bytes, int]]:
        """Compressed requests ``(payload, number of records)``."""
        attrs = {**self.resource, "service.name": service}
        resource = b"".join(len_field(1, _key_value(k, v)) for k, v in attrs.items())
        out = []
        for start in range(0, len(records), self.max_records):
            chunk = records[start:start + self.max_records]
            scope_logs = len_field(1, self._scope) + b"".join(len_field(2, encode_record(r, observed_ns))
                                                              for r in chunk)
            resource_logs = len_field(1, resource) + len_field(2, scope_logs)
            body = len_field(1, resource_logs)
            out.append((gzip.compress(body, self.compress_level, mtime=0), len(chunk)))
        return out
