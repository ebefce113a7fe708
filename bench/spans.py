"""Span ingestion cost in process: OTLP protobuf decode plus span store commit, then a trace read.

``python bench/spans.py [--requests 50] [--spans 500]``. One process, no server: each request (one
resource with three attributes, spans with three attributes each, 10 spans per trace) is decoded
(``ingest/otlp_traces.py``) and appended to an ``EmbeddedSpanStore`` in a fresh ``logs.duckdb``
(one DuckDB thread), waiting for each commit. Prints CPU per span (``time.process_time``: the whole
process, the writer thread included), decode CPU per span, bytes of ``logs.duckdb`` per span after a
checkpoint, and the time of one trace read. Not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from clearsight.ingest import otlp_traces
from clearsight.store.embedded.logs_store import EmbeddedLogStore
from clearsight.store.embedded.span_store import EmbeddedSpanStore


def request(k: int, n: int) -> bytes:
    r = trace_service_pb2.ExportTraceServiceRequest()
    rs = r.resource_spans.add()
    for key, v in (("service.name", "checkout"), ("host.name", "web-1"), ("k8s.pod.name", "pod-7")):
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = key, v
    ss = rs.scope_spans.add()
    ss.scope.name = "lib"
    t0 = time.time_ns()
    for i in range(n):
        sp = ss.spans.add(name=f"GET /item/{i % 20}", kind=2, start_time_unix_nano=t0 + i,
                          end_time_unix_nano=t0 + i + 5000)
        sp.trace_id = ((k + 1) * 100_000 + i // 10).to_bytes(16, "big")
        sp.span_id = (i + 1).to_bytes(8, "big")
        for key, text in (("http.method", "GET"), ("http.route", "/item/{id}")):
            a = sp.attributes.add()
            a.key, a.value.string_value = key, text
        a = sp.attributes.add()
        a.key, a.value.int_value = "http.status_code", 200
    return r.SerializeToString()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--spans", type=int, default=500)
    args = ap.parse_args()
    bodies = [request(k, args.spans) for k in range(args.requests)]
    n = args.requests * args.spans
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        logs = EmbeddedLogStore(d, duckdb_threads=1)
        spans = EmbeddedSpanStore(logs)
        decode = 0.0
        c0, w0 = time.process_time(), time.perf_counter()
        for body in bodies:
            t = time.process_time()
            batch = otlp_traces.decode_traces(body, "application/x-protobuf")
            decode += time.process_time() - t
            spans.append("bench", batch).result()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        spans.close()
        logs.close()
        size = sum(p.stat().st_size for p in d.iterdir())
        with EmbeddedLogStore(d, duckdb_threads=1) as again:
            t = time.perf_counter()
            got = EmbeddedSpanStore(again).trace("bench", (100_000 + 7).to_bytes(16, "big"))
            read_ms = (time.perf_counter() - t) * 1000
    print(f"{n} spans in {args.requests} requests: {cpu / n * 1e6:.1f} us CPU per span "
          f"(decode {decode / n * 1e6:.1f}), {n / wall:.0f} spans/s wall")
    print(f"logs.duckdb after close: {size} bytes, {size / n:.1f} B/span")
    print(f"trace read: {len(got)} spans in {read_ms:.1f} ms")


if __name__ == "__main__":
    main()
