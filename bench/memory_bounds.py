"""Issue 8's memory findings, re-measured on a real server (``clearsight server`` on a free port in
a temporary directory, default settings unless said), its RSS sampled every 20 ms from /proc:

2. **Three heavy queries at once** (before: three in parallel passed 6 GB within 10 s):
   ``sum(max_over_time(rate(bench_requests_total[5m])[1h:1s]))`` over the 6 h of ``--series``
   counters at a 60 s step, sent by three clients at the same time. Printed: each answer, and the
   server's RSS before and at most.
4a. **Sixty unfinished 30 MB bodies** (before: +1.8 GB, held indefinitely): sixty connections each
   send a remote-write request's headers with ``Content-Length: 30000000`` and 29 MB of its body,
   then nothing. Printed: how many were answered 503 before their body was read, the RSS at most
   while they hang, and what they got when ``server.body_read_timeout`` (set to ``--body-timeout``
   for the bench) ran out.
4b. **Ten honest remote-writes that expand to 250 MB each, at once** (before: 1.4 GB at most):
   25,000 series with three 3,300-byte label values each, one sample per series, snappy
   compressed (about 12 MB on the wire), the same series in all ten at different timestamps, sent
   by ten clients at once; each re-sends after ``Retry-After`` when it gets 503, as Prometheus
   does, until it is acknowledged. Printed: the answers, the time until all ten were acknowledged,
   the server's decoded-bytes peak (``/metrics``) and its RSS at most. ``--decoded-cap 0`` runs it
   without the cap on decompressed bytes (``server.max_inflight_decoded_bytes``), for comparison.

    CLEARSIGHT_SHARED=/work/shared PYTHONPATH=src .venv/bin/python bench/memory_bounds.py [--parts 2,4a,4b]
"""

from __future__ import annotations

import argparse
import http.client
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from governance import WRITE_HEADERS, Server, load

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_write_request, snappy

HEAVY = "sum(max_over_time(rate(bench_requests_total[5m])[1h:1s]))"
MIB = 1 << 20
POINT_BYTES = 20  # peak RSS per point a query holds (docs/promql.md, "Memory: points held at once")
SLACK_MIB = 64  # allocator slack and the connections' buffers, beside the bodies themselves


class RssSampler(threading.Thread):
    """The process' VmRSS every ``interval`` s; ``peak`` in MiB."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0.0
        self.stop_ev = threading.Event()

    def rss(self) -> float:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def run(self) -> None:
        while not self.stop_ev.is_set():
            try:
                self.peak = max(self.peak, self.rss())
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(self.interval)

    def finish(self) -> float:
        self.stop_ev.set()
        self.join(5)
        return self.peak


def _at_once(fn: Callable[[int], None], n: int) -> None:
    """``fn(0)`` .. ``fn(n - 1)``, each on a thread of its own, started together; returns when all end."""
    threads = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _metric(server: Server, name: str) -> float:
    status, body = server.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise RuntimeError(f"{name} not in /metrics (status {status})")


def heavy_queries(args: argparse.Namespace) -> None:
    server = Server(0, None, None, [])
    try:
        end_ms = int(time.time() * 1000) // 60_000 * 60_000
        load(server, args.series, end_ms)
        params = {"query": HEAVY, "start": (end_ms - 6 * 3_600_000) / 1000, "end": end_ms / 1000, "step": "60",
                  "stats": "1"}
        path = "/api/v1/query_range?" + urllib.parse.urlencode(params)
        sampler = RssSampler(server.proc.pid)
        before = sampler.rss()
        answers: list[str] = [""] * 3

        def ask(i: int) -> None:
            t0 = time.monotonic()
            status, body = server.get(path)
            peak = ""
            if b'"peakSamples":' in body:
                peak = ", peakSamples " + body.split(b'"peakSamples":')[1].split(b",")[0].split(b"}")[0].decode()
            text = "" if status == 200 else ": " + body[:160].decode("utf-8", "replace")
            answers[i] = f"{status} after {time.monotonic() - t0:.1f} s{peak}{text}"

        sampler.start()
        _at_once(ask, 3)
        peak = sampler.finish()
        print(f"\n2. three heavy queries at once (before: three in parallel passed 6 GB within 10 s): {HEAVY} "
              f"over 6 h of {args.series} counters at 60 s, query.max_samples default")
        for a in answers:
            print(f"  {a}")
        slots = int(_metric(server, "clearsight_query_max_concurrency"))
        bound = slots * 50_000_000 * POINT_BYTES / MIB + SLACK_MIB
        print(f"  server RSS before {before:.0f} MiB, at most {peak:.0f} MiB (+{peak - before:.0f} MiB)")
        print(f"  within query.max_concurrency ({slots}) x query.max_samples (50M) x {POINT_BYTES} B (+{SLACK_MIB} MiB): "
              f"{'met' if peak - before <= bound else 'not met'}")
    finally:
        server.stop()


def unfinished_bodies(args: argparse.Namespace) -> None:
    server = Server(0, None, None, [f"CLEARSIGHT_SERVER_BODY_READ_TIMEOUT={args.body_timeout:g}s"])
    try:
        sampler = RssSampler(server.proc.pid)
        before = sampler.rss()
        sampler.start()
        length, sent = 30_000_000, 29_000_000
        chunk = b"\0" * (1 << 20)
        answers: list[str] = [""] * 60
        socks: list[socket.socket] = []
        head = (f"POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"
                f"Content-Length: {length}\r\n\r\n").encode()

        def hang(i: int) -> None:
            s = socket.create_connection(("127.0.0.1", server.port), timeout=args.body_timeout + 30)
            socks.append(s)
            t0 = time.monotonic()
            try:
                s.sendall(head)
                for _ in range(sent // len(chunk)):
                    s.sendall(chunk)
                data = s.recv(200)
            except OSError as e:  # refused before the body: the server closed while we sent
                data = b""
                try:
                    data = s.recv(200)
                except OSError:
                    pass
                if not data:
                    answers[i] = f"connection error {type(e).__name__}"
                    return
            status = data.split(b" ")[1].decode() if data.count(b" ") else repr(data)
            answers[i] = f"{status} after {time.monotonic() - t0:.1f} s"

        _at_once(hang, 60)
        peak = sampler.finish()
        for s in socks:
            s.close()
        counts: dict[str, int] = {}
        for a in answers:
            key = a.split(" after ")[0]
            counts[key] = counts.get(key, 0) + 1
        late = [float(a.split(" after ")[1].split(" s")[0]) for a in answers if " after " in a and a.startswith("408")]
        print(f"\n4a. sixty connections, each with 29 of its 30 MB body sent, then silent (before: +1.8 GB, held "
              f"indefinitely); server.body_read_timeout={args.body_timeout}s")
        print(f"  answers: {', '.join(f'{k} x{v}' for k, v in sorted(counts.items()))}"
              + (f"; the 408s after {min(late):.1f}-{max(late):.1f} s" if late else ""))
        bound = 256 + SLACK_MIB
        print(f"  server RSS before {before:.0f} MiB, at most {peak:.0f} MiB (+{peak - before:.0f} MiB; "
              f"server.max_inflight_body_bytes 256 MiB)")
        print(f"  bodies held within server.max_inflight_body_bytes (+{SLACK_MIB} MiB slack): "
              f"{'met' if peak - before <= bound else 'not met'}")
    finally:
        server.stop()


def expanding_writes(args: argparse.Namespace) -> None:
    env = [] if args.decoded_cap is None else [f"CLEARSIGHT_SERVER_MAX_INFLIGHT_DECODED_BYTES={args.decoded_cap}"]
    server = Server(0, None, None, env)
    try:
        t_build = time.monotonic()
        now_ms = int(time.time() * 1000) // 1000 * 1000
        pads = [("pad_a", "a" * 3300), ("pad_b", "b" * 3300), ("pad_c", "c" * 3300)]
        bodies = []
        raw_size = 0
        for r in range(args.writes):
            req = WriteRequest([TimeSeries([("__name__", "bench_wide"), ("instance", f"i{i:06d}"), *pads],
                                           [(now_ms - (10 - r) * 1000, float(i))]) for i in range(25_000)])
            raw = encode_write_request(req)
            raw_size = len(raw)
            bodies.append(snappy(raw))
        print(f"\n4b. {args.writes} remote-writes at once, each {raw_size / MIB:.0f} MiB decompressed ({len(bodies[0]) / MIB:.1f} "
              f"MiB snappy; built in {time.monotonic() - t_build:.0f} s), re-sent after Retry-After on 503 (before: "
              f"1.4 GB at most); server.max_inflight_decoded_bytes="
              f"{'default (256 MiB)' if args.decoded_cap is None else args.decoded_cap}")
        sampler = RssSampler(server.proc.pid)
        before = sampler.rss()
        answers: list[list[int]] = [[] for _ in range(args.writes)]
        done_at = [0.0] * args.writes
        t0 = time.monotonic()

        def send(i: int) -> None:
            while True:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
                try:
                    conn.request("POST", "/api/v1/write", body=bodies[i], headers=WRITE_HEADERS)
                    r = conn.getresponse()
                    r.read()
                    status, retry = r.status, r.getheader("Retry-After")
                finally:
                    conn.close()
                answers[i].append(status)
                if status not in (429, 503):
                    done_at[i] = time.monotonic() - t0
                    return
                time.sleep(float(retry or 1))

        sampler.start()
        _at_once(send, args.writes)
        peak = sampler.finish()
        flat = [s for a in answers for s in a]
        counts = {s: flat.count(s) for s in sorted(set(flat))}
        decoded_peak = _metric(server, "clearsight_decoded_request_bytes_peak")
        _status, body = server.get("/api/v1/query?query=count(count_over_time(bench_wide[1h]))")
        print(f"  answers: {', '.join(f'{k} x{v}' for k, v in counts.items())}; all acknowledged after "
              f"{max(done_at):.1f} s; series stored: {body.decode()[-40:].strip()}")
        print(f"  decompressed bytes held at most {decoded_peak / MIB:.0f} MiB; server RSS before {before:.0f} MiB, "
              f"at most {peak:.0f} MiB (+{peak - before:.0f} MiB)")
        if args.decoded_cap is None:
            print(f"  decompressed bytes within server.max_inflight_decoded_bytes (256 MiB): "
                  f"{'met' if decoded_peak <= 256 * MIB else 'not met'}")
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="2,4a,4b")
    p.add_argument("--series", type=int, default=900,
                   help="counters loaded for part 2, 6 h at 15 s (900: each query holds ~49M of the 50M points allowed)")
    p.add_argument("--body-timeout", type=int, default=10, help="server.body_read_timeout for part 4a (s)")
    p.add_argument("--writes", type=int, default=10, help="remote-writes sent at once in part 4b")
    p.add_argument("--decoded-cap", type=int, default=None, help="server.max_inflight_decoded_bytes for 4b")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    if "2" in parts:
        heavy_queries(args)
    if "4a" in parts:
        unfinished_bodies(args)
    if "4b" in parts:
        expanding_writes(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
