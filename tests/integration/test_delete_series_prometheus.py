"""``delete_series`` against Debian's real Prometheus 2.42 (``--web.enable-admin-api``): the same data
remote-written to both, the same deletions, the same query answers afterwards; and a deletion racing
ingestion through the real server, then ``kill -9``: what was deleted stays deleted, nothing
acknowledged after the deletion is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from tests.support.peers import Proc, start_clearsight, start_prometheus

RW = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
# The loopback anonymous principal as an administrator (org:manage): no key to create.
ADMIN = "server:\n  enable_admin_api: true\nauth:\n  anonymous_role: admin\n"
DELETE = "/api/v1/admin/tsdb/delete_series"
STEP = 15_000
N = 200  # 50 minutes of samples: inside Prometheus' appendable head window


def _result(proc: Proc, path: str, params: dict[str, Any]) -> Any:
    r = httpx.get(proc.url + path, params=params, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    data = body["data"]
    if isinstance(data, dict) and "result" in data:
        return sorted(data["result"], key=lambda s: sorted(s["metric"].items()))
    return sorted(data, key=lambda s: sorted(s.items())) if data and isinstance(data[0], dict) else data


def _delete(proc: Proc, params: list[tuple[str, str]]) -> None:
    r = httpx.post(proc.url + DELETE, params=params, timeout=60)  # repeated match[]: in the query string
    assert r.status_code == 204, (proc.name, r.text)


def test_same_deletions_same_answers_as_prometheus(tmp_path: Path) -> None:
    cs = start_clearsight(tmp_path / "cs", config_yaml=ADMIN)
    prom = None
    try:
        prom = start_prometheus(tmp_path / "prom", "global:\n  scrape_interval: 1h\n")
        t0 = (int(time.time()) // 60 * 60 - 55 * 60) * 1000 + 7  # samples off the whole second
        series = [
            TimeSeries(
                [("__name__", "dm_a"), ("job", "a"), ("i", "1")],
                [(t0 + k * STEP, float(k)) for k in range(N)],
            ),
            TimeSeries(
                [("__name__", "dm_a"), ("job", "b"), ("i", "1")], [(t0 + k * STEP, k * 0.5) for k in range(N)]
            ),
            TimeSeries(
                [("__name__", "dm_a"), ("job", "c"), ("i", "2")],
                [(t0 + k * STEP, -float(k)) for k in range(N)],
            ),
            TimeSeries(
                [("__name__", "dm_b"), ("job", "a"), ("only_b", "x")],
                [(t0 + k * STEP, 1.0) for k in range(N)],
            ),
        ]
        body = encode_snappy(WriteRequest(series))
        for p in (cs, prom):
            r = httpx.post(p.url + "/api/v1/write", content=body, headers=RW, timeout=60)
            assert r.status_code == 204, (p.name, r.text)
        s = t0 / 1000
        deletions = [
            [
                ("match[]", 'dm_a{job="a"}'),
                ("start", str(s + 600)),
                ("end", str(s + 1200)),
            ],  # 10th to 20th minute
            [("match[]", "dm_b")],  # the whole series, all time
            [("match[]", '{job="b"}'), ("match[]", '{i="2"}'), ("start", str(s + 2700))],  # from 45 min on
            # inclusive bounds on exact sample timestamps (RFC 3339 with milliseconds)
            [
                ("match[]", 'dm_a{job="c"}'),
                ("start", _rfc3339(t0 + 40 * STEP)),
                ("end", _rfc3339(t0 + 40 * STEP)),
            ],
            [("match[]", 'dm_a{job="nothing"}')],
        ]
        at = s + 55 * 60 + 0.5
        queries = ['{__name__=~"dm_.*"}[1h]', "count_over_time(dm_a[1h])", "sum by (job) (dm_a)"]
        compared = 0
        for params in deletions:
            for p in (cs, prom):
                _delete(p, params)
            for q in queries:
                mine = _result(cs, "/api/v1/query", {"query": q, "time": at})
                theirs = _result(prom, "/api/v1/query", {"query": q, "time": at})
                assert mine == theirs, (params, q)
                compared += len(mine)
            rng = {"query": 'dm_a{i="1"}', "start": s + 3.3, "end": at, "step": 60}
            mine = _result(cs, "/api/v1/query_range", rng)
            assert mine == _result(prom, "/api/v1/query_range", rng), params
            # Prometheus 2.42 keeps listing a series with every sample deleted until its head block is
            # compacted; Clearsight drops it at once. Otherwise the listings are the same.
            sel = {"match[]": '{__name__=~"dm_.*"}', "start": s - 60, "end": at}
            with_samples = [
                m["metric"] for m in _result(prom, "/api/v1/query", {"query": queries[0], "time": at})
            ]
            theirs = [x for x in _result(prom, "/api/v1/series", sel) if x in with_samples]
            assert _result(cs, "/api/v1/series", sel) == theirs, params
            compared += len(mine)
        assert compared > 20  # real answers were compared, not empty ones
        raw = _result(cs, "/api/v1/query", {"query": '{__name__=~"dm_.*"}[1h]', "time": at})
        assert {m["metric"]["job"]: len(m["values"]) for m in raw} == {"a": N - 41, "b": 180, "c": 179}
        # dm_b (the only series with the label only_b) is deleted whole: Prometheus 2.42 still lists
        # its label values until head compaction (docs/api.md), Clearsight no longer does.
        values = [_result(p, "/api/v1/label/only_b/values", {}) for p in (prom, cs)]
        assert values == [["x"], []]
        # Bad input: the same status and error type as Prometheus.
        for bad in (
            [],
            [("match[]", "dm_a{")],
            [("match[]", "dm_a"), ("start", "x")],
            [("match[]", "a"), ("end", "abc")],
        ):
            answers = [httpx.post(p.url + DELETE, params=bad, timeout=60) for p in (prom, cs)]
            assert [(r.status_code, r.json()["errorType"]) for r in answers] == [(400, "bad_data")] * 2, bad
        # '{}' selects nothing: Prometheus 2.42 answers 204 and deletes nothing, Clearsight refuses it
        # (as its /api/v1/series does) rather than let an operator believe everything was deleted.
        empty = [httpx.post(p.url + DELETE, params={"match[]": "{}"}, timeout=60) for p in (prom, cs)]
        assert [r.status_code for r in empty] == [204, 400]
        # clean_tombstones: Prometheus compacts its tombstones away, Clearsight has none; answers unchanged.
        for p in (cs, prom):
            r = httpx.post(p.url + "/api/v1/admin/tsdb/clean_tombstones", timeout=60)
            assert r.status_code == 204, (p.name, r.text)
        for q in queries:
            assert _result(cs, "/api/v1/query", {"query": q, "time": at}) == _result(
                prom, "/api/v1/query", {"query": q, "time": at}
            ), q
    finally:
        if prom is not None:
            prom.stop()
        cs.stop()


def _wait_acked(acked: list[Any], n: int, writer: threading.Thread, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(acked) < n:
        assert writer.is_alive() and time.monotonic() < deadline, (
            f"only {len(acked)} of {n} writes acknowledged"
        )
        time.sleep(0.01)


def _rfc3339(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def test_deletion_racing_ingest_then_kill9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cs = start_clearsight(tmp_path / "cs", data_dir=data, config_yaml=ADMIN)
    try:
        t0 = int(time.time() * 1000) - 20 * 60_000
        old = TimeSeries(
            [("__name__", "race"), ("job", "old")], [(t0 + k * STEP, float(k)) for k in range(40)]
        )
        r = httpx.post(cs.url + "/api/v1/write", content=encode_snappy(WriteRequest([old])), headers=RW)
        assert r.status_code == 204
        acked: list[tuple[float, float, int]] = []  # (sent, acknowledged, ts), monotonic clock
        stop = threading.Event()

        def ingest() -> None:
            with httpx.Client(timeout=60) as c:
                while not stop.is_set():
                    ts = int(time.time() * 1000)
                    body = encode_snappy(
                        WriteRequest([TimeSeries([("__name__", "race"), ("job", "live")], [(ts, 1.0)])])
                    )
                    sent = time.monotonic()
                    if c.post(cs.url + "/api/v1/write", content=body, headers=RW).status_code == 204:
                        acked.append((sent, time.monotonic(), ts))
                    time.sleep(0.002)

        writer = threading.Thread(target=ingest)
        writer.start()
        try:
            _wait_acked(acked, 30, writer)
            began = time.monotonic()
            # Everything of job="old" and job="live" from t0 + 10 min to an hour ahead.
            r = httpx.post(
                cs.url + DELETE,
                data={"match[]": "race", "start": str((t0 + 600_000) / 1000), "end": str(time.time() + 3600)},
                timeout=60,
            )
            assert r.status_code == 204, r.text
            returned = time.monotonic()
            _wait_acked(acked, len(acked) + 30, writer)
        finally:
            stop.set()
            writer.join(60)
        cs.kill9()
        cs = start_clearsight(tmp_path / "cs2", data_dir=data, config_yaml=ADMIN)
        res = _result(cs, "/api/v1/query", {"query": "race[2h]", "time": time.time() + 1})
        stored = {m["metric"]["job"]: [round(float(v[0]) * 1000) for v in m["values"]] for m in res}
        assert stored["old"] == [t0 + k * STEP for k in range(40) if k * STEP < 600_000]
        live = set(stored.get("live", []))
        before = {ts for _, ack, ts in acked if ack < began}
        after = {ts for sent, _, ts in acked if sent > returned}
        assert before and len(after) >= 20
        assert not live & before, "samples acknowledged before the deletion came back after kill -9"
        assert after <= live, f"acknowledged after the deletion, lost: {sorted(after - live)[:5]}"
    finally:
        cs.stop()
