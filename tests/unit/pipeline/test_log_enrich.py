"""Enrichment of log entries with fixed resource attributes and the registry's host metadata
(pipeline/log_enrich.py) and its settings (logs.pipeline.enrich, logs.tenants.<name>.enrich)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.logs import LogBatch, LogEntry
from clearsight.pipeline.log_enrich import enrich_batch, host_attributes, host_of, make_enrich_step
from clearsight.pipeline.log_settings import parse_log_pipeline
from clearsight.pipeline.log_steps import build_log_steps
from clearsight.resources.model import Resource


def _e(stream: dict[str, str], body: str, resource: dict[str, str] | None = None, ts: int = 1) -> LogEntry:
    return LogEntry(
        stream=tuple(sorted(stream.items())),
        timestamp=ts,
        body=body,
        attributes=(("k", "v"),),
        resource=tuple(sorted((resource or {}).items())),
    )


HOSTS = {"web-7": {"host.os": "Debian 12", "host.tag.rack": "r3"}}


def test_fixed_attributes_added_and_the_sender_wins() -> None:
    b = LogBatch.from_entries(
        [_e({"app": "a"}, "x", {"deployment.environment": "staging"}), _e({"app": "a"}, "y")]
    )
    out = enrich_batch(b, {"deployment.environment": "prod", "cloud.region": "eu-1"}, None)
    assert [dict(e.resource) for e in out.entries()] == [
        {"deployment.environment": "staging", "cloud.region": "eu-1"},
        {"deployment.environment": "prod", "cloud.region": "eu-1"},
    ]
    assert [(e.stream, e.body, e.attributes, e.timestamp) for e in out.entries()] == [
        (e.stream, e.body, e.attributes, e.timestamp) for e in b.entries()
    ]


def test_host_metadata_by_resource_host_name_or_stream_label() -> None:
    b = LogBatch.from_entries(
        [
            _e({"app": "a"}, "by resource", {"host.name": "web-7"}),
            _e({"app": "a", "host": "web-7"}, "by stream label"),
            _e({"app": "a", "host": "db-1"}, "unknown host"),
            _e({"app": "a"}, "sender's os wins", {"hostname": "web-7", "host.os": "mine"}),
        ]
    )
    out = enrich_batch(b, {}, lambda h: HOSTS.get(h, {}))
    assert [dict(e.resource) for e in out.entries()] == [
        {"host.name": "web-7", "host.os": "Debian 12", "host.tag.rack": "r3"},
        {"host.os": "Debian 12", "host.tag.rack": "r3"},
        {},
        {"hostname": "web-7", "host.os": "mine", "host.tag.rack": "r3"},
    ]
    assert host_of((("host.name", "a"),), (("host", "b"),)) == "a"


def test_nothing_to_add_returns_the_batch_itself() -> None:
    b = LogBatch.from_entries([_e({"app": "a"}, "x", {"cloud.region": "eu-1"})])
    assert enrich_batch(b, {"cloud.region": "us-2"}, lambda h: {}) is b
    assert enrich_batch(b, {}, None) is b


def test_host_attributes_of_a_registry_host() -> None:
    r = Resource(
        id="host:web-7",
        kind="host",
        name="web-7",
        first_seen_ms=0,
        last_seen_ms=0,
        interval_ms=1,
        hostname="web-7",
        os="Debian 12",
        kernel="6.1",
        machine_id="abc",
        tags={"rack": "r3"},
    )
    assert host_attributes(r) == {
        "host.id": "abc",
        "host.os": "Debian 12",
        "host.kernel": "6.1",
        "host.tag.rack": "r3",
    }
    assert host_attributes(None) == {}


def test_settings_merge_per_tenant_and_errors_name_the_key() -> None:
    s = parse_log_pipeline(
        {"enrich": {"resource": {"env": "prod", "region": "eu"}}},
        {"acme": {"enrich": {"resource": {"region": "us", "env": ""}, "hosts": True}}},
    )
    assert s.default.enrich_resource == (("env", "prod"), ("region", "eu")) and not s.default.enrich_hosts
    assert s.for_tenant("acme").enrich_resource == (("region", "us"),) and s.for_tenant("acme").enrich_hosts
    for raw, msg in (
        ({"enrich": {"hosts": "yes"}}, "pipeline.enrich.hosts: expected true or false"),
        ({"enrich": {"colour": 1}}, "pipeline.enrich.colour: unknown key"),
        ({"enrich": {"resource": {"a": 1}}}, "pipeline.enrich.resource.a: expected a string"),
        ({"enrich": {"resource": {f"k{i}": "v" for i in range(33)}}}, "over the limit of 32"),
    ):
        with pytest.raises(ValueError, match=msg):
            parse_log_pipeline(raw, {})


def test_step_uses_the_tenant_settings_and_the_lookup() -> None:
    s = parse_log_pipeline({}, {"acme": {"enrich": {"hosts": True, "resource": {"team": "pay"}}}})
    seen: list[tuple[str, str]] = []

    def lookup(tenant: str, host: str) -> dict[str, str]:
        seen.append((tenant, host))
        return {"host.os": "Debian 12"}

    steps = build_log_steps(s, lambda: b"k" * 32, None, lookup)
    assert len(steps) == 1
    b = LogBatch.from_entries([_e({"host": "web-7"}, "x")])
    assert dict(steps[0]("acme", b).entries()[0].resource) == {"host.os": "Debian 12", "team": "pay"}
    assert steps[0]("other", b) is b and seen == [("acme", "web-7")]
    assert build_log_steps(parse_log_pipeline({}, {}), lambda: b"") == []
    assert make_enrich_step(lambda t: ({}, False), lookup)("t", b) is b


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["", "web-7", "db-1"]), st.text(max_size=8)),
        max_size=30,
    )
)
def test_enrichment_changes_only_resources(rows: list[tuple[str, str, str]]) -> None:
    b = LogBatch.from_entries(
        [_e({"app": app, **({"host": h} if h else {})}, body, ts=i) for i, (app, h, body) in enumerate(rows)]
    )
    out = enrich_batch(b, {"env": "prod"}, lambda h: HOSTS.get(h, {}))
    assert len(out) == len(b)
    for before, after in zip(b.entries(), out.entries(), strict=True):
        assert (after.stream, after.timestamp, after.body, after.attributes) == (
            before.stream,
            before.timestamp,
            before.body,
            before.attributes,
        )
        host = dict(before.stream).get("host", "")
        assert dict(after.resource) == {"env": "prod", **HOSTS.get(host, {})}
