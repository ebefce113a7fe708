"""The Python cost of a small query, in process and hot: ``FastLane.serve`` in a loop on a built
server stack over bench/small_queries.py's data (2,360 series x 1 h at 15 s), thread CPU per call.

A real server loads the data (loaded once into ``--data``, reused while it is recent enough for
inline queries: 15 minutes), stops; the stack is then built in this process on that directory
(server.build, the app, the guards, the fast lane), the query is run once through the usual path
(so its cost is known and it is answered inline after), and ``FastLane.serve`` is called
``--calls`` times. No socket, no event loop: hot caches, the lane's own Python only. Compare
the default build (every module interpreted) with one whose request-path modules are compiled
(``CLEARSIGHT_COMPILED_PYTHON=1 make setup``, docs/architecture.md "Compiled code"), or Python
builds (docs/architecture.md "Which Python"); ``--range S`` times a range query over the last S
seconds instead; ``--flush-mb N`` writes one byte per cache line of an N MiB buffer before every
call (its own cost measured alone and subtracted), so each call runs with cold caches, as in a
server asked in turn with other processes:

    CLEARSIGHT_SHARED=/work/shared PYTHONPATH=src .venv/bin/python bench/lane_inprocess.py --query up
    CLEARSIGHT_SHARED=/work/shared PYTHONPATH=src .venv/bin/python bench/lane_inprocess.py --query node_load1 --range 3000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RECENT_S = 15 * 60 - 60  # prometheus_query.INLINE_RECENT_MS, with a minute to spare


def _load(data: Path) -> int:
    """The data directory's newest sample time (ms), loading it first if missing or too old."""
    stamp = data / "last_ms"
    if stamp.exists() and time.time() - int(stamp.read_text()) / 1000 < RECENT_S:
        return int(stamp.read_text())
    from query import wait_idle
    from small_queries import build_data, push_all
    from tests.support import peers

    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    payloads = build_data(2360, 1, 1)
    proc = peers.start_clearsight(data / "workdir", data_dir=data / "store")
    try:
        push_all({"clearsight": proc}, payloads)
        wait_idle({"clearsight": proc})
    finally:
        proc.stop()
    stamp.write_text(str(payloads.last_ms))
    return payloads.last_ms


class _Transport:
    """What the protocol writes to, kept; enough of asyncio's transport for uvicorn."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def writelines(self, data: Any) -> None:
        self.out.append(b"".join(data))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 9090), "peername": ("127.0.0.1", 45678)}.get(name, default)


class Stack(NamedTuple):
    """A server stack built in this process on a loaded data directory (``build_stack``)."""

    built: Any  # server.Built: close its stores when done (``built.close_stores()``)
    guarded: Any  # the main listener's guard chain (server._guarded)
    lane: Any  # its FastLane
    path: str  # the query's route
    qs: bytes  # its query string


def build_stack(data: Path, last_ms: int, query: str, range_s: float = 0.0, step: float = 15.0) -> Stack:
    """The stack of a server on ``data`` (server.build, the app, the guards, the fast lane), the
    query (instant at ``last_ms``, or a range over the last ``range_s`` seconds) run once through the
    usual path (so its cost is known and the lane answers it inline after)."""
    from starlette.testclient import TestClient

    from clearsight import server
    from clearsight.api.app import create_app
    from clearsight.api.fast_lane import FastLane
    from clearsight.config import load_config

    cfg = load_config(overrides={"storage.data_dir": str(data / "store")})
    built = server.build(cfg)
    app = create_app(built.services)
    guarded = server._guarded(app, cfg, built.auth, built.signing, server.rate_buckets(cfg), built.usage,
                              built.writes)
    lane = FastLane.of(guarded)
    assert lane is not None
    if range_s > 0:
        path = "/api/v1/query_range"
        qs = urllib.parse.urlencode({"query": query, "start": f"{last_ms / 1000 - range_s:.3f}",
                                     "end": f"{last_ms / 1000:.3f}", "step": f"{step:g}"}).encode()
    else:
        path = "/api/v1/query"
        qs = urllib.parse.urlencode({"query": query, "time": f"{last_ms / 1000:.3f}"}).encode()
    with TestClient(guarded, base_url="http://127.0.0.1:9090", client=("127.0.0.1", 45678)) as tc:
        assert tc.get(path + "?" + qs.decode()).status_code == 200  # the usual path: its cost is known
    return Stack(built, guarded, lane, path, qs)


def listener_protocol(stack: Stack) -> tuple[Any, _Transport, bytes]:
    """The listener's HTTP protocol (``header_deadline_protocol``, as server.py makes it) connected to
    a ``_Transport``, and the bytes of the stack's query as a GET from Grafana (one read)."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from clearsight.api.http_limits import header_deadline_protocol

    config = uvicorn.Config(stack.guarded, lifespan="off", log_config=None, access_log=False, server_header=False)
    config.load()
    protocol = header_deadline_protocol(10.0, stack.lane, None)(config, ServerState(), {}, asyncio.new_event_loop())
    transport = _Transport()
    protocol.connection_made(transport)
    request = (f"GET {stack.path}?{stack.qs.decode()} HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n"
               "User-Agent: Grafana/10.4.1\r\nAccept: application/json, text/plain, */*\r\n"
               "Accept-Encoding: gzip, deflate\r\nX-Grafana-Org-Id: 1\r\nX-Dashboard-Uid: rYdddlPWk\r\n"
               "X-Panel-Id: 20\r\n\r\n").encode()
    return protocol, transport, request


def _through_protocol(stack: Stack, calls: int) -> float:
    """Thread CPU per request of the listener's protocol given a GET's bytes as one read, as
    Grafana sends one (answered by the lane)."""
    protocol, transport, request = listener_protocol(stack)
    for _ in range(2000):
        protocol.data_received(request)
    transport.out.clear()
    t0 = time.thread_time()
    for _ in range(calls):
        protocol.data_received(request)
    per_request = (time.thread_time() - t0) / calls
    assert len(transport.out) == calls and all(out.startswith(b"HTTP/1.1 200") for out in transport.out)
    protocol.loop.close()
    return per_request


def _per_call(call: Callable[[], Any], calls: int, flush_mb: int) -> float:
    """Thread CPU seconds per ``call()``; with ``flush_mb``, each call after a pass over a buffer of
    that size (one byte per 64-byte line), the passes' own CPU measured alone and subtracted."""
    if flush_mb <= 0:
        t0 = time.thread_time()
        for _ in range(calls):
            call()
        return (time.thread_time() - t0) / calls
    import numpy as np

    lines = np.zeros(flush_mb << 20, dtype=np.uint8)[::64]
    t0 = time.thread_time()
    for _ in range(calls):
        lines += 1
    flushing = time.thread_time() - t0
    t0 = time.thread_time()
    for _ in range(calls):
        lines += 1
        call()
    return (time.thread_time() - t0 - flushing) / calls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--query", default="up")
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--range", type=float, default=0.0, dest="range_s",
                   help="a range query over this many seconds up to the data's end instead of an instant query")
    p.add_argument("--step", type=float, default=15.0, help="the range query's step (s)")
    p.add_argument("--flush-mb", type=int, default=0,
                   help="evict the CPU caches before every call by touching this many MiB (0: hot)")
    p.add_argument("--data", type=Path, default=Path("/tmp/clearsight-lane-inprocess"))
    p.add_argument("--through-protocol", action="store_true",
                   help="also: the request's bytes given to the listener's HTTP protocol (server.py's), "
                        "which parses them and answers in the fast lane, on a transport that keeps the answer")
    args, unknown = p.parse_known_args(argv)
    if unknown:
        print(f"bench/lane_inprocess.py: ignoring {' '.join(unknown)}")
    last_ms = _load(args.data)
    import clearsight.api.fast_lane as fast_lane_module

    stack = build_stack(args.data, last_ms, args.query, args.range_s, args.step)
    lane, path, qs = stack.lane, stack.path, stack.qs
    try:
        def scope() -> dict[str, Any]:
            return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                    "server": ("127.0.0.1", 9090), "client": ("127.0.0.1", 45678), "scheme": "http",
                    "root_path": "", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": qs,
                    "headers": [(b"host", b"127.0.0.1:9090"), (b"user-agent", b"bench/1"), (b"accept", b"*/*")],
                    "state": {}}

        found = lane.route_of(path)
        assert found is not None
        served = lane.serve(scope(), found)
        assert served is not None and served.answer is not None and served.answer.status == 200, served
        for _ in range(2000):
            lane.serve(scope(), found)
        per_call = _per_call(lambda: lane.serve(scope(), found), args.calls, args.flush_mb)
        compiled = not str(fast_lane_module.__file__).endswith(".py")
        print(f"{args.query!r}: FastLane.serve {per_call * 1e6:.1f} us of thread CPU per call "
              f"({'compiled' if compiled else 'pure'} Python, {args.calls} calls"
              f"{f', caches flushed ({args.flush_mb} MiB) before each' if args.flush_mb else ''})")
        if args.through_protocol:
            per_request = _through_protocol(stack, args.calls)
            print(f"{args.query!r}: the listener's protocol (httptools, uvicorn's callbacks, the lane), request "
                  f"bytes in to answer bytes out: {per_request * 1e6:.1f} us of thread CPU per request")
    finally:
        stack.built.close_stores()
    return 0


if __name__ == "__main__":
    sys.exit(main())
