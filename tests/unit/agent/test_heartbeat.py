"""The inventory heartbeat: its body passes the server's own parser (the contract), a 404 (a server
without the registry) is logged once at debug level and counted, other failures warn once."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Mapping

import pytest

from clearsight.agent.heartbeat import Heartbeat
from clearsight.agent.hostmeta import HostMeta
from clearsight.agent.shipper import Response
from clearsight.resources.heartbeat import parse_heartbeat

META = HostMeta(hostname="web-1", instance="web-1.par", os="Debian GNU/Linux 12 (bookworm)", kernel="6.1.0",
                arch="x86_64", machine_id="abc123", agent_version="0.1.0", tags={"dc": "par"})


class Transport:
    def __init__(self, answers: list[Response | Exception]) -> None:
        self.answers = answers
        self.bodies: list[bytes] = []

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        assert headers["Content-Type"] == "application/json"
        self.bodies.append(body)
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    def close(self) -> None:
        pass


def containers() -> list[Mapping[str, str]]:
    return [{"id": "9370079abed5", "name": "web", "image": "busybox", "state": "running"}]


def test_body_is_what_the_server_accepts() -> None:
    t = Transport([Response(200, {}, "{}")])
    hb = Heartbeat(t, META, containers, {"X-Scope-OrgID": "acme"})
    assert hb.beat() and hb.sent == 1
    doc = json.loads(t.bodies[0])
    assert doc["id"] == "host:web-1" and doc["name"] == "web-1.par" and doc["tags"] == {"dc": "par"}
    host, container = parse_heartbeat(t.bodies[0], 1000, 30_000)
    assert (host.hostname, host.os, host.kernel, host.machine_id, host.agent_version) == (
        "web-1", "Debian GNU/Linux 12 (bookworm)", "6.1.0", "abc123", "0.1.0")
    assert container.image == "busybox" and container.state == "running"


def test_404_once_at_debug_then_other_failures_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    t = Transport([Response(404, {}, "not found"), Response(404, {}, "not found"),
                   ConnectionRefusedError("refused"), http.client.RemoteDisconnected("gone"),
                   Response(200, {}, "{}")])
    hb = Heartbeat(t, META, list)
    with caplog.at_level(logging.DEBUG, logger="clearsight.agent.heartbeat"):
        results = [hb.beat() for _ in range(5)]
    assert results == [False, False, False, False, True]
    assert (hb.sent, hb.failures) == (1, 4)
    msgs = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert sum("no resource registry" in m for _, m in msgs) == 1
    assert [lvl for lvl, m in msgs if "heartbeat failed" in m] == ["WARNING"]
