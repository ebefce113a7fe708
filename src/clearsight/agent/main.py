"""The one place that wires the agent's concrete objects from its configuration, and runs it."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from clearsight.agent import otlp_logs
from clearsight.agent.buffer import Buffer, DiskBuffer, MemoryBuffer
from clearsight.agent.collectors.containers import ContainerCollector
from clearsight.agent.collectors.host import HostCollector, HostOptions
from clearsight.agent.config import AgentConfig, load_agent_config
from clearsight.agent.engine_api import EngineClient
from clearsight.agent.heartbeat import Heartbeat
from clearsight.agent.hostmeta import detect
from clearsight.agent.otlp_logs import LogEncoder
from clearsight.agent.otlp_metrics import MetricsEncoder
from clearsight.agent.runner import Agent, Collector, LogShipping, SampleEncoder
from clearsight.agent.shipper import HEADERS as _REMOTE_WRITE_HEADERS
from clearsight.agent.shipper import Encoder, HttpTransport, Shipper, Transport
from clearsight.agent.sources import LogSource
from clearsight.agent.sources.auth import parse_auth_line
from clearsight.agent.sources.files import FileSource
from clearsight.agent.sources.journald import JournaldSource
from clearsight.agent.sources.state import StateFile
from clearsight.agent.tidy import Tidy
from clearsight.agent.tls import client_context
from clearsight.config import ConfigError, parse_duration_ms

log = logging.getLogger("clearsight.agent")


def _seconds(text: str) -> float:
    return parse_duration_ms(text) / 1000.0


def host_labels(cfg: AgentConfig) -> dict[str, str]:
    labels = dict(cfg.metadata.tags)
    labels["instance"] = cfg.metadata.instance or socket.gethostname()
    labels["job"] = cfg.metadata.job
    return labels


ENGINE_SOCKETS = ("/run/docker.sock", "/var/run/docker.sock", "/run/podman/podman.sock")


def state_dir(cfg: AgentConfig) -> Path:
    """Where cursors, file offsets and the status file live."""
    if cfg.state.dir:
        return Path(cfg.state.dir)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "clearsight-agent"


def engine_socket(cfg: AgentConfig) -> str | None:
    if cfg.containers.socket:
        return cfg.containers.socket
    return next((p for p in ENGINE_SOCKETS if os.path.exists(p)), None)


def _log_sources(cfg: AgentConfig, states: Path) -> list[tuple[LogSource, Tidy, float]]:
    out: list[tuple[LogSource, Tidy, float]] = []
    j = cfg.journald
    if j.enabled:
        out.append((JournaldSource(StateFile(states / "journald.json"), journalctl=j.journalctl,
                                   directory=j.directory, units=j.units, read_from=j.read_from,
                                   max_entries=j.max_entries, service=j.service),
                    Tidy(j.include, j.exclude, j.collapse), _seconds(j.interval)))
    a = cfg.auth
    if a.enabled:
        out.append((FileSource(a.paths, StateFile(states / "auth.json"), service=a.service, read_from=a.read_from,
                               parse=parse_auth_line, name="auth"),
                    Tidy(a.include, a.exclude, a.collapse), _seconds(a.interval)))
    for i, f in enumerate(cfg.files):
        out.append((FileSource(f.path, StateFile(states / f"files-{i}.json"), service=f.service, labels=f.labels,
                               multiline_start=f.multiline_start, read_from=f.read_from,
                               max_line_bytes=f.max_line_bytes, name=f"files-{i}"),
                    Tidy(f.include, f.exclude, f.collapse), _seconds(f.interval)))
    return out


def _buffer(cfg: AgentConfig, sub: str) -> Buffer:
    if cfg.buffer.dir:
        return DiskBuffer(Path(cfg.buffer.dir) / sub if sub else Path(cfg.buffer.dir), cfg.buffer.max_bytes)
    return MemoryBuffer(cfg.buffer.max_bytes)


def grpc_address(cfg: AgentConfig) -> str:
    """``server.grpc_address``, else the host of ``server.url`` and OTLP's port 4317."""
    if cfg.server.grpc_address:
        return cfg.server.grpc_address
    host = urllib.parse.urlsplit(cfg.server.url).hostname or "127.0.0.1"
    return f"[{host}]:4317" if ":" in host else f"{host}:4317"


def grpc_shipper(cfg: AgentConfig, buffer: Buffer, shared: bool, *, metrics: bool = False) -> Shipper:
    """A sender over OTLP/gRPC, of logs (LogsService) or of metrics (MetricsService); grpcio is loaded
    only here. TLS when ``server.url`` is https, with the same CA, certificate and key files."""
    from clearsight.agent.grpc_transport import (
        LOGS_METHOD,
        METRICS_METHOD,
        GrpcTransport,
        channel_credentials,
    )

    srv = cfg.server
    target = grpc_address(cfg)
    method = METRICS_METHOD if metrics else LOGS_METHOD
    creds = (channel_credentials(srv.tls_ca_file, srv.tls_cert_file, srv.tls_key_file)
             if srv.url.startswith("https://") else None)
    transport = GrpcTransport(target, method, _seconds(srv.timeout), creds)
    scheme = "grpcs" if creds is not None else "grpc"
    return Shipper(f"{scheme}://{target}{method}", buffer, transport=transport, headers=srv.headers,
                   base_headers={}, backoff_min=_seconds(cfg.shipper.backoff_min),
                   backoff_max=_seconds(cfg.shipper.backoff_max),
                   retry_after_max=_seconds(cfg.shipper.retry_after_max), shared=shared)


def build_agent(cfg: AgentConfig) -> Agent:
    collectors: list[tuple[Collector, float]] = []
    h = cfg.host
    if h.enabled:
        options = HostOptions(mount_points_exclude=h.mount_points_exclude, fs_types_exclude=h.fs_types_exclude,
                              disk_device_exclude=h.disk_device_exclude,
                              netdev_device_exclude=h.netdev_device_exclude, top_processes=h.top_processes,
                              mount_timeout=_seconds(h.mount_timeout))
        collectors.append((HostCollector(h.proc_root, h.sys_root, rootfs=h.rootfs, udev_data=h.udev_data,
                                         options=options), _seconds(h.interval)))
    if cfg.scrape_configs:
        from clearsight.agent.collectors.scrape import scrape_collectors

        collectors += scrape_collectors(cfg.scrape_configs, cfg.source)
    containers: ContainerCollector | None = None
    c = cfg.containers
    sock = engine_socket(cfg) if c.enabled else None
    if sock is not None:
        containers = ContainerCollector(EngineClient(sock, _seconds(c.timeout)), include_stopped=c.include_stopped)
        collectors.append((containers, _seconds(c.interval)))
    elif c.enabled:
        log.info("no container engine socket (%s): the container collector is off", ", ".join(ENGINE_SOCKETS))
    srv = cfg.server
    ssl_context = None
    if srv.url.startswith("https://"):
        ssl_context = client_context(srv.tls_ca_file, srv.tls_cert_file, srv.tls_key_file)
    base = srv.url.rstrip("/")

    def shipper(path: str, buffer: Buffer, headers: Mapping[str, str], shared: bool = False,
                transport: Transport | None = None) -> Shipper:
        return Shipper(base + path, buffer, headers=srv.headers, base_headers=headers,
                       timeout=_seconds(srv.timeout), backoff_min=_seconds(cfg.shipper.backoff_min),
                       backoff_max=_seconds(cfg.shipper.backoff_max),
                       retry_after_max=_seconds(cfg.shipper.retry_after_max), ssl_context=ssl_context,
                       shared=shared, transport=transport)

    encoder: SampleEncoder
    if cfg.shipper.protocol == "grpc":
        # OTLP metrics in their own spool: requests spooled as remote-write before a switch of protocol
        # stay where they are (shipped again once the protocol is http)
        buffer = _buffer(cfg, "otlp-metrics")
        encoder = MetricsEncoder(host_labels(cfg), cfg.shipper.max_samples_per_request)
        metrics_shipper = grpc_shipper(cfg, buffer, shared=False, metrics=True)
    else:
        buffer = _buffer(cfg, "")
        encoder = Encoder(host_labels(cfg), cfg.shipper.max_samples_per_request)
        metrics_shipper = shipper("/api/v1/write", buffer, _REMOTE_WRITE_HEADERS)
    meta = detect(cfg.metadata.instance, cfg.metadata.tags)
    states = state_dir(cfg)
    sources = _log_sources(cfg, states)
    logs = None
    if sources:
        log_buffer = _buffer(cfg, "logs")
        log_buffer.recover(name for source, _tidy, _interval in sources for name in source.staged())
        n = cfg.shipper.log_senders
        if cfg.shipper.protocol == "grpc":
            senders = [grpc_shipper(cfg, log_buffer, shared=n > 1) for _ in range(n)]
        else:
            senders = [shipper("/v1/logs", log_buffer, otlp_logs.HEADERS, shared=n > 1) for _ in range(n)]
        logs = LogShipping(LogEncoder(meta.resource(), cfg.shipper.max_log_records_per_request), log_buffer,
                           senders[0], senders[1:])
    heartbeat = None
    if cfg.heartbeat.enabled:
        def container_list() -> list[Mapping[str, str]]:
            if containers is None:
                return []
            return [i._asdict() for i in containers.last_containers]

        heartbeat = Heartbeat(HttpTransport(base + "/api/v1/resources/heartbeat", _seconds(srv.timeout), ssl_context),
                              meta, container_list, srv.headers)
    return Agent(collectors, encoder, buffer, metrics_shipper,
                 self_metrics_interval=_seconds(cfg.self_metrics.interval) if cfg.self_metrics.enabled else None,
                 logs=logs, log_sources=sources, heartbeat=heartbeat,
                 heartbeat_interval=_seconds(cfg.heartbeat.interval), status_path=states / "status.json")


def run_agent(cfg: AgentConfig) -> None:
    """Run until SIGTERM or SIGINT."""
    agent = build_agent(cfg)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.start()
    try:
        while not done.wait(3600):
            pass
    finally:
        agent.stop()


def main(config: str | Path | None = None, url: str | None = None, interval: str | None = None,
         log_level: str | None = None, protocol: str | None = None, grpc_address: str | None = None) -> int:
    """``clearsight agent`` and ``python -m clearsight.agent`` (the latter imports nothing but the agent)."""
    import sys

    from clearsight.logs import setup_logging

    overrides = {k: v for k, v in (("server.url", url), ("collectors.host.interval", interval),
                                   ("log.level", log_level), ("shipper.protocol", protocol),
                                   ("server.grpc_address", grpc_address)) if v is not None}
    try:
        cfg = load_agent_config(config, overrides=overrides)
    except ConfigError as e:
        print(f"clearsight: configuration error: {e}", file=sys.stderr)
        return 2
    setup_logging(cfg.log.level, cfg.log.format)
    run_agent(cfg)
    return 0
