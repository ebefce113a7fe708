"""The inventory heartbeat: every ``interval`` the agent POSTs this host (and its containers) to the
server's ``/api/v1/resources/heartbeat``. Best effort: a failure is logged (a 404, a server without the
resource registry, once at debug level) and the next beat tries again; nothing is buffered."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from clearsight.agent.hostmeta import HostMeta
from clearsight.agent.shipper import Transport

log = logging.getLogger("clearsight.agent.heartbeat")

ContainersFn = Callable[[], list[Mapping[str, str]]]


def heartbeat_body(meta: HostMeta, containers: list[Mapping[str, str]]) -> dict[str, Any]:
    return {"id": f"host:{meta.hostname}", "kind": "host", "name": meta.instance, "hostname": meta.hostname,
            "os": meta.os, "kernel": meta.kernel, "machine_id": meta.machine_id,
            "agent_version": meta.agent_version, "tags": dict(meta.tags), "containers": containers}


class Heartbeat:
    def __init__(self, transport: Transport, meta: HostMeta, containers: ContainersFn,
                 headers: Mapping[str, str] | None = None) -> None:
        self.transport = transport
        self.meta = meta
        self.containers = containers
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.sent = 0
        self.failures = 0
        self._said_404 = False
        self._failing = False

    def beat(self) -> bool:
        body = json.dumps(heartbeat_body(self.meta, self.containers())).encode()
        try:
            r = self.transport.post(body, self.headers)
        except (OSError, http.client.HTTPException) as e:
            self._fail(f"{type(e).__name__}: {e}")
            return False
        if 200 <= r.status < 300:
            self.sent += 1
            self._failing = False
            return True
        if r.status == 404:
            if not self._said_404:
                log.debug("the server has no resource registry (404 on the heartbeat); will keep trying")
                self._said_404 = True
            self.failures += 1
            return False
        self._fail(f"HTTP {r.status}: {r.text[:200]}")
        return False

    def _fail(self, reason: str) -> None:
        self.failures += 1
        if not self._failing:
            log.warning("heartbeat failed (%s); retrying every interval", reason)
            self._failing = True
