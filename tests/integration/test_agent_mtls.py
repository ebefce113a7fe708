"""Mutual TLS end to end, with real TLS on 127.0.0.1: ``clearsight certs init|issue|revoke`` make the
CA and certificates, the server requires client certificates, the real agent ships with its own.
A good certificate is accepted and its O files the data under that organisation; an expired one, a
revoked one and one from another CA are refused with a clear line in the server's log, the agents say
so in theirs and keep buffering."""

from __future__ import annotations

import datetime
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from clearsight.cli.certs import init, issue
from tests.support.peers import free_port

pytestmark = [pytest.mark.peer, pytest.mark.slow]


def cli(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "clearsight", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def client(ca: Path, crt: Path, key: Path) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(crt), str(key))
    return httpx.Client(verify=ctx, timeout=30)


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def stop(p: subprocess.Popen[bytes]) -> int:
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
    try:
        return p.wait(60)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        return p.wait(10)


def until(what: str, check: object, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout  # a guard against hanging, not a timing assertion
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()[-4000:]}"
        time.sleep(0.3)


def test_mutual_tls(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    out = cli("certs", "init", "--dir", str(certs), "--host", "127.0.0.1")
    assert "wrote" in out and (certs / "ca.key").stat().st_mode & 0o077 == 0
    cli("certs", "issue", "--agent", "good", "--org", "acme", "--dir", str(certs))
    cli("certs", "issue", "--agent", "reader", "--org", "acme", "--dir", str(certs))
    cli("certs", "issue", "--agent", "other", "--org", "globex", "--dir", str(certs))
    cli("certs", "issue", "--agent", "revoked", "--org", "acme", "--dir", str(certs))
    issue(certs, "expired", org="acme", days=1,
          not_before=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10))
    init(tmp_path / "foreign", ["127.0.0.1"])
    issue(tmp_path / "foreign", "foreign", org="acme")

    port = free_port()
    url = f"https://127.0.0.1:{port}"
    server_log = tmp_path / "server.log"
    (tmp_path / "server.yaml").write_text(
        "server:\n"
        f"  tls_cert_file: {certs / 'server.crt'}\n  tls_key_file: {certs / 'server.key'}\n"
        f"  tls_client_ca_file: {certs / 'ca.crt'}\n  tls_crl_file: {certs / 'crl.pem'}\n"
        "log: {format: text}\n")
    server = spawn([sys.executable, "-m", "clearsight", "server", "--config", str(tmp_path / "server.yaml"),
                    "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{port}",
                    "--otlp-http-listen", "", "--otlp-grpc-listen", ""], server_log)
    agents: dict[str, subprocess.Popen[bytes]] = {}
    acme = client(certs / "ca.crt", certs / "agents" / "reader.crt", certs / "agents" / "reader.key")
    globex = client(certs / "ca.crt", certs / "agents" / "other.crt", certs / "agents" / "other.key")
    try:
        def ready() -> bool:
            assert server.poll() is None, server_log.read_text()
            try:
                return acme.get(url + "/ready").status_code == 200
            except httpx.HTTPError:
                return False

        until("the server did not become ready over mTLS", ready, server_log)
        # plain HTTP and TLS without a client certificate are refused
        with pytest.raises(httpx.HTTPError):
            httpx.get(url.replace("https", "http") + "/ready", timeout=5)
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/ready", verify=ssl.create_default_context(cafile=str(certs / "ca.crt")), timeout=5)

        cli("certs", "revoke", "--agent", "revoked", "--dir", str(certs))  # applies without a restart
        for name, d in (("good", certs), ("expired", certs), ("revoked", certs), ("foreign", tmp_path / "foreign")):
            cfg = tmp_path / f"{name}.yaml"
            host = "{interval: 1s, top_processes: 0}" if name == "good" else "{enabled: false}"
            cfg.write_text(
                f"server: {{url: '{url}', tls_ca_file: '{certs / 'ca.crt'}', "
                f"tls_cert_file: '{d / 'agents' / (name + '.crt')}', tls_key_file: '{d / 'agents' / (name + '.key')}'}}\n"
                f"metadata: {{instance: mtls-{name}}}\n"
                "shipper: {protocol: http, backoff_min: 100ms, backoff_max: 500ms}\n"
                f"state: {{dir: '{tmp_path / ('state-' + name)}'}}\n"
                f"collectors: {{host: {host}, containers: {{enabled: false}}}}\n"
                "heartbeat: {enabled: false}\nself_metrics: {interval: 1s}\nlog: {format: text}\n")
            agents[name] = spawn([sys.executable, "-m", "clearsight.agent", "--config", str(cfg)],
                                 tmp_path / f"{name}.log")

        def series(c: httpx.Client, expr: str) -> list[object]:
            r = c.get(url + "/api/v1/query", params={"query": expr})
            r.raise_for_status()
            result: list[object] = r.json()["data"]["result"]
            return result

        until("no data from the good agent", lambda: series(acme, 'node_boot_time_seconds{instance="mtls-good"}'),
              tmp_path / "good.log")
        # O=acme filed it under acme: another organisation's certificate does not see it
        assert series(globex, 'node_boot_time_seconds{instance="mtls-good"}') == []
        until("the good agent's self-metrics", lambda: series(
            acme, 'clearsight_agent_samples_sent_total{instance="mtls-good"} > 0'), tmp_path / "good.log")

        def refused(fragment: str) -> bool:
            return fragment in server_log.read_text()

        until("expired not logged", lambda: refused("client certificate refused from 127.0.0.1:"), server_log)
        until("expired", lambda: refused("certificate has expired"), server_log)
        until("revoked", lambda: refused("CN=revoked serial"), server_log)
        until("foreign", lambda: refused("unable to get local issuer certificate"), server_log)
        for name in ("expired", "revoked", "foreign"):
            log = tmp_path / f"{name}.log"
            until(f"{name} agent did not log", lambda log=log: "cannot ship to https://" in log.read_text(), log)
            status = tmp_path / f"state-{name}" / "status.json"
            until(f"{name} agent does not buffer", lambda status=status: status.exists() and any(
                m["name"] == "clearsight_agent_buffered_requests" and m["value"] > 0
                for m in json.loads(status.read_text())["metrics"]), log)
            assert agents[name].poll() is None
        assert series(acme, 'node_boot_time_seconds{instance=~"mtls-(expired|revoked|foreign)"}') == []
        text = cli("agent", "status", "--state-dir", str(tmp_path / "state-expired"))
        assert "(running)" in text and "retries" in text
    finally:
        acme.close()
        globex.close()
        codes = {name: stop(p) for name, p in agents.items()}
        stop(server)
    assert codes == dict.fromkeys(agents, 0), codes


def test_otlp_grpc_mutual_tls(tmp_path: Path) -> None:
    import grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

    certs = tmp_path / "certs"
    init(certs, ["127.0.0.1"])
    for name in ("good", "revoked"):
        issue(certs, name, org="acme")
    issue(certs, "other", org="globex")
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

    def request() -> metrics_service_pb2.ExportMetricsServiceRequest:
        req = metrics_service_pb2.ExportMetricsServiceRequest()
        m = req.resource_metrics.add().scope_metrics.add().metrics.add()
        m.name = "grpc_mtls_probe"
        dp = m.gauge.data_points.add()
        dp.as_double = 1.0
        dp.time_unix_nano = time.time_ns()
        return req

    def export(name: str | None) -> grpc.StatusCode:
        ca = (certs / "ca.crt").read_bytes()
        if name is None:
            creds = grpc.ssl_channel_credentials(ca)
        else:
            creds = grpc.ssl_channel_credentials(ca, (certs / "agents" / f"{name}.key").read_bytes(),
                                                 (certs / "agents" / f"{name}.crt").read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{grpc_port}", creds) as ch:
            call = ch.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                                  request_serializer=metrics_service_pb2.ExportMetricsServiceRequest.SerializeToString,
                                  response_deserializer=metrics_service_pb2.ExportMetricsServiceResponse.FromString)
            try:
                call(request(), timeout=10)
            except grpc.RpcError as e:
                return e.code()  # type: ignore[no-any-return]
            return grpc.StatusCode.OK

    try:
        def up() -> bool:
            assert server.poll() is None, server_log.read_text()
            return export("good") == grpc.StatusCode.OK

        until("the OTLP/gRPC listener did not accept the good certificate", up, server_log)
        assert export("revoked") == grpc.StatusCode.UNAUTHENTICATED
        assert export(None) == grpc.StatusCode.UNAVAILABLE  # no client certificate: the handshake fails
        until("revoked over gRPC", lambda: "CN=revoked serial" in server_log.read_text(), server_log)
        # the good certificate's O=acme filed the sample under acme
        url = f"https://127.0.0.1:{port}"
        with client(certs / "ca.crt", certs / "agents" / "good.crt", certs / "agents" / "good.key") as acme, \
                client(certs / "ca.crt", certs / "agents" / "other.crt", certs / "agents" / "other.key") as globex:
            def found(c: httpx.Client) -> list[object]:
                r = c.get(url + "/api/v1/query", params={"query": "grpc_mtls_probe"})
                r.raise_for_status()
                result: list[object] = r.json()["data"]["result"]
                return result

            until("the gRPC sample under acme", lambda: found(acme), server_log)
            assert found(globex) == []
    finally:
        stop(server)
