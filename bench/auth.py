"""What authentication costs (issue 13): the auth middleware alone, and remote-write end to end.

1. The middleware in process: thread CPU per request of ``AuthMiddleware`` in front of an app that
   answers at once, for the anonymous loopback principal, a cached bearer API key and a cached key
   as the basic-auth password, against no middleware at all.
2. Remote-write on a real server (bench/remote_write.py's workload and senders): server CPU
   seconds per million samples with no credentials (anonymous from loopback) and with
   ``Authorization: Bearer <API key>`` and with HMAC-signed requests (``x-org-key``/``x-timestamp``/
   ``x-signature``, signed before the run), a fresh server per run, the order rotating, medians
   over ``--repeat`` runs of each.

Usage: ``.venv/bin/python bench/auth.py [--series 2000] [--scrapes 30] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import remote_write as rw
import workload

from clearsight.auth.directory import Directory
from clearsight.auth.keys import ApiKeys
from clearsight.auth.middleware import AuthMiddleware
from clearsight.auth.resolver import Authenticator
from clearsight.auth.sessions import Sessions
from clearsight.auth.signing import signature
from clearsight.auth.state import StateDb

KEY = "cs_bench_" + "k" * 40


async def _noop(scope: Any, receive: Any, send: Any) -> None:
    return None


def bench_middleware(n: int) -> dict[str, float]:
    """Microseconds of thread CPU per request (median of 5 rounds of ``n``)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    db = StateDb(f"sqlite:///{tmp / 'auth.db'}")
    directory = Directory(db)
    directory.create_org("default")
    keys = ApiKeys(directory)
    keys.create("default", "bench", "editor", value=KEY)
    auth = Authenticator(directory, keys, Sessions(directory, 3_600_000), default_org="default", anonymous=True,
                         anonymous_role="editor", trust_tenant_header=False, cache_ttl_s=3600)
    mw = AuthMiddleware(_noop, auth)
    base = [(b"host", b"127.0.0.1:9800"), (b"content-type", b"application/x-protobuf"),
            (b"content-encoding", b"snappy"), (b"x-prometheus-remote-write-version", b"0.1.0"),
            (b"user-agent", b"Prometheus/2.53.0"), (b"content-length", b"12345")]
    basic = base64.b64encode(f"prometheus:{KEY}".encode())
    cases = {
        "no middleware": (_noop, base),
        "anonymous (loopback)": (mw, base),
        "bearer key (cached)": (mw, [*base, (b"authorization", b"Bearer " + KEY.encode())]),
        "basic-auth key (cached)": (mw, [*base, (b"authorization", b"Basic " + basic)]),
    }

    async def run(app: Any, headers: list[tuple[bytes, bytes]]) -> float:
        scope = {"type": "http", "method": "POST", "path": "/api/v1/write", "headers": headers,
                 "client": ("127.0.0.1", 50000)}
        await app(dict(scope, state={}), None, None)  # warm: the key lookup is cached
        rounds = []
        for _ in range(5):
            t0 = time.thread_time()
            for _ in range(n):
                await app(dict(scope, state={}), None, None)
            rounds.append((time.thread_time() - t0) / n * 1e6)
        return statistics.median(rounds)

    out = {name: asyncio.run(run(app, h)) for name, (app, h) in cases.items()}
    db.close()
    return out


def _signing_secret(port: int) -> tuple[str, bytes]:
    """A signing secret of the default organisation, created through the admin API with the bootstrap key."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/v1/admin/signing_secrets", b'{"name":"bench"}',
                 {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    r = conn.getresponse()
    data = json.loads(r.read())["data"]
    conn.close()
    return data["key_id"], data["secret"].encode()


def _signed_headers(port: int, bodies: list[list[bytes]]) -> Any:
    """Per-body headers signed before the run (the client's HMAC is not the server's CPU)."""
    key_id, secret = _signing_secret(port)
    ts = str(int(time.time()))
    by_body = {id(b): {**rw.HEADERS, "x-org-key": key_id, "x-timestamp": ts, "x-signature": signature(secret, ts, b)}
               for mine in bodies for b in mine}
    return lambda body: by_body[id(body)]


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _sink(message: Any) -> None:
    return None


def bench_listener_stack(n: int) -> dict[str, float]:
    """Microseconds of thread CPU per request through every middleware of a listener (server._guarded:
    trace ids, security headers, admission, rate limits, signed ingestion, auth, query counting, CSRF,
    cross-org audit, body limits, signature, idempotency) in front of an app that answers at once,
    against that app alone; a GET without a body, as a small query is."""
    from clearsight.auth.system import open_auth
    from clearsight.config import load_config
    from clearsight.server import _guarded, make_usage

    tmp = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp)})
    auth = open_auth(cfg, env={"CLEARSIGHT_AUTH_BOOTSTRAP_API_KEY": KEY, "CLEARSIGHT_AUTH_ADMIN_PASSWORD": "x" * 16})
    usage = make_usage(cfg)
    usage.bind(auth.db)
    stack = _guarded(_answer, cfg, auth, usage=usage)
    base = [(b"host", b"127.0.0.1:9800"), (b"accept", b"application/json"), (b"user-agent", b"bench")]
    cases = {
        "app alone": (_answer, base),
        "stack, anonymous": (stack, base),
        "stack, bearer key": (stack, [*base, (b"authorization", b"Bearer " + KEY.encode())]),
    }

    async def run(app: Any, headers: list[tuple[bytes, bytes]]) -> float:
        scope = {"type": "http", "method": "GET", "path": "/api/v1/query", "headers": headers, "query_string": b"",
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 9800), "scheme": "http",
                 "http_version": "1.1", "root_path": ""}
        await app(dict(scope), None, _sink)
        rounds = []
        for _ in range(5):
            t0 = time.thread_time()
            for _ in range(n):
                await app(dict(scope), None, _sink)
            rounds.append((time.thread_time() - t0) / n * 1e6)
        return statistics.median(rounds)

    out = {name: asyncio.run(run(app, h)) for name, (app, h) in cases.items()}
    auth.close()
    return out


def bench_remote_write(series: int, scrapes: int, repeat: int) -> dict[str, float]:
    payloads = workload.build_payloads(series, scrapes, end_ms=int(time.time() * 1000), senders=4)
    results: dict[str, list[float]] = {"no credentials": [], "bearer key": [], "hmac signed": []}
    plain = dict(rw.HEADERS)
    os.environ["CLEARSIGHT_AUTH_BOOTSTRAP_API_KEY"] = KEY
    try:
        for i in range(repeat):
            modes = list(results)
            for mode in modes[i % len(modes):] + modes[:i % len(modes)]:  # none always goes first
                rw.HEADERS.clear()
                rw.HEADERS.update(plain)
                if mode == "bearer key":
                    rw.HEADERS["Authorization"] = f"Bearer {KEY}"
                server = rw.Clearsight()
                server.start()
                try:
                    assert server.proc is not None
                    pid = server.proc.pid
                    cpu0 = [0.0]

                    def at_start(cpu0: list[float] = cpu0, pid: int = pid) -> None:
                        cpu0[0] = rw.tree_cpu_seconds(pid)

                    signed = _signed_headers(server.port, payloads.bodies) if mode == "hmac signed" else None
                    res = rw.send_all(server.port, server.write_path, payloads.bodies, at_start, signed)
                    cpu = rw.tree_cpu_seconds(pid) - cpu0[0]
                    if res.rejected:
                        raise RuntimeError(f"{mode}: {res.rejected} requests rejected: {res.first_rejection}")
                    results[mode].append(cpu / payloads.total_samples * 1e6)
                finally:
                    server.cleanup()
    finally:
        rw.HEADERS.clear()
        rw.HEADERS.update(plain)
        os.environ.pop("CLEARSIGHT_AUTH_BOOTSTRAP_API_KEY", None)
    return {mode: statistics.median(v) for mode, v in results.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--scrapes", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--requests", type=int, default=20_000, help="middleware calls per round")
    ap.add_argument("--no-server", action="store_true", help="only the in-process middleware benchmark")
    args = ap.parse_args(argv)
    print("auth middleware, thread CPU per request (median of 5 rounds):")
    for name, us in bench_middleware(args.requests).items():
        print(f"  {name:26s} {us:6.2f} us")
    print("whole listener middleware stack, thread CPU per request (median of 5 rounds):")
    for name, us in bench_listener_stack(args.requests).items():
        print(f"  {name:26s} {us:6.2f} us")
    if args.no_server:
        return 0
    print(f"remote-write, server CPU per million samples ({args.series} series x {args.scrapes} scrapes, "
          f"median of {args.repeat} runs each, alternating order):")
    rws = bench_remote_write(args.series, args.scrapes, args.repeat)
    for name, v in rws.items():
        print(f"  {name:16s} {v:7.3f} CPU s")
    base = rws["no credentials"]
    print(f"  bearer key vs none: {100 * (rws['bearer key'] - base) / base:+.1f}%")
    print(f"  hmac signed vs none: {100 * (rws['hmac signed'] - base) / base:+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
