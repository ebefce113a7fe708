"""This host's metadata: what every log record's resource and the inventory heartbeat carry."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from clearsight import __version__


@dataclass(frozen=True)
class HostMeta:
    hostname: str
    instance: str
    os: str  # /etc/os-release PRETTY_NAME, else the kernel's name
    kernel: str
    arch: str
    machine_id: str
    agent_version: str = __version__
    tags: dict[str, str] = field(default_factory=dict)

    def resource(self) -> dict[str, str]:
        """OTLP resource attributes (semantic conventions' names; tags under their own names)."""
        out = dict(self.tags)
        out.update({"host.name": self.hostname, "service.instance.id": self.instance, "os.type": "linux",
                    "os.description": self.os, "os.version": self.kernel, "host.arch": self.arch,
                    "clearsight.agent.version": self.agent_version})
        if self.machine_id:
            out["host.id"] = self.machine_id
        return out


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def os_pretty_name(etc: Path) -> str:
    for line in _read(etc / "os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def detect(instance: str = "", tags: dict[str, str] | None = None, etc: Path = Path("/etc")) -> HostMeta:
    u = os.uname()
    hostname = socket.gethostname()
    return HostMeta(hostname=hostname, instance=instance or hostname, os=os_pretty_name(etc) or u.sysname,
                    kernel=u.release, arch=u.machine, machine_id=_read(etc / "machine-id"), tags=dict(tags or {}))
