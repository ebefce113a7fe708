"""Which resource a label set names."""

from __future__ import annotations

from clearsight.resources.matching import ResourceIndex, claimed_ids
from clearsight.resources.model import Resource


def _r(rid: str, **kw: object) -> Resource:
    kind, _, name = rid.partition(":")
    return Resource(id=rid, kind=kind, name=str(kw.pop("name", name)), first_seen_ms=0, last_seen_ms=0,
                    interval_ms=1, **kw)  # type: ignore[arg-type]


INDEX = ResourceIndex([
    _r("host:web-1", hostname="web-1", instances=("web-1", "10.0.0.5:9100")),
    _r("host:db", hostname="db"),
    _r("container:0123456789abcdef0000", name="nginx"),
    _r("service:api"),
])


def test_hosts() -> None:
    assert INDEX.match({"instance": "web-1"}, "host") == "host:web-1"
    assert INDEX.match({"instance": "10.0.0.5:9100"}, "host") == "host:web-1"
    assert INDEX.match({"instance": "db:9100"}, "host") == "host:db"
    assert INDEX.match({"host.name": "db"}, "host") == "host:db"
    assert INDEX.match({"resource_id": "host:db"}, "host") == "host:db"
    assert INDEX.match({"instance": "other"}, "host") is None


def test_containers_and_services() -> None:
    assert INDEX.match({"container_id": "0123456789abcdef0000"}, "container") == "container:0123456789abcdef0000"
    assert INDEX.match({"container.id": "0123456789ab"}, "container") == "container:0123456789abcdef0000"
    assert INDEX.match({"container.id": "0123"}, "container") is None  # too short to be a prefix
    assert INDEX.match({"container_name": "nginx"}, "container") == "container:0123456789abcdef0000"
    assert INDEX.match({"id": "0123456789abcdef0000", "name": "x"}, "container") == "container:0123456789abcdef0000"
    assert INDEX.match({"job": "api"}, "service") == "service:api"
    assert INDEX.match_all({"instance": "web-1", "job": "api"}) == ["host:web-1", "service:api"]


def test_claimed_ids_without_an_index() -> None:
    assert claimed_ids({"host.name": "i-123"}) == ["host:i-123"]
    assert claimed_ids({"resource.id": "service:x", "container.id": "abc"}) == ["service:x", "container:abc"]
    assert claimed_ids({"host.name": "bad name"}) == []
