"""The one place that wires the agent's concrete objects from its configuration, and runs it."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from pathlib import Path
from types import FrameType

from clearsight.agent.buffer import Buffer, DiskBuffer, MemoryBuffer
from clearsight.agent.collectors.host import HostCollector, HostOptions
from clearsight.agent.config import AgentConfig, load_agent_config
from clearsight.agent.runner import Agent, Collector
from clearsight.agent.shipper import Encoder, Shipper
from clearsight.config import ConfigError, parse_duration_ms

log = logging.getLogger("clearsight.agent")


def _seconds(text: str) -> float:
    return parse_duration_ms(text) / 1000.0


def host_labels(cfg: AgentConfig) -> dict[str, str]:
    labels = dict(cfg.metadata.tags)
    labels["instance"] = cfg.metadata.instance or socket.gethostname()
    labels["job"] = cfg.metadata.job
    return labels


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
    buffer: Buffer
    if cfg.buffer.dir:
        buffer = DiskBuffer(Path(cfg.buffer.dir), cfg.buffer.max_bytes)
    else:
        buffer = MemoryBuffer(cfg.buffer.max_bytes)
    shipper = Shipper(cfg.server.url.rstrip("/") + "/api/v1/write", buffer, headers=cfg.server.headers,
                      timeout=_seconds(cfg.server.timeout), backoff_min=_seconds(cfg.shipper.backoff_min),
                      backoff_max=_seconds(cfg.shipper.backoff_max),
                      retry_after_max=_seconds(cfg.shipper.retry_after_max))
    encoder = Encoder(host_labels(cfg), cfg.shipper.max_samples_per_request)
    return Agent(collectors, encoder, buffer, shipper,
                 self_metrics_interval=_seconds(cfg.self_metrics.interval) if cfg.self_metrics.enabled else None)


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
         log_level: str | None = None) -> int:
    """``clearsight agent`` and ``python -m clearsight.agent`` (the latter imports nothing but the agent)."""
    import sys

    from clearsight.logs import setup_logging

    overrides = {k: v for k, v in (("server.url", url), ("collectors.host.interval", interval),
                                   ("log.level", log_level)) if v is not None}
    try:
        cfg = load_agent_config(config, overrides=overrides)
    except ConfigError as e:
        print(f"clearsight: configuration error: {e}", file=sys.stderr)
        return 2
    setup_logging(cfg.log.level, cfg.log.format)
    run_agent(cfg)
    return 0
