"""agent.yaml: defaults, the file, flags, precise errors, and every key documented."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from clearsight.agent.config import SECTIONS, AgentConfig, load_agent_config
from clearsight.agent.main import build_agent, host_labels
from clearsight.config import ConfigError

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def test_defaults() -> None:
    cfg = load_agent_config()
    assert cfg.server.url == "http://127.0.0.1:9800"
    assert cfg.host.enabled and cfg.host.interval == "10s"
    assert cfg.metadata.job == "node"
    labels = host_labels(cfg)
    assert labels["job"] == "node" and labels["instance"]


def test_file_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "agent.yaml"
    f.write_text(
        "server: {url: 'http://10.0.0.1:9800', headers: {X-Scope-OrgID: team-a}}\n"
        "metadata: {instance: web-1, tags: {dc: par, rack: 7}}\n"
        "buffer: {dir: /var/lib/clearsight/spool, max_bytes: 1000}\n"
        "collectors:\n  host: {interval: 30s, top_processes: 0, netdev_device_exclude: '^$'}\n"
    )
    cfg = load_agent_config(f, overrides={"collectors.host.interval": "5s"})
    assert cfg.server.headers == {"X-Scope-OrgID": "team-a"}
    assert host_labels(cfg) == {"instance": "web-1", "job": "node", "dc": "par", "rack": "7"}
    assert cfg.buffer.max_bytes == 1000 and cfg.host.top_processes == 0
    assert cfg.host.interval == "5s"  # the flag wins
    assert cfg.host.netdev_device_exclude == "^$"


@pytest.mark.parametrize("text,message", [
    ("server: {nope: 1}\n", "server.nope: unknown key"),
    ("collectors: {docker: {}}\n", "collectors.docker: unknown collector"),
    ("wat: {}\n", "wat: unknown section"),
    ("collectors: {host: {interval: soon}}\n", "collectors.host.interval: invalid duration"),
    ("collectors: {host: {interval: 0s}}\n", "collectors.host.interval"),
    ("collectors: {host: {top_processes: -1}}\n", "collectors.host.top_processes: expected a non-negative integer"),
    ("collectors: {host: {enabled: 'yes'}}\n", "collectors.host.enabled: expected true or false"),
    ("collectors: {host: {disk_device_exclude: '('}}\n", "collectors.host.disk_device_exclude: invalid regular"),
    ("server: {url: '127.0.0.1:9800'}\n", "server.url: expected an http:// or https:// URL"),
    ("metadata: {tags: {__name__: x}}\n", "metadata.tags: '__name__' is not a valid label name"),
    ("shipper: {max_samples_per_request: 0}\n", "shipper.max_samples_per_request: must be at least 1"),
    ("- a\n", "expected a mapping at the top level"),
    ("shipper: {protocol: quic}\n", "shipper.protocol: expected http or grpc, got 'quic'"),
    ("server: {grpc_address: 'no-port'}\n", "server.grpc_address: expected host:port, got 'no-port'"),
])
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "agent.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_agent_config(f)
    assert message in str(e.value) and str(f) in str(e.value)


def test_every_agent_key_is_documented() -> None:
    text = DOC.read_text()
    cfg = AgentConfig()
    missing = []
    for section, attr in SECTIONS.items():
        if f"### agent `{section}`" not in text:
            missing.append(section)
        for f in dataclasses.fields(getattr(cfg, attr)):
            if f"| `{section}.{f.name}` |" not in text:
                missing.append(f"{section}.{f.name}")
    assert not missing, f"undocumented agent settings in docs/configuration.md: {missing}"


def test_build_agent_wires_the_configured_pieces(tmp_path: Path) -> None:
    f = tmp_path / "agent.yaml"
    f.write_text(f"buffer: {{dir: '{tmp_path / 'spool'}'}}\nself_metrics: {{enabled: false}}\n"
                 "collectors: {host: {interval: 15s}}\nserver: {url: 'http://127.0.0.1:1/'}\n")
    agent = build_agent(load_agent_config(f))
    assert [(s.collector.name, s.interval) for s in agent.stats.scheduled] == [("host", 15.0)]
    # the default protocol: OTLP/gRPC to the host of server.url, port 4317, spooled apart from remote-write
    assert agent.shipper.url == "grpc://127.0.0.1:4317/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
    assert (tmp_path / "spool" / "otlp-metrics").is_dir()
    agent.shipper.close()
    f.write_text(f.read_text() + "shipper: {protocol: http}\n")
    agent = build_agent(load_agent_config(f))
    assert agent.shipper.url == "http://127.0.0.1:1/api/v1/write"
    agent.shipper.close()


@pytest.mark.parametrize("argv", [["-m", "clearsight.agent"], ["-m", "clearsight", "agent"]])
def test_both_entry_points_refuse_a_bad_file_with_exit_2(tmp_path: Path, argv: list[str]) -> None:
    f = tmp_path / "agent.yaml"
    f.write_text("collectors: {host: {interval: soon}}\n")
    r = subprocess.run([sys.executable, *argv, "--config", str(f)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "configuration error" in r.stderr and "collectors.host.interval: invalid duration" in r.stderr


def test_grpc_protocol_wires_grpc_senders_for_logs_and_metrics(tmp_path: Path) -> None:
    from clearsight.agent.grpc_transport import LOGS_METHOD, METRICS_METHOD, GrpcTransport
    from clearsight.agent.main import grpc_address

    (tmp_path / "a.log").write_text("")
    f = tmp_path / "agent.yaml"
    f.write_text(f"server: {{url: 'https://[::1]:9800'}}\nshipper: {{protocol: grpc, log_senders: 2}}\n"
                 f"state: {{dir: '{tmp_path / 'state'}'}}\nheartbeat: {{enabled: false}}\n"
                 f"collectors: {{files: [{{path: '{tmp_path}/*.log'}}]}}\n")
    cfg = load_agent_config(f)
    assert grpc_address(cfg) == "[::1]:4317"
    agent = build_agent(cfg)
    assert agent.logs is not None and len(agent.logs.senders) == 2
    for sender in agent.logs.senders:
        assert isinstance(sender.transport, GrpcTransport) and sender.transport.target == "[::1]:4317"
        assert sender.url == f"grpcs://[::1]:4317{LOGS_METHOD}" and sender.shared
        sender.close()
    assert agent.shipper.url == f"grpcs://[::1]:4317{METRICS_METHOD}"  # metrics: OTLP over gRPC too
    assert isinstance(agent.shipper.transport, GrpcTransport)
    agent.shipper.close()
    cfg.server.grpc_address = "collector.example:14317"
    assert grpc_address(cfg) == "collector.example:14317"
