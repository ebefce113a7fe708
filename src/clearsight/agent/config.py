"""The agent's configuration: one YAML file (``agent.yaml``), then flags. Every key is in docs/configuration.md.

A bad value fails at start with the file, the key path and the reason (``ConfigError``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clearsight.agent.collectors.host import (
    DEFAULT_DISK_DEVICE_EXCLUDE,
    DEFAULT_FS_TYPES_EXCLUDE,
    DEFAULT_MOUNT_POINTS_EXCLUDE,
    DEFAULT_NETDEV_DEVICE_EXCLUDE,
)
from clearsight.config import ConfigError, parse_duration_ms

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass
class ServerTarget:
    url: str = "http://127.0.0.1:9800"  # the Clearsight server; samples go to <url>/api/v1/write
    timeout: str = "10s"  # one HTTP request
    headers: dict[str, str] = field(default_factory=dict)  # extra request headers, e.g. X-Scope-OrgID
    tls_ca_file: str = ""  # verify the server against this CA instead of the system's store
    tls_cert_file: str = ""  # a client certificate (mutual TLS; `clearsight certs issue --agent NAME`)
    tls_key_file: str = ""  # its key
    grpc_address: str = ""  # OTLP/gRPC host:port with shipper.protocol grpc; "" = server.url's host, port 4317


@dataclass
class MetadataConfig:
    instance: str = ""  # "" = this host's name
    job: str = "node"  # so dashboards and rules written for node_exporter's job="node" match
    tags: dict[str, str] = field(default_factory=dict)  # extra labels on every series


@dataclass
class ShipperConfig:
    # grpc: metrics and logs over OTLP/gRPC (MetricsService, LogsService at server.grpc_address);
    # http: metrics as remote-write 1.0 to <url>/api/v1/write, logs as OTLP/HTTP to <url>/v1/logs
    protocol: str = "grpc"
    max_samples_per_request: int = 2000
    max_log_records_per_request: int = 5000  # one poll of a source is split into requests of at most this many
    log_senders: int = 2  # OTLP logs requests in flight at once (each on its own connection)
    backoff_min: str = "500ms"
    backoff_max: str = "30s"
    retry_after_max: str = "5m"  # a longer Retry-After from the server is cut to this


@dataclass
class BufferConfig:
    dir: str = ""  # a spool directory (survives agent restarts); "" = in memory only
    max_bytes: int = 64 * 1024 * 1024  # compressed requests kept while the server is away; oldest dropped


@dataclass
class HostCollectorConfig:
    enabled: bool = True
    interval: str = "10s"
    proc_root: str = "/proc"
    sys_root: str = "/sys"
    rootfs: str = "/"
    udev_data: str = "/run/udev/data"
    top_processes: int = 5
    mount_timeout: str = "5s"
    mount_points_exclude: str = DEFAULT_MOUNT_POINTS_EXCLUDE
    fs_types_exclude: str = DEFAULT_FS_TYPES_EXCLUDE
    disk_device_exclude: str = DEFAULT_DISK_DEVICE_EXCLUDE
    netdev_device_exclude: str = DEFAULT_NETDEV_DEVICE_EXCLUDE


@dataclass
class ContainersCollectorConfig:
    enabled: bool = True
    interval: str = "10s"
    socket: str = ""  # "" = the first of /run/docker.sock, /run/podman/podman.sock that exists (none: off)
    include_stopped: bool = True
    timeout: str = "10s"


@dataclass
class JournaldCollectorConfig:
    enabled: bool = False
    interval: str = "5s"
    journalctl: str = "journalctl"
    directory: str = ""  # journal files of this directory instead of the system journal
    units: list[str] = field(default_factory=list)
    read_from: str = "end"  # without a stored cursor: end | beginning
    max_entries: int = 5000  # per poll
    service: str = "journald"
    include: str = ""
    exclude: str = ""
    collapse: bool = True


@dataclass
class FileSourceConfig:
    path: list[str] = field(default_factory=list)  # globs (a string is one glob)
    service: str = "files"
    labels: dict[str, str] = field(default_factory=dict)
    interval: str = "2s"
    multiline_start: str = ""
    read_from: str = "end"
    max_line_bytes: int = 65536
    include: str = ""
    exclude: str = ""
    collapse: bool = True


@dataclass
class AuthCollectorConfig:
    enabled: bool = False
    interval: str = "5s"
    paths: list[str] = field(default_factory=lambda: ["/var/log/auth.log", "/var/log/secure"])
    read_from: str = "end"
    service: str = "auth"
    include: str = ""
    exclude: str = ""
    collapse: bool = True


@dataclass
class StateConfig:
    dir: str = ""  # "" = $XDG_STATE_HOME/clearsight-agent (else ~/.local/state/clearsight-agent)


@dataclass
class HeartbeatConfig:
    enabled: bool = True
    interval: str = "30s"


@dataclass
class SelfMetricsConfig:
    enabled: bool = True
    interval: str = "10s"


@dataclass
class AgentLogConfig:
    level: str = "info"
    format: str = "json"  # json | text


@dataclass
class AgentConfig:
    server: ServerTarget = field(default_factory=ServerTarget)
    metadata: MetadataConfig = field(default_factory=MetadataConfig)
    shipper: ShipperConfig = field(default_factory=ShipperConfig)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    host: HostCollectorConfig = field(default_factory=HostCollectorConfig)
    containers: ContainersCollectorConfig = field(default_factory=ContainersCollectorConfig)
    journald: JournaldCollectorConfig = field(default_factory=JournaldCollectorConfig)
    auth: AuthCollectorConfig = field(default_factory=AuthCollectorConfig)
    files: list[FileSourceConfig] = field(default_factory=list)
    state: StateConfig = field(default_factory=StateConfig)
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    self_metrics: SelfMetricsConfig = field(default_factory=SelfMetricsConfig)
    scrape_configs: list[Any] = field(default_factory=list)  # the server's format (collectors/scrape.py)
    log: AgentLogConfig = field(default_factory=AgentLogConfig)
    source: str = "<defaults>"


# YAML section -> AgentConfig attribute ("collectors.host" nests under "collectors")
SECTIONS: dict[str, str] = {
    "server": "server", "metadata": "metadata", "shipper": "shipper", "buffer": "buffer",
    "collectors.host": "host", "collectors.containers": "containers", "collectors.journald": "journald",
    "collectors.auth": "auth", "state": "state", "heartbeat": "heartbeat",
    "self_metrics": "self_metrics", "log": "log",
}
COLLECTORS = ("host", "containers", "journald", "auth", "files")


def _coerce(where: str, current: Any, value: Any) -> Any:
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if isinstance(current, int):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise ConfigError(f"{where}: expected a non-negative integer, got {value!r}")
    if isinstance(current, list):
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{where}: expected a string or a list of strings, got {value!r}")
    if isinstance(current, dict):
        if isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str | int | float)
                                              for k, v in value.items()):
            return {k: str(v) for k, v in value.items()}
        raise ConfigError(f"{where}: expected a mapping of strings, got {value!r}")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where}: expected a string, got {value!r}")


def _apply(cfg: AgentConfig, attr: str, where: str, values: Any) -> None:
    _apply_to(getattr(cfg, attr), where, values)


def _apply_to(section: Any, where: str, values: Any) -> None:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    names = {f.name for f in dataclasses.fields(section)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(names))})")
        setattr(section, key, _coerce(f"{where}.{key}", getattr(section, key), value))


def _validate(cfg: AgentConfig) -> None:
    src = cfg.source
    durations = [("collectors.containers.interval", cfg.containers.interval),
                 ("collectors.containers.timeout", cfg.containers.timeout),
                 ("collectors.journald.interval", cfg.journald.interval),
                 ("collectors.auth.interval", cfg.auth.interval), ("heartbeat.interval", cfg.heartbeat.interval)]
    durations += [(f"collectors.files[{i}].interval", f.interval) for i, f in enumerate(cfg.files)]
    regexes = [("collectors.journald.include", cfg.journald.include),
               ("collectors.journald.exclude", cfg.journald.exclude),
               ("collectors.auth.include", cfg.auth.include), ("collectors.auth.exclude", cfg.auth.exclude)]
    for i, f in enumerate(cfg.files):
        regexes += [(f"collectors.files[{i}].{k}", getattr(f, k)) for k in ("include", "exclude", "multiline_start")]
        if not f.path:
            raise ConfigError(f"{src}: collectors.files[{i}].path: at least one glob is needed")
    for key, text in regexes:
        try:
            re.compile(text)
        except re.error as e:
            raise ConfigError(f"{src}: {key}: invalid regular expression: {e}") from None
    for key, value in [("collectors.journald.read_from", cfg.journald.read_from),
                       ("collectors.auth.read_from", cfg.auth.read_from),
                       *((f"collectors.files[{i}].read_from", f.read_from) for i, f in enumerate(cfg.files))]:
        if value not in ("end", "beginning"):
            raise ConfigError(f"{src}: {key}: expected end or beginning, got {value!r}")
    if bool(cfg.server.tls_cert_file) != bool(cfg.server.tls_key_file):
        raise ConfigError(f"{src}: server.tls_cert_file and server.tls_key_file go together")
    for key, text in (*durations, ("server.timeout", cfg.server.timeout), ("shipper.backoff_min", cfg.shipper.backoff_min),
                      ("shipper.backoff_max", cfg.shipper.backoff_max),
                      ("shipper.retry_after_max", cfg.shipper.retry_after_max),
                      ("collectors.host.interval", cfg.host.interval),
                      ("collectors.host.mount_timeout", cfg.host.mount_timeout),
                      ("self_metrics.interval", cfg.self_metrics.interval)):
        try:
            if parse_duration_ms(text) <= 0:
                raise ValueError(f"{text!r} must be more than 0")
        except ValueError as e:
            raise ConfigError(f"{src}: {key}: {e}") from None
    if not cfg.server.url.startswith(("http://", "https://")):
        raise ConfigError(f"{src}: server.url: expected an http:// or https:// URL, got {cfg.server.url!r}")
    if cfg.shipper.protocol not in ("http", "grpc"):
        raise ConfigError(f"{src}: shipper.protocol: expected http or grpc, got {cfg.shipper.protocol!r}")
    if cfg.server.grpc_address and not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^:\s/]+):\d{1,5}", cfg.server.grpc_address):
        raise ConfigError(f"{src}: server.grpc_address: expected host:port, got {cfg.server.grpc_address!r}")
    if not 1 <= cfg.shipper.log_senders <= 16:
        raise ConfigError(f"{src}: shipper.log_senders: must be between 1 and 16")
    if cfg.shipper.max_log_records_per_request < 1:
        raise ConfigError(f"{src}: shipper.max_log_records_per_request: must be at least 1")
    if cfg.shipper.max_samples_per_request < 1:
        raise ConfigError(f"{src}: shipper.max_samples_per_request: must be at least 1")
    for name in cfg.metadata.tags:
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ConfigError(f"{src}: metadata.tags: {name!r} is not a valid label name")
    for key in ("mount_points_exclude", "fs_types_exclude", "disk_device_exclude", "netdev_device_exclude"):
        try:
            re.compile(getattr(cfg.host, key))
        except re.error as e:
            raise ConfigError(f"{src}: collectors.host.{key}: invalid regular expression: {e}") from None
    if cfg.log.format not in ("json", "text"):
        raise ConfigError(f"{src}: log.format: expected json or text, got {cfg.log.format!r}")


def _file_sources(where: str, values: Any) -> list[FileSourceConfig]:
    if not isinstance(values, list):
        raise ConfigError(f"{where}: expected a list of sources ({{path: GLOB, labels: {{...}}}})")
    out = []
    for i, v in enumerate(values):
        fs = FileSourceConfig()
        _apply_to(fs, f"{where}[{i}]", v)
        out.append(fs)
    return out


def load_agent_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> AgentConfig:
    """Defaults, then the YAML file, then ``overrides`` ({"server.url": ...}: flags)."""
    cfg = AgentConfig()
    if path is not None:
        cfg.source = str(path)
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: {e}") from None
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        collectors = raw.get("collectors", {})
        if not isinstance(collectors, Mapping):
            raise ConfigError(f"{path}: collectors: expected a mapping")
        for key in collectors:
            if key not in COLLECTORS:
                raise ConfigError(f"{path}: collectors.{key}: unknown collector (known: {', '.join(COLLECTORS)})")
        for key, values in raw.items():
            if key == "collectors":
                for name in COLLECTORS:
                    if name == "files" and "files" in collectors:
                        cfg.files = _file_sources(f"{path}: collectors.files", collectors["files"])
                    elif name in collectors:
                        _apply(cfg, name, f"{path}: collectors.{name}", collectors[name])
            elif key == "scrape_configs":
                if not isinstance(values, list):
                    raise ConfigError(f"{path}: scrape_configs: expected a list of jobs")
                cfg.scrape_configs = values
            elif key in SECTIONS:
                _apply(cfg, SECTIONS[key], f"{path}: {key}", values)
            else:
                raise ConfigError(f"{path}: {key}: unknown section (known: {', '.join(sorted([*SECTIONS, 'scrape_configs']))})")
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.rpartition(".")
        _apply(cfg, SECTIONS[section], f"flag {dotted}", {key: value})
    _validate(cfg)
    if cfg.scrape_configs:
        from clearsight.agent.collectors.scrape import scrape_collectors

        scrape_collectors(cfg.scrape_configs, cfg.source)  # errors now, with the file and the job
    return cfg
