"""The event gRPC service against a real ``clearsight server``, called through the stub that
``grpc_tools.protoc`` generates from the published ``docs/clearsight_events.proto``: ``Log``,
``LogStream`` (client streaming) and ``Query``; events land where ``GET /api/v1/events`` finds them;
an invalid event is INVALID_ARGUMENT naming the field and nothing of the call is written; the
auth interceptor guards the streaming method too (key, permission, proxy header)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2

from clearsight.api.proto import clearsight_events_pb2 as pb
from tests.support.peers import Proc, free_port, start_clearsight

ROOT = Path(__file__).resolve().parents[2]
PASSWORD_RE = re.compile(r"with password:\s+(\S+)")


def _generated_stub_module(out: Path) -> ModuleType:
    """``clearsight_events_pb2_grpc`` generated now from the published proto; its import of the
    messages module resolves to the committed one (the unit test keeps the two identical)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'docs'}",
            f"--grpc_python_out={out}",
            str(ROOT / "docs" / "clearsight_events.proto"),
        ],
        check=True,
    )
    sys.modules.setdefault("clearsight_events_pb2", pb)
    spec = importlib.util.spec_from_file_location(
        "clearsight_events_pb2_grpc", out / "clearsight_events_pb2_grpc.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, Any, str]]:
    work = tmp_path_factory.mktemp("events-grpc")
    stubs = _generated_stub_module(work)
    target = f"127.0.0.1:{free_port()}"
    proc = start_clearsight(work / "cs", args=["--otlp-grpc-listen", target])
    try:
        with grpc.insecure_channel(target) as channel:
            yield proc, stubs.EventServiceStub(channel), target
    finally:
        proc.stop()


def _http_events(url: str, **params: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/v1/events", params={"since": "48h", **params}, timeout=10)
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["data"]["events"]
    return out


def _bad_request(e: grpc.RpcError) -> list[tuple[str, str]]:
    """The field violations of the google.rpc.Status trailer."""
    raw = dict(e.trailing_metadata() or ())["grpc-status-details-bin"]  # type: ignore[attr-defined]
    st = status_pb2.Status.FromString(raw)
    out = []
    for d in st.details:
        br = error_details_pb2.BadRequest()
        if d.Unpack(br):
            out += [(v.field, v.description) for v in br.field_violations]
    return out


def test_log_stores_every_field_and_query_returns_it(env: tuple[Proc, Any, str]) -> None:
    proc, stub, _ = env
    data = struct_pb2.Struct()
    data.update({"bytes": 1234, "ratio": 0.5, "dst": {"port": 443}, "ok": True})
    ts = time.time_ns() - 5_000_000_123  # nanoseconds kept exactly
    ev = pb.Event(
        message="connection to 10.0.0.9:443",
        level="warn",
        origin="node-1",
        source="ebpf",
        type="network_flow",
        group="net",
        tags=["egress", "tls"],
        data=data,
        resource={"host": "node-1", "container": ""},
    )
    ev.timestamp.seconds, ev.timestamp.nanos = divmod(ts, 1_000_000_000)
    resp = stub.Log(ev, timeout=10)
    assert resp.accepted == 1 and len(resp.ids) == 1 and len(resp.ids[0]) == 36  # a UUID was assigned

    (got,) = _http_events(proc.url, type="network_flow")
    assert got == {
        "id": resp.ids[0],
        "message": "connection to 10.0.0.9:443",
        "level": "WARN",
        "severity": "medium",
        "timestamp_ns": str(ts),
        "type": "network_flow",
        "origin": "node-1",
        "source": "ebpf",
        "group": "net",
        "tags": ["egress", "tls"],
        "data": {"bytes": 1234, "ratio": 0.5, "dst": {"port": 443}, "ok": True},
        "resource": {"host": "node-1"},
    }

    q = pb.QueryRequest(type=["network_flow"])
    q.start.seconds = ts // 1_000_000_000 - 60
    (back,) = stub.Query(q, timeout=10).events
    assert back.id == resp.ids[0] and back.level == "WARN" and back.severity == "medium"
    assert back.timestamp.seconds * 1_000_000_000 + back.timestamp.nanos == ts
    assert dict(back.resource) == {"host": "node-1"} and list(back.tags) == ["egress", "tls"]
    assert back.data["bytes"] == 1234 and back.data["dst"]["port"] == 443


def test_log_stream_commits_all_in_order_with_given_and_assigned_ids(env: tuple[Proc, Any, str]) -> None:
    proc, stub, _ = env
    sent = [
        pb.Event(id="spawn-1", message="bash started", type="process_spawn", level="INFO"),
        pb.Event(message="curl started", type="process_spawn", level="DEBUG", severity="high"),
        pb.Event(id="spawn-3", message="sh started", type="process_spawn", level="ERROR"),
    ]
    resp = stub.LogStream(iter(sent), timeout=10)
    assert resp.accepted == 3 and resp.ids[0] == "spawn-1" and resp.ids[2] == "spawn-3" and resp.ids[1]
    got = _http_events(proc.url, type="process_spawn", direction="forward")
    assert [(e["id"], e["message"], e["level"], e["severity"]) for e in got] == [
        ("spawn-1", "bash started", "INFO", "low"),
        (resp.ids[1], "curl started", "DEBUG", "high"),
        ("spawn-3", "sh started", "ERROR", "high"),
    ]
    q = pb.QueryRequest(type=["process_spawn"], level=["error", "debug"], forward=True)
    assert [e.message for e in stub.Query(q, timeout=10).events] == ["curl started", "sh started"]


def test_an_invalid_event_in_a_stream_names_the_field_and_writes_nothing(env: tuple[Proc, Any, str]) -> None:
    proc, stub, _ = env
    sent = [
        pb.Event(message="fine", type="file_access"),
        pb.Event(message="bad", type="file_access", level="LOUD"),
    ]
    with pytest.raises(grpc.RpcError) as ei:
        stub.LogStream(iter(sent), timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (ei.value.details() or "").startswith("events[1].level: must be one of DEBUG, INFO, WARN, ERROR")
    assert _bad_request(ei.value) == [("events[1].level", "must be one of DEBUG, INFO, WARN, ERROR")]
    with pytest.raises(grpc.RpcError) as ei:
        stub.Log(pb.Event(message="x", type="file_access", severity="urgent"), timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _bad_request(ei.value) == [("event.severity", "must be one of low, medium, high, critical")]
    assert _http_events(proc.url, type="file_access") == []


def test_query_bounds_are_invalid_argument(env: tuple[Proc, Any, str]) -> None:
    _, stub, _ = env
    q = pb.QueryRequest()
    q.start.seconds, q.end.seconds = 2_000_000_000, 1_000_000_000
    with pytest.raises(grpc.RpcError) as ei:
        stub.Query(q, timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "end timestamp must not be before start time" in (ei.value.details() or "")
    with pytest.raises(grpc.RpcError) as ei:
        stub.Query(pb.QueryRequest(limit=10_000_000), timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_entries_limit_per_query" in (ei.value.details() or "")


def test_interceptor_guards_the_streaming_method_and_permissions(env: tuple[Proc, Any, str]) -> None:
    proc, stub, _ = env
    # behind a proxy header the anonymous loopback principal is not granted: LogStream is guarded too
    with pytest.raises(grpc.RpcError) as ei:
        stub.LogStream(
            iter([pb.Event(message="m", type="sneaky")]),
            metadata=[("x-forwarded-for", "10.0.0.1")],
            timeout=10,
        )
    assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED
    password = PASSWORD_RE.findall(proc.log())[0]
    r = httpx.post(
        proc.url + "/api/v1/auth/login", json={"username": "admin", "password": password}, timeout=30
    )
    assert r.status_code == 200, r.text
    admin = {"Authorization": f"Bearer {r.json()['data']['token']}"}
    viewer = httpx.post(
        proc.url + "/api/v1/admin/apikeys", json={"name": "v", "role": "viewer"}, headers=admin, timeout=10
    ).json()["data"]["key"]
    md = [("authorization", f"Bearer {viewer}")]
    for call in (
        lambda: stub.Log(pb.Event(message="m", type="sneaky"), metadata=md, timeout=10),
        lambda: stub.LogStream(iter([pb.Event(message="m", type="sneaky")]), metadata=md, timeout=10),
    ):
        with pytest.raises(grpc.RpcError) as ei:
            call()
        assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "events:write" in (ei.value.details() or "")
    assert stub.Query(pb.QueryRequest(type=["sneaky"]), metadata=md, timeout=10).events == []
    assert _http_events(proc.url, type="sneaky") == []

    # organisations: an ingest key of team-b logs into team-b only; each org's Query sees its own
    assert (
        httpx.post(proc.url + "/api/v1/admin/orgs", json={"name": "team-b"}, headers=admin).status_code == 200
    )
    in_b = {**admin, "X-Scope-OrgID": "team-b"}
    keys = {
        role: httpx.post(
            proc.url + "/api/v1/admin/apikeys",
            json={"name": f"b-{role}", "role": role},
            headers=in_b,
            timeout=10,
        ).json()["data"]["key"]
        for role in ("ingest", "viewer")
    }
    ok = stub.LogStream(
        iter([pb.Event(message="b only", type="org_check")]),
        metadata=[("authorization", f"Bearer {keys['ingest']}")],
        timeout=10,
    )
    assert ok.accepted == 1
    as_b = [("authorization", f"Bearer {keys['viewer']}")]
    assert [
        e.message for e in stub.Query(pb.QueryRequest(type=["org_check"]), metadata=as_b, timeout=10).events
    ] == ["b only"]
    assert stub.Query(pb.QueryRequest(type=["org_check"]), timeout=10).events == []  # the default org
    assert stub.Query(pb.QueryRequest(type=["org_check"]), metadata=md, timeout=10).events == []
    assert _http_events(proc.url, type="org_check") == []


def test_query_of_a_label_narrowed_role_sees_only_its_tagged_events(env: tuple[Proc, Any, str]) -> None:
    """A role narrowed to {team="payments"} queries over gRPC too, and gets only the events whose
    name=value tags match (as GET /api/v1/events); a regex-narrowed role is refused there."""
    proc, stub, _ = env
    password = PASSWORD_RE.findall(proc.log())[0]
    r = httpx.post(proc.url + "/api/v1/auth/login", json={"username": "admin", "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    admin = {"Authorization": f"Bearer {r.json()['data']['token']}"}
    keys = {}
    for name, selector in (("pay", '{team="payments"}'), ("pay_re", '{team=~"pay.*"}')):
        role = {"name": f"{name}-events", "permissions": ["events:read"], "selector": selector}
        assert httpx.post(proc.url + "/api/v1/admin/roles", json=role, headers=admin, timeout=10).status_code == 200
        keys[name] = httpx.post(proc.url + "/api/v1/admin/apikeys", json={"name": name, "role": f"{name}-events"},
                                headers=admin, timeout=10).json()["data"]["key"]
    ok = stub.LogStream(iter([pb.Event(message="refund", type="narrow_check", tags=["team=payments"]),
                              pb.Event(message="reindex", type="narrow_check", tags=["team=search"]),
                              pb.Event(message="untagged", type="narrow_check")]), timeout=10)
    assert ok.accepted == 3
    q = pb.QueryRequest(type=["narrow_check"])
    assert sorted(e.message for e in stub.Query(q, timeout=10).events) == ["refund", "reindex", "untagged"]
    pay = [("authorization", f"Bearer {keys['pay']}")]
    assert [e.message for e in stub.Query(q, metadata=pay, timeout=10).events] == ["refund"]
    with pytest.raises(grpc.RpcError) as ei:
        stub.Query(q, metadata=[("authorization", f"Bearer {keys['pay_re']}")], timeout=10)
    assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED and "narrowed" in (ei.value.details() or "")
