"""The native log API over HTTP on a real server: GET /api/v1/logs (filters, sort, cursor pages,
bounded total), /api/v1/logs/export (NDJSON, CSV), /api/v1/logs/context and the /ws/logs tail."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.peers import Proc, start_clearsight

S = 1_000_000_000
TRACE = "5b8efff798038103d269b633813fc60c"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, int]]:
    proc = start_clearsight(tmp_path_factory.mktemp("native"))
    try:
        base = (time.time_ns() // S - 900) * S
        api = [[str(base + i * S), f"GET /items/{i} 200"] for i in range(30)]
        web = [[str(base + i * S + 500), f"boom {i}"] for i in range(10)]
        same = [[str(base + 100 * S), f"same {i}"] for i in range(5)]  # one timestamp, five entries
        body = {"streams": [{"stream": {"service_name": "api", "level": "info", "host": "h1"}, "values": api},
                            {"stream": {"service_name": "web", "level": "ERROR", "host": "h2"}, "values": web},
                            {"stream": {"service_name": "dup"}, "values": same}]}
        assert httpx.post(f"{proc.url}/loki/api/v1/push", json=body, timeout=10).status_code == 204
        otlp = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "tr"}}]},
                                  "scopeLogs": [{"logRecords": [
                                      {"timeUnixNano": str(base + 5 * S), "body": {"stringValue": "traced"},
                                       "traceId": TRACE, "spanId": "eee19b7ec3c1b174"},
                                      {"timeUnixNano": str(base + 6 * S), "body": {"stringValue": "untraced"}}]}]}]}
        r = httpx.post(f"{proc.url}/v1/logs", json=otlp, timeout=10)
        assert r.status_code == 200, r.text
        yield proc, base
    finally:
        proc.stop()


def _logs(proc: Proc, path: str = "logs", **params: Any) -> httpx.Response:
    return httpx.get(f"{proc.url}/api/v1/{path}", params=params, timeout=30)


def _data(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()["data"]
    return out


def test_filters_sort_and_total(server: tuple[Proc, int]) -> None:
    proc, base = server
    rng = {"start": str(base), "end": str(base + 200 * S)}
    d = _data(_logs(proc, service="api", limit="3", sort="asc", **rng))
    assert [e["line"] for e in d["entries"]] == ["GET /items/0 200", "GET /items/1 200", "GET /items/2 200"]
    assert d["total"] == {"value": 30, "exact": True}
    assert d["entries"][0]["stream"] == {"host": "h1", "level": "info", "service_name": "api"}
    assert d["entries"][0]["ts"] == str(base)
    d = _data(_logs(proc, service="api", limit="2", **rng))  # newest first by default
    assert [e["line"] for e in d["entries"]] == ["GET /items/29 200", "GET /items/28 200"]
    d = _data(_logs(proc, level="error", text="boom 7", **rng))  # level is case-insensitive
    assert [e["line"] for e in d["entries"]] == ["boom 7"] and d["total"]["value"] == 1
    d = _data(_logs(proc, label="host=h2", regex="^boom [0-2]$", sort="asc", **rng))
    assert [e["line"] for e in d["entries"]] == ["boom 0", "boom 1", "boom 2"]
    d = _data(_logs(proc, service=["web", "api"], **rng))
    assert d["total"]["value"] == 40


def test_cursor_pages_cover_everything_once(server: tuple[Proc, int]) -> None:
    proc, base = server
    rng = {"start": str(base), "end": str(base + 200 * S)}
    for service, sort, want in (("api", "asc", [f"GET /items/{i} 200" for i in range(30)]),
                                ("dup", "asc", [f"same {i}" for i in range(5)]),
                                ("dup", "desc", [f"same {i}" for i in reversed(range(5))])):
        seen: list[str] = []
        cursor = None
        for _ in range(40):
            params = {"service": service, "sort": sort, "limit": "2", **rng, **({"cursor": cursor} if cursor else {})}
            d = _data(_logs(proc, **params))
            seen += [e["line"] for e in d["entries"]]
            cursor = d["next_cursor"]
            if cursor is None:
                break
        assert seen == want, (service, sort)


def test_trace_id_filter(server: tuple[Proc, int]) -> None:
    proc, base = server
    d = _data(_logs(proc, trace_id=TRACE, start=str(base), end=str(base + 200 * S)))
    assert [(e["line"], e["trace_id"], e["span_id"]) for e in d["entries"]] == [("traced", TRACE, "eee19b7ec3c1b174")]
    assert d["total"] == {"value": None, "exact": False}


def test_bad_input_is_a_precise_400(server: tuple[Proc, int]) -> None:
    proc, _ = server
    for params, words in (({"sort": "up"}, "invalid sort"), ({"cursor": "%%%"}, "invalid cursor"),
                          ({"trace_id": "xyz"}, "invalid trace_id"), ({"label": "nolabel"}, "invalid label filter"),
                          ({"regex": "(a"}, "invalid regex"), ({"limit": "0"}, "limit"),
                          ({"start": "10", "end": "5"}, "end timestamp")):
        r = _logs(proc, **params)
        assert r.status_code == 400 and words in r.text, (params, r.text)
    r = _logs(proc, "logs/export", format="xml")
    assert r.status_code == 400 and "ndjson or csv" in r.text
    r = _logs(proc, "logs/context", stream="app", ts="1")
    assert r.status_code == 400 and "JSON object" in r.text


def test_export_ndjson_and_csv(server: tuple[Proc, int]) -> None:
    proc, base = server
    rng = {"start": str(base), "end": str(base + 200 * S), "sort": "asc"}
    r = _logs(proc, "logs/export", format="ndjson", service="api", **rng)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert [row["line"] for row in rows] == [f"GET /items/{i} 200" for i in range(30)]
    r = _logs(proc, "logs/export", format="csv", service="web", limit="4", **rng)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0] == ["ts", "stream", "severity_text", "line", "trace_id", "attributes"]
    assert [row[3] for row in table[1:]] == ["boom 0", "boom 1", "boom 2", "boom 3"]
    assert json.loads(table[1][1]) == {"host": "h2", "level": "ERROR", "service_name": "web"}


def test_context_around_a_line(server: tuple[Proc, int]) -> None:
    proc, base = server
    stream = json.dumps({"service_name": "api", "level": "info", "host": "h1"})
    d = _data(_logs(proc, "logs/context", stream=stream, ts=str(base + 10 * S), before="2", after="3"))
    assert [e["line"] for e in d["before"]] == ["GET /items/8 200", "GET /items/9 200"]
    assert [e["line"] for e in d["at"]] == ["GET /items/10 200"]
    assert [e["line"] for e in d["after"]] == ["GET /items/11 200", "GET /items/12 200", "GET /items/13 200"]


def test_ws_logs_tails_with_the_filters(server: tuple[Proc, int]) -> None:
    import websockets

    proc, _ = server
    ws_url = proc.url.replace("http://", "ws://") + "/ws/logs"

    async def go() -> list[str]:
        q = httpx.QueryParams({"service": "live", "text": "keep", "start": str(time.time_ns() - S)})
        async with httpx.AsyncClient() as c, websockets.connect(f"{ws_url}?{q}") as ws:
            await asyncio.sleep(0.5)
            now = time.time_ns()
            r = await c.post(f"{proc.url}/loki/api/v1/push", json={"streams": [
                {"stream": {"service_name": "live"}, "values": [[str(now), "keep me"], [str(now + 1), "drop me"]]},
                {"stream": {"service_name": "other"}, "values": [[str(now), "keep other"]]}]})
            assert r.status_code == 204
            got: list[str] = []
            while not got:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                got += [v[1] for s in msg["streams"] for v in s["values"]]
            return got

    assert asyncio.run(go()) == ["keep me"]

    async def status(url: str) -> int:
        try:
            async with websockets.connect(url):
                return 101
        except websockets.InvalidStatus as e:
            return int(e.response.status_code)

    assert asyncio.run(status(f"{ws_url}?text=x")) == 403  # no stream filter
