"""Heartbeat contract: a valid heartbeat gives the host and its containers; every bad shape is a
HeartbeatError naming the field."""

from __future__ import annotations

import orjson
import pytest

from clearsight.resources.heartbeat import MAX_BODY_BYTES, MAX_CONTAINERS, HeartbeatError, parse_heartbeat

GOOD = {"id": "host:web-1", "kind": "host", "name": "web-1", "hostname": "web-1", "os": "linux",
        "kernel": "6.1.0", "machine_id": "abc123", "agent_version": "0.1.0", "tags": {"env": "prod"},
        "containers": [{"id": "0123456789abcdef", "name": "nginx", "image": "nginx:1.25", "state": "running"}]}


def _parse(d: object) -> list:  # type: ignore[type-arg]
    return parse_heartbeat(orjson.dumps(d), 1_000_000, 30_000)


def test_valid_heartbeat_gives_host_and_containers() -> None:
    host, c = _parse(GOOD)
    assert (host.id, host.kind, host.hostname, host.os, host.kernel, host.machine_id, host.agent_version) == (
        "host:web-1", "host", "web-1", "linux", "6.1.0", "abc123", "0.1.0")
    assert host.tags == {"env": "prod"} and host.instances == ("web-1",)
    assert (host.first_seen_ms, host.last_seen_ms, host.interval_ms, host.sources) == (1_000_000, 1_000_000, 30_000,
                                                                                      ("agent",))
    assert (c.id, c.kind, c.name, c.image, c.state, c.parent, c.hostname) == (
        "container:0123456789abcdef", "container", "nginx", "nginx:1.25", "running", "host:web-1", "web-1")


def test_minimal_heartbeat() -> None:
    [host] = _parse({"id": "host:db", "kind": "host", "hostname": "db"})
    assert host.name == "db" and host.tags == {} and host.instances == ("db",)


def test_name_is_the_agents_instance_label() -> None:
    [host] = _parse({"id": "host:db", "kind": "host", "hostname": "db", "name": "db.example:1"})
    assert host.name == "db.example:1" and host.instances == ("db", "db.example:1")


@pytest.mark.parametrize(("patch", "field"), [
    ({"extra": 1}, "extra"),
    ({"kind": "container"}, "kind"),
    ({"kind": None}, "kind"),
    ({"id": "host:other"}, "id"),
    ({"hostname": "bad host"}, "hostname"),
    ({"hostname": 5}, "hostname"),
    ({"os": "x" * 300}, "os"),
    ({"tags": {"env": 1}}, "tags.env"),
    ({"tags": {"bad key": "v"}}, "tags.bad key"),
    ({"tags": ["a"]}, "tags"),
    ({"containers": {}}, "containers"),
    ({"containers": [5]}, "containers[0]"),
    ({"containers": [{"name": "x"}]}, "containers[0].id"),
    ({"containers": [{"id": "a/b"}]}, "containers[0].id"),
    ({"containers": [{"id": "a", "ports": []}]}, "containers[0].ports"),
    ({"containers": [{"id": "a"}, {"id": "a"}]}, "containers[1].id"),
])
def test_bad_fields_are_named(patch: dict[str, object], field: str) -> None:
    with pytest.raises(HeartbeatError) as e:
        _parse({**GOOD, **patch})
    assert e.value.field == field


def test_bad_documents() -> None:
    for body in (b"not json", b"[1]", b"{}"):
        with pytest.raises(HeartbeatError):
            parse_heartbeat(body, 0, 1)
    with pytest.raises(HeartbeatError, match="exceeds the limit"):
        parse_heartbeat(b" " * (MAX_BODY_BYTES + 1), 0, 1)
    too_many = {**GOOD, "containers": [{"id": f"c{i}"} for i in range(MAX_CONTAINERS + 1)]}
    with pytest.raises(HeartbeatError, match="over the limit"):
        _parse(too_many)
