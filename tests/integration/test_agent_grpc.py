"""Logs over OTLP/gRPC (``shipper.protocol: grpc``) from the real agent into the real server: idempotency
keys in the call metadata deduplicated by the server's gRPC path, an outage (UNAVAILABLE: backed off,
buffered, delivered once) and a SIGKILL, and mutual TLS with the files of ``clearsight certs``."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest

from clearsight.agent.buffer import batch_key
from clearsight.agent.grpc_transport import LOGS_METHOD
from clearsight.agent.logrecord import LogRecord
from clearsight.agent.otlp_logs import LogEncoder
from clearsight.cli.certs import init, issue
from tests.integration.test_agent_idempotency import SeqLog, seqs, tail_config, wait_for
from tests.integration.test_agent_logs import loki_lines, start_agent
from tests.integration.test_agent_mtls import cli, client, spawn, stop
from tests.support.peers import free_port, start_clearsight

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def test_server_deduplicates_grpc_calls_by_idempotency_key(tmp_path: Path) -> None:
    port, grpc_port = free_port(), free_port()
    server = start_clearsight(tmp_path / "s", port=port, args=["--otlp-grpc-listen", f"127.0.0.1:{grpc_port}"])
    try:
        now = time.time_ns()
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
            export = ch.unary_unary(LOGS_METHOD)
            for service, keyed in (("plain", False), ("keyed", True)):
                ((body, _),) = LogEncoder({"host.name": "h"}).encode(service, [LogRecord(now, "one")], now)
                payload = gzip.decompress(body)
                meta = (("x-idempotency-key", batch_key(body)),) if keyed else ()
                replays = []
                for _ in range(2):
                    _resp, call = export.with_call(payload, metadata=meta, timeout=30)
                    replays.append(dict(call.trailing_metadata() or ()).get("x-idempotent-replay"))
                assert replays == ([None, "true"] if keyed else [None, None])
            with pytest.raises(grpc.RpcError) as bad:
                export(payload, metadata=(("x-idempotency-key", "has space"),), timeout=30)
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert len(loki_lines(server.url, '{service_name="plain"}')) == 2
        assert len(loki_lines(server.url, '{service_name="keyed"}')) == 1
    finally:
        server.stop()


def test_agent_ships_logs_over_grpc_through_an_outage_and_a_sigkill(tmp_path: Path) -> None:
    port, grpc_port = free_port(), free_port()
    data = tmp_path / "data"
    server = start_clearsight(tmp_path / "s1", data_dir=data, port=port,
                              args=["--otlp-grpc-listen", f"127.0.0.1:{grpc_port}"])
    url = f"http://127.0.0.1:{port}"
    logs = SeqLog(tmp_path)
    write = logs.write
    spool = tmp_path / "spool"
    cfg = tail_config(tmp_path, logs, "viagrpc", f"url: '{url}', grpc_address: '127.0.0.1:{grpc_port}', timeout: 5s",
                      "protocol: grpc, ")
    agent_log = tmp_path / "agent.log"

    def count() -> int:
        return len(loki_lines(url, '{service_name="viagrpc"}'))

    write(100)
    agent = start_agent(cfg, agent_log)
    try:
        wait_for("100 lines", lambda: count() >= 100, [agent], agent_log)
        # the server's own counter says they came over gRPC
        assert 'clearsight_ingested_log_lines_total{protocol="otlp_logs_grpc"} 100.0' in httpx.get(url + "/metrics", timeout=30).text
        assert server.stop() == 0
        write(100)
        wait_for("the gRPC sender's outage", lambda: f"cannot ship to grpc://127.0.0.1:{grpc_port}" in agent_log.read_text(),
                 [agent], agent_log)
        wait_for("the outage's lines in the spool", lambda: bool(list((spool / "logs").glob("*.rw"))), [agent],
                 agent_log)
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait(30)
        write(100)
        server = start_clearsight(tmp_path / "s2", data_dir=data, port=port,
                                  args=["--otlp-grpc-listen", f"127.0.0.1:{grpc_port}"])
        agent = start_agent(cfg, agent_log)
        wait_for("300 lines", lambda: count() >= 300, [agent], agent_log)
        wait_for("an empty spool", lambda: not list((spool / "logs").glob("*.rw")), [agent], agent_log)
        time.sleep(1.0)  # a few more polls: anything sent twice would show up now
        got = loki_lines(url, '{service_name="viagrpc"}')
    finally:
        if agent.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
        rc = agent.wait(60)
        server.stop()
    # No gap and no duplicate, wherever the SIGKILL fell in a poll (docs/agent.md: staged spool
    # requests are committed with the file position in one atomic write).
    got_seqs = seqs(got)
    assert sorted(set(got_seqs)) == list(range(1, 301)), "a gap"
    assert len(got_seqs) == 300, f"{len(got_seqs) - 300} duplicates"
    assert rc == 0, agent_log.read_text()[-3000:]


def test_agent_grpc_mutual_tls(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    init(certs, ["127.0.0.1"])
    issue(certs, "good", org="acme")
    issue(certs, "revoked", org="acme")
    cli("certs", "revoke", "--agent", "revoked", "--dir", str(certs))
    port, grpc_port = free_port(), free_port()
    server_log = tmp_path / "server.log"
    (tmp_path / "server.yaml").write_text(
        "server:\n"
        f"  tls_cert_file: {certs / 'server.crt'}\n  tls_key_file: {certs / 'server.key'}\n"
        f"  tls_client_ca_file: {certs / 'ca.crt'}\n  tls_crl_file: {certs / 'crl.pem'}\n"
        "log: {format: text}\n")
    server = spawn([sys.executable, "-m", "clearsight", "server", "--config", str(tmp_path / "server.yaml"),
                    "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{port}",
                    "--otlp-http-listen", "", "--otlp-grpc-listen", f"127.0.0.1:{grpc_port}"], server_log)
    agents: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    url = f"https://127.0.0.1:{port}"
    try:
        for name in ("good", "revoked"):
            d = tmp_path / name
            (d / "logs").mkdir(parents=True)
            (d / "logs" / "app.log").write_text("".join(f"{name} seq={i}\n" for i in range(1, 51)))
            cfg = d / "agent.yaml"
            cfg.write_text(
                f"server: {{url: '{url}', grpc_address: '127.0.0.1:{grpc_port}', tls_ca_file: '{certs / 'ca.crt'}', "
                f"tls_cert_file: '{certs / 'agents' / f'{name}.crt'}', tls_key_file: '{certs / 'agents' / f'{name}.key'}'}}\n"
                f"metadata: {{instance: {name}}}\n"
                "shipper: {protocol: grpc, backoff_min: 100ms, backoff_max: 1s}\n"
                f"buffer: {{dir: '{d / 'spool'}'}}\nstate: {{dir: '{d / 'state'}'}}\n"
                "heartbeat: {enabled: false}\nself_metrics: {enabled: false}\n"
                "collectors: {host: {enabled: false}, containers: {enabled: false}, "
                f"files: [{{path: '{d / 'logs'}/*.log', service: mtls, interval: 200ms, read_from: beginning}}]}}\n"
                "log: {format: text}\n")
            agents[name] = (start_agent(cfg, d / "agent.log"), d / "agent.log")
        good, good_log = agents["good"]
        revoked, revoked_log = agents["revoked"]
        with client(certs / "ca.crt", certs / "agents" / "good.crt", certs / "agents" / "good.key") as acme:
            def lines() -> list[str]:
                now = time.time_ns()
                try:
                    r = acme.get(url + "/loki/api/v1/query_range",
                                 params={"query": '{service_name="mtls"}', "limit": "1000",
                                         "start": str(now - 3600 * 10**9), "end": str(now + 60 * 10**9)})
                except httpx.TransportError:  # the server is still starting
                    return []
                if r.status_code != 200:
                    return []
                return [line for s in r.json()["data"]["result"] for _, line in s["values"]]

            wait_for("the good agent's 50 lines", lambda: len(lines()) >= 50, [good, revoked], good_log)
            wait_for("the revoked agent refused", lambda: "cannot ship" in revoked_log.read_text(), [revoked],
                     revoked_log)
            wait_for("the server's line", lambda: "CN=revoked serial" in server_log.read_text(), [good], server_log)
            assert sorted(lines()) == sorted(f"good seq={i}" for i in range(1, 51))
        assert list((tmp_path / "revoked" / "spool" / "logs").glob("*.rw")), "the refused agent keeps its lines"
    finally:
        for p, _ in agents.values():
            stop(p)
        stop(server)


def test_grpc_idempotency_in_flight_and_failed_calls(tmp_path: Path) -> None:
    """In process, the interceptor on a grpcio server with the real store (SQLite state database): a
    second call with a key whose first call is still running is ABORTED; a failed call is not
    remembered (its retry runs); a finished one is replayed with its response bytes."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from clearsight.auth.grpc_idempotency import IdempotencyInterceptor
    from clearsight.auth.idempotency import IdempotencyStore
    from clearsight.auth.state import StateDb, engine_url

    db = StateDb(engine_url("", tmp_path))
    release = threading.Event()
    calls: list[bytes] = []

    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        calls.append(request)
        if request == b"slow":
            release.wait(30)
        if request == b"fail" and calls.count(b"fail") == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "not ready")
        return b"resp-" + request

    server = grpc.server(ThreadPoolExecutor(4), interceptors=[
        IdempotencyInterceptor(IdempotencyStore(db, 3_600_000), lambda metadata: "acme")])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.logs.v1.LogsService", {"Export": grpc.unary_unary_rpc_method_handler(handle)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch, ThreadPoolExecutor(1) as pool:
            export = ch.unary_unary(LOGS_METHOD)

            def call(body: bytes, key: str) -> tuple[bytes, str | None]:
                resp, c = export.with_call(body, metadata=(("x-idempotency-key", key),), timeout=30)
                return resp, dict(c.trailing_metadata() or ()).get("x-idempotent-replay")

            first = pool.submit(call, b"slow", "k1")
            deadline = time.monotonic() + 30  # a guard, not a timing assertion
            while b"slow" not in calls:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            with pytest.raises(grpc.RpcError) as busy:
                call(b"slow", "k1")
            assert busy.value.code() == grpc.StatusCode.ABORTED
            release.set()
            assert first.result(30) == (b"resp-slow", None)
            assert call(b"slow", "k1") == (b"resp-slow", "true")
            with pytest.raises(grpc.RpcError) as failed:
                call(b"fail", "k2")
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
            assert call(b"fail", "k2") == (b"resp-fail", None)  # the failure was not remembered
            assert call(b"fail", "k2") == (b"resp-fail", "true")
        assert calls == [b"slow", b"fail", b"fail"]
    finally:
        server.stop(None)
        db.close()
