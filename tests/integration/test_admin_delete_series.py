"""Prometheus' admin ``delete_series`` / ``clean_tombstones`` in process (real store, real app): what a
deletion removes from every read path (query, series, labels, label values, federation, remote-read,
catalog) in the caller's organisation only, the admin permission, and bad input as precise 400s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.server import _guarded, build
from tests.integration.test_remote_read import decode_sampled, matcher, read_request
from tests.support.inproc import app_client

RW = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
DELETE = "/api/v1/admin/tsdb/delete_series"
STEP = 15_000
N = 40


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from app_client(tmp_path / "data", {"server.enable_admin_api": "true"}, trust_tenant_header=True)


def _series(t0: int) -> list[TimeSeries]:
    return [
        TimeSeries(
            [("__name__", "del_m"), ("job", j), ("only_" + j, "1")],
            [(t0 + i * STEP, float(i)) for i in range(N)],
        )
        for j in ("a", "b")
    ]


def _org(tenant: str) -> dict[str, str]:
    return {"X-Scope-OrgID": tenant} if tenant else {}


def _write(c: TestClient, series: list[TimeSeries], tenant: str, **headers: str) -> None:
    r = c.post(
        "/api/v1/write",
        content=encode_snappy(WriteRequest(series)),
        headers={**RW, **_org(tenant), **headers},
    )
    assert r.status_code == 204, r.text


def _raw(c: TestClient, tenant: str, at_ms: int, **headers: str) -> dict[str, list[int]]:
    """job -> sample timestamps of del_m over the whole written span."""
    r = c.get(
        "/api/v1/query",
        params={"query": "del_m[1h]", "time": at_ms / 1000},
        headers={**_org(tenant), **headers},
    )
    assert r.status_code == 200, r.text
    return {
        s["metric"]["job"]: [round(float(v[0]) * 1000) for v in s["values"]]
        for s in r.json()["data"]["result"]
    }


def test_delete_series_removes_the_range_from_every_read_path_of_one_tenant(client: TestClient) -> None:
    t0 = int(time.time() * 1000) - N * STEP  # the newest samples inside federation's 5 m lookback
    at = t0 + N * STEP
    everything = [t0 + i * STEP for i in range(N)]
    for tenant in ("org1", "org2"):
        _write(client, _series(t0), tenant)
    lo, hi = t0 + 10 * STEP, t0 + 19 * STEP  # inclusive: samples 10..19
    r = client.post(
        DELETE,
        data={"match[]": 'del_m{job="a"}', "start": str(lo / 1000), "end": str(hi / 1000)},
        headers={"X-Scope-OrgID": "org1"},
    )
    assert r.status_code == 204 and r.content == b""
    kept = [t for t in everything if not lo <= t <= hi]
    assert _raw(client, "org1", at) == {"a": kept, "b": everything}
    assert _raw(client, "org2", at) == {"a": everything, "b": everything}
    # The range reads as a gap: no sample of a in [lo, hi] through query_range either.
    rr = client.get(
        "/api/v1/query_range",
        params={"query": 'del_m{job="a"}', "start": lo / 1000, "end": hi / 1000, "step": 15},
        headers={"X-Scope-OrgID": "org1"},
    ).json()["data"]["result"]
    assert [float(v[1]) for v in rr[0]["values"]] == [9.0] * 10  # the last sample before the gap, looked back
    # Remote-read of the range returns nothing of a.
    body = read_request([(lo, hi, [matcher(0, "__name__", "del_m")])])
    rd = client.post(
        "/api/v1/read",
        content=body,
        headers={
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Scope-OrgID": "org1",
        },
    )
    assert rd.status_code == 200
    got = decode_sampled(rd.content)[0]
    assert {dict(k)["job"]: [t for t, _ in v] for k, v in got.items()} == {
        "b": [t for t in everything if lo <= t <= hi]
    }

    # A whole series (PUT, RFC 3339 and no end): gone from series, labels, label values, federation, catalog.
    r = client.put(
        DELETE,
        params={"match[]": '{only_b="1"}', "start": "2000-01-01T00:00:00Z"},
        headers={"X-Scope-OrgID": "org1"},
    )
    assert r.status_code == 204
    assert _raw(client, "org1", at) == {"a": kept}
    h = {"X-Scope-OrgID": "org1"}
    series = client.get("/api/v1/series", params={"match[]": "del_m"}, headers=h).json()["data"]
    assert [s["job"] for s in series] == ["a"]
    assert "only_b" not in client.get("/api/v1/labels", headers=h).json()["data"]
    assert client.get("/api/v1/label/job/values", headers=h).json()["data"] == ["a"]
    fed = client.get("/federate", params={"match[]": "del_m"}, headers=h).text
    assert 'job="a"' in fed and 'job="b"' not in fed
    assert "only_b" in str(client.get("/api/v1/labels", headers={"X-Scope-OrgID": "org2"}).json()["data"])
    # clean_tombstones has nothing to do: 204, and the data stays as it is.
    assert client.post("/api/v1/admin/tsdb/clean_tombstones", headers=h).status_code == 204
    assert client.put("/api/v1/admin/tsdb/clean_tombstones", headers=h).status_code == 204
    assert _raw(client, "org1", at) == {"a": kept}
    # The deleted range can be written again (out-of-order window permitting).
    _write(client, [TimeSeries([("__name__", "del_m"), ("job", "a"), ("only_a", "1")], [(lo, 42.0)])], "org1")
    assert _raw(client, "org1", at)["a"] == sorted([*kept, lo])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "no match[] parameter provided"),
        ({"match[]": "del_m{"}, 'invalid parameter "match[]"'),
        ({"match[]": "{}"}, 'invalid parameter "match[]"'),
        ({"match[]": 'del_m{job=~"("}'}, 'invalid parameter "match[]"'),
        ({"match[]": "del_m", "start": "yesterday"}, 'invalid parameter "start"'),
        ({"match[]": "del_m", "end": "NaN"}, 'invalid parameter "end"'),
    ],
)
def test_bad_input_is_400_bad_data_and_deletes_nothing(
    client: TestClient, data: dict[str, str], message: str
) -> None:
    t0 = int(time.time() * 1000) - 30 * 60_000
    _write(client, _series(t0), "org1")
    r = client.post(DELETE, data=data, headers={"X-Scope-OrgID": "org1"})
    assert r.status_code == 400, r.text
    assert r.json()["errorType"] == "bad_data" and message in r.json()["error"], r.json()
    assert {k: len(v) for k, v in _raw(client, "org1", t0 + N * STEP).items()} == {"a": N, "b": N}


def test_end_before_start_deletes_nothing_like_prometheus(client: TestClient) -> None:
    t0 = int(time.time() * 1000) - 30 * 60_000
    _write(client, _series(t0), "org1")
    r = client.post(
        DELETE,
        data={"match[]": "del_m", "start": str(t0 / 1000 + 100), "end": str(t0 / 1000)},
        headers={"X-Scope-OrgID": "org1"},
    )
    assert r.status_code == 204
    assert {k: len(v) for k, v in _raw(client, "org1", t0 + N * STEP).items()} == {"a": N, "b": N}


def test_snapshot_is_not_supported(client: TestClient) -> None:
    r = client.post("/api/v1/admin/tsdb/snapshot")
    assert r.status_code == 501 and r.json()["errorType"] == "unavailable"


def test_admin_permission_and_organisation_scope(tmp_path: Path) -> None:
    cfg = load_config(
        env={}, overrides={"storage.data_dir": str(tmp_path / "data"), "server.enable_admin_api": "true"}
    )
    built = build(cfg)
    assert built.auth is not None
    try:
        built.auth.directory.create_org("org-b")
        keys: dict[tuple[str, str], str] = {
            (org, role): built.auth.keys.create(org, f"{role}-key", role)[1]
            for org in ("default", "org-b")
            for role in ("admin", "editor", "ingest")
        }
        c = TestClient(
            _guarded(create_app(built.services), cfg, built.auth),
            client=("10.0.0.5", 40000),
            base_url="http://127.0.0.1",
        )

        def auth(org: str, role: str) -> dict[str, Any]:
            return {"Authorization": f"Bearer {keys[(org, role)]}"}

        t0 = int(time.time() * 1000) - 30 * 60_000
        for org in ("default", "org-b"):
            _write(c, _series(t0), "", **auth(org, "ingest"))
        everything = {"a": N, "b": N}
        for role in ("editor", "ingest"):
            r = c.post(DELETE, data={"match[]": "del_m"}, headers=auth("default", role))
            assert r.status_code == 403, (role, r.text)
        assert {
            k: len(v) for k, v in _raw(c, "", t0 + N * STEP, **auth("default", "admin")).items()
        } == everything
        # org-b's administrator deletes everything it can see: its own organisation's series only,
        # and the tenant header cannot point it at another organisation.
        r = c.post(DELETE, data={"match[]": '{__name__=~".+"}'}, headers=auth("org-b", "admin"))
        assert r.status_code == 204, r.text
        r = c.post(
            DELETE,
            data={"match[]": '{__name__=~".+"}'},
            headers={**auth("org-b", "admin"), "X-Scope-OrgID": "default"},
        )
        assert r.status_code == 403
        assert _raw(c, "", t0 + N * STEP, **auth("org-b", "admin")) == {}
        # A deletion is audited in the organisation it ran in (requests refused by the permission
        # check never reach the route: nothing to record there).
        audit_b = c.get("/api/v1/audit", headers=auth("org-b", "admin")).json()["data"]
        mine = [
            (x["action"], x["outcome"], x["actor"]) for x in audit_b if x["action"] == "tsdb.delete_series"
        ]
        assert mine == [("tsdb.delete_series", "success", "apikey:admin-key")]
        detail = next(x["detail"] for x in audit_b if x["action"] == "tsdb.delete_series")
        assert detail["match"] == ['{__name__=~".+"}'] and detail["samples_deleted"] == 2 * N
        assert detail["start_ms"] < detail["end_ms"]
        audit_a = c.get("/api/v1/audit", headers=auth("default", "admin")).json()["data"]
        assert [x for x in audit_a if x["action"] == "tsdb.delete_series"] == []
    finally:
        built.store.close()
        if built.log_store is not None:
            built.log_store.close()
        built.auth.close()


_SELECTORS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["del_m", 'del_m{job="zz"}', "{}", '{job=~"("}', "del_m{", 'nothing{a="b"}']),
)
_TIMES = st.one_of(
    st.none(), st.text(max_size=12), st.sampled_from(["0", "-1e20", "1e30", "NaN", "2020-01-01T00:00:00Z"])
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_SELECTORS, max_size=3), _TIMES, _TIMES)
def test_fuzzed_parameters_are_204_or_400_and_a_400_deletes_nothing(
    client: TestClient, selectors: list[str], start: str | None, end: str | None
) -> None:
    # del_m{job="a"} and {job="b"} hold samples; only selectors matching nothing may be sent
    # without a 400 here, so that any change to the data is a bug.
    t0 = int(time.time() * 1000) - 30 * 60_000
    if not getattr(client, "_fuzz_written", False):
        _write(client, _series(t0), "fz")
        client._fuzz_written = True  # type: ignore[attr-defined]
    params: list[tuple[str, str]] = [("match[]", s) for s in selectors if "del_m" not in s or "zz" in s]
    params += [(k, v) for k, v in (("start", start), ("end", end)) if v is not None]
    r = client.post(DELETE, params=params, headers={"X-Scope-OrgID": "fz"})
    assert r.status_code in (204, 400), r.text
    if r.status_code == 400:
        assert r.json()["errorType"] == "bad_data"
    before = _raw(client, "fz", int(time.time() * 1000))
    assert {k: len(v) for k, v in before.items()} == {"a": N, "b": N}
