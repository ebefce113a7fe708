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


@dataclass
class MetadataConfig:
    instance: str = ""  # "" = this host's name
    job: str = "node"  # so dashboards and rules written for node_exporter's job="node" match
    tags: dict[str, str] = field(default_factory=dict)  # extra labels on every series


@dataclass
class ShipperConfig:
    max_samples_per_request: int = 2000
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
    self_metrics: SelfMetricsConfig = field(default_factory=SelfMetricsConfig)
    log: AgentLogConfig = field(default_factory=AgentLogConfig)
    source: str = "<defaults>"


# YAML section -> AgentConfig attribute ("collectors.host" nests under "collectors")
SECTIONS: dict[str, str] = {
    "server": "server", "metadata": "metadata", "shipper": "shipper", "buffer": "buffer",
    "collectors.host": "host", "self_metrics": "self_metrics", "log": "log",
}


def _coerce(where: str, current: Any, value: Any) -> Any:
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if isinstance(current, int):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise ConfigError(f"{where}: expected a non-negative integer, got {value!r}")
    if isinstance(current, dict):
        if isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str | int | float)
                                              for k, v in value.items()):
            return {k: str(v) for k, v in value.items()}
        raise ConfigError(f"{where}: expected a mapping of strings, got {value!r}")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where}: expected a string, got {value!r}")


def _apply(cfg: AgentConfig, attr: str, where: str, values: Any) -> None:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    section = getattr(cfg, attr)
    names = {f.name for f in dataclasses.fields(section)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(names))})")
        setattr(section, key, _coerce(f"{where}.{key}", getattr(section, key), value))


def _validate(cfg: AgentConfig) -> None:
    src = cfg.source
    for key, text in (("server.timeout", cfg.server.timeout), ("shipper.backoff_min", cfg.shipper.backoff_min),
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
            if key != "host":
                raise ConfigError(f"{path}: collectors.{key}: unknown collector (known: host)")
        for key, values in raw.items():
            if key == "collectors":
                if "host" in collectors:
                    _apply(cfg, "host", f"{path}: collectors.host", collectors["host"])
            elif key in SECTIONS:
                _apply(cfg, SECTIONS[key], f"{path}: {key}", values)
            else:
                raise ConfigError(f"{path}: {key}: unknown section (known: {', '.join(sorted(SECTIONS))})")
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.rpartition(".")
        _apply(cfg, SECTIONS[section], f"flag {dotted}", {key: value})
    _validate(cfg)
    return cfg
