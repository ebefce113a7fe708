"""Decoder throughput: lines and MB per CPU-second per log/event decoder on realistic ~200-byte lines.

``python bench/log_decode.py [--lines 100000] [--repeat 3]``. Pure CPU, one thread, no server: the
best of ``--repeat`` runs per decoder. Lines mix 6 services, 4 levels, JSON and logfmt bodies
(~200 bytes each); each decoder gets the same lines in its own wire format, split into requests of
1,000 lines (Loki, OTLP, _bulk) or fed as one TCP stream (syslog). Events and Falco use 200-400 byte
objects. Rates are per CPU-second of this process (``time.process_time``), so other load on a shared
machine distorts them less than wall-clock rates would. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import cramjam
import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from clearsight.ingest import es_bulk, events, falco, loki_push, otlp_logs, syslog
from clearsight.ingest.log_common import LogLimits

SERVICES = ["checkout", "payments", "search", "auth", "inventory", "gateway"]
LEVELS = ["info", "info", "info", "debug", "warn", "error"]
PATHS = ["/api/v1/orders", "/api/v1/cart/items", "/healthz", "/api/v2/search?q=shoes", "/login"]
BATCH = 1000
T0 = 1_714_557_600_000_000_000


def make_lines(n: int, seed: int = 1) -> list[tuple[int, str, str, str]]:
    """(timestamp ns, service, level, body) with ~200-byte bodies, half JSON, half logfmt."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        svc = rnd.choice(SERVICES)
        lvl = rnd.choice(LEVELS)
        trace = f"{rnd.getrandbits(128):032x}"
        path = rnd.choice(PATHS)
        status = rnd.choice([200, 200, 200, 201, 404, 500])
        dur = rnd.random() * 900
        if i % 2:
            body = orjson.dumps({"ts": "2024-05-01T10:00:00.123Z", "level": lvl, "service": svc,
                                 "msg": "request completed", "method": "GET", "path": path, "status": status,
                                 "duration_ms": round(dur, 3), "trace_id": trace}).decode()
        else:
            body = (f'ts=2024-05-01T10:00:00.123Z level={lvl} service={svc} msg="request completed" '
                    f"method=POST path={path} status={status} duration_ms={dur:.3f} trace_id={trace} "
                    f"user_id={rnd.randrange(10**6)}")
        out.append((T0 + i * 1_000_000, svc, lvl, body))
    return out


def chunks(lines: list[tuple[int, str, str, str]]) -> list[list[tuple[int, str, str, str]]]:
    return [lines[i:i + BATCH] for i in range(0, len(lines), BATCH)]


def loki_json(lines: list[tuple[int, str, str, str]]) -> list[bytes]:
    bodies = []
    for c in chunks(lines):
        streams: dict[tuple[str, str], list[list[str]]] = {}
        for t, svc, lvl, body in c:
            streams.setdefault((svc, lvl), []).append([str(t), body])
        bodies.append(orjson.dumps({"streams": [{"stream": {"service_name": s, "level": lv}, "values": v}
                                                for (s, lv), v in streams.items()]}))
    return bodies


def loki_pb(lines: list[tuple[int, str, str, str]]) -> list[bytes]:
    bodies = []
    cls = loki_push.push_request_class()
    for c in chunks(lines):
        req = cls()
        streams: dict[tuple[str, str], object] = {}
        for t, svc, lvl, body in c:
            s = streams.get((svc, lvl))
            if s is None:
                s = streams[(svc, lvl)] = req.streams.add()  # type: ignore[attr-defined]
                s.labels = f'{{service_name="{svc}", level="{lvl}"}}'  # type: ignore[attr-defined]
            e = s.entries.add()  # type: ignore[attr-defined]
            e.timestamp.seconds, e.timestamp.nanos = divmod(t, 10**9)
            e.line = body.encode()
        bodies.append(bytes(cramjam.snappy.compress_raw(req.SerializeToString())))
    return bodies


def otlp_pb(lines: list[tuple[int, str, str, str]]) -> list[bytes]:
    bodies = []
    for c in chunks(lines):
        req = ExportLogsServiceRequest()
        by_svc: dict[str, object] = {}
        for t, svc, lvl, body in c:
            sl = by_svc.get(svc)
            if sl is None:
                rl = req.resource_logs.add()
                kv = rl.resource.attributes.add()
                kv.key, kv.value.string_value = "service.name", svc
                sl = by_svc[svc] = rl.scope_logs.add()
            r = sl.log_records.add()  # type: ignore[attr-defined]
            r.time_unix_nano = t
            r.severity_text = lvl
            r.body.string_value = body
            a = r.attributes.add()
            a.key, a.value.string_value = "http.route", "/api/v1/orders"
        bodies.append(req.SerializeToString())
    return bodies


def otlp_json(lines: list[tuple[int, str, str, str]]) -> list[bytes]:
    out = []
    for body in otlp_pb(lines):
        req = ExportLogsServiceRequest()
        req.ParseFromString(body)
        out.append(json_format.MessageToJson(req, use_integers_for_enums=True, indent=None).encode())
    return out


def es_ndjson(lines: list[tuple[int, str, str, str]]) -> list[bytes]:
    bodies = []
    action = orjson.dumps({"create": {"_index": "logs-app"}})
    for c in chunks(lines):
        parts = []
        for _t, svc, lvl, body in c:
            parts.append(action)
            parts.append(orjson.dumps({"@timestamp": "2024-05-01T10:00:00.123Z", "message": body,
                                       "log": {"level": lvl}, "service": {"name": svc}, "host": {"name": "web-1"}}))
        bodies.append(b"\n".join(parts) + b"\n")
    return bodies


def syslog_stream(lines: list[tuple[int, str, str, str]]) -> list[bytes]:
    msgs = []
    for _t, svc, lvl, body in lines:
        pri = 16 * 8 + {"debug": 7, "info": 6, "warn": 4, "error": 3}[lvl]
        msg = f"<{pri}>1 2024-05-01T10:00:00.123456Z web-1 {svc} 1234 - - {body}".encode()
        msgs.append(b"%d " % len(msg) + msg)
    stream = b"".join(msgs)
    return [stream[i:i + 65536] for i in range(0, len(stream), 65536)]


def events_json(lines: list[tuple[int, str, str, str]]) -> list[bytes]:
    bodies = []
    for c in chunks(lines):
        bodies.append(orjson.dumps([{"message": body[:120], "level": lvl.upper(), "type": "deploy",
                                     "origin": svc, "tags": ["prod"], "data": {"build": 42},
                                     "timestamp": "2024-05-01T10:00:00.123456789Z"}
                                    for _t, svc, lvl, body in c]))
    return bodies


def falco_ndjson(lines: list[tuple[int, str, str, str]]) -> list[bytes]:
    sample = orjson.loads(Path("/work/shared/conformance/falco/01_write_below_binary_dir.json").read_bytes())
    return [b"\n".join(orjson.dumps(sample) for _ in c) for c in chunks(lines)]


def run(name: str, bodies: list[bytes], decode: Callable[[bytes], int], n: int, repeat: int) -> None:
    size = sum(len(b) for b in bodies)
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        got = sum(decode(b) for b in bodies)
        best = min(best, time.process_time() - t)
    assert got == n, (name, got, n)
    print(f"{name:28s} {n / best:>12,.0f} lines/CPU-s {size / best / 1e6:>8.1f} MB/CPU-s (wire)  "
          f"{size / n:>5.0f} B/line", flush=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args, _ = ap.parse_known_args(argv)
    n, rep = args.lines, args.repeat
    lines = make_lines(n)
    print(f"{n:,} lines, mean body {sum(len(b[3]) for b in lines) / n:.0f} bytes, best of {rep}")
    lim = LogLimits()

    def syslog_decode(chunk: bytes) -> int:
        return len(syslog.decode_messages(framer.feed(chunk), now_ns=T0, limits=lim))

    run("loki push, JSON", loki_json(lines), lambda b: len(loki_push.decode_push(b, "application/json")), n, rep)
    run("loki push, snappy protobuf", loki_pb(lines), lambda b: len(loki_push.decode_push(b, None)), n, rep)
    run("OTLP logs, protobuf", otlp_pb(lines),
        lambda b: len(otlp_logs.decode_logs(b, "application/x-protobuf", now_ns=T0)), n, rep)
    run("OTLP logs, JSON", otlp_json(lines),
        lambda b: len(otlp_logs.decode_logs(b, "application/json", now_ns=T0)), n, rep)
    run("Elasticsearch _bulk", es_ndjson(lines), lambda b: len(es_bulk.decode_bulk(b, now_ns=T0).batch), n, rep)
    best_sys = float("inf")
    bodies = syslog_stream(lines)
    for _ in range(rep):
        framer = syslog.SyslogFramer()
        t = time.process_time()
        got = sum(syslog_decode(b) for b in bodies)
        best_sys = min(best_sys, time.process_time() - t)
    assert got == n
    size = sum(len(b) for b in bodies)
    print(f"{'syslog RFC 5424, TCP framed':28s} {n / best_sys:>12,.0f} lines/CPU-s {size / best_sys / 1e6:>8.1f} MB/CPU-s "
          f"(wire)  {size / n:>5.0f} B/line", flush=True)
    run("events JSON", events_json(lines), lambda b: len(events.decode_events(b, now_ns=T0)), n, rep)
    run("Falco NDJSON", falco_ndjson(lines), lambda b: len(falco.decode_falco(b)), n, rep)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
