"""LogQL end to end over HTTP: lines pushed through Loki's push API into a real server come back
through /loki/api/v1/query_range and /query as Loki shapes them (streams, matrix, vector, scalar),
with Loki's plain-text 400s for bad queries and the governor's deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.peers import Proc, start_clearsight

S = 1_000_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, int]]:
    proc = start_clearsight(tmp_path_factory.mktemp("logql"))
    try:
        base = (time.time_ns() // S - 600) * S  # ten minutes ago, on a whole second
        api = [[str(base + i * S), json.dumps({"level": "error" if i % 4 == 0 else "info", "status": 500 if i % 4 == 0
                                               else 200, "latency_ms": i})] for i in range(1, 41)]
        web = [[str(base + i * S), f"level=info took={i}ms"] for i in range(1, 21)]
        body = {"streams": [{"stream": {"app": "api", "env": "prod"}, "values": api},
                            {"stream": {"app": "web", "env": "prod"}, "values": web}]}
        r = httpx.post(f"{proc.url}/loki/api/v1/push", json=body, timeout=10)
        assert r.status_code == 204, r.text
        yield proc, base
    finally:
        proc.stop()


def _get(proc: Proc, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{proc.url}/loki/api/v1/{path}", params=params, timeout=30)


def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    assert out["status"] == "success"
    data: dict[str, Any] = out["data"]
    return data


def test_log_query_with_pipeline_returns_streams(server: tuple[Proc, int]) -> None:
    proc, base = server
    data = _ok(_get(proc, "query_range", query='{app="api"} | json | level="error" | keep app, level, status',
                    start=str(base), end=str(base + 60 * S), limit="3", direction="forward"))
    assert data["resultType"] == "streams"
    assert data["result"] == [{"stream": {"app": "api", "level": "error", "status": "500"},
                               "values": [[str(base + 4 * S), '{"level": "error", "status": 500, "latency_ms": 4}'],
                                          [str(base + 8 * S), '{"level": "error", "status": 500, "latency_ms": 8}'],
                                          [str(base + 12 * S), '{"level": "error", "status": 500, "latency_ms": 12}']]}]
    summary = data["stats"]["summary"]
    # the store-side | json prefilter reads only the 10 error lines of the 40
    assert summary["totalEntriesReturned"] == 3 and summary["totalLinesProcessed"] == 10
    data = _ok(_get(proc, "query_range", query='{app="web"} | logfmt | took > 18ms | line_format "{{.took}}"',
                    start=str(base), end=str(base + 60 * S)))
    assert [v[1] for s in data["result"] for v in s["values"]] == ["20ms", "19ms"]  # backward by default


def test_metric_range_query_is_a_matrix(server: tuple[Proc, int]) -> None:
    proc, base = server
    data = _ok(_get(proc, "query_range", query='sum by (level) (count_over_time({app="api"} | json [10s]))',
                    start=str(base + 10 * S), end=str(base + 40 * S), step="10s"))
    assert data["resultType"] == "matrix"
    # windows (base, base+10s], ... : errors at 4, 8 | 12, 16, 20 | 24, 28 | 32, 36, 40
    assert data["result"] == [
        {"metric": {"level": "error"}, "values": [[base // S + 10, "2"], [base // S + 20, "3"], [base // S + 30, "2"],
                                                  [base // S + 40, "3"]]},
        {"metric": {"level": "info"}, "values": [[base // S + 10, "8"], [base // S + 20, "7"], [base // S + 30, "8"],
                                                 [base // S + 40, "7"]]},
    ]


def test_metric_instant_query_is_a_vector_or_scalar(server: tuple[Proc, int]) -> None:
    proc, base = server
    t = base + 40 * S
    data = _ok(_get(proc, "query", query='topk(1, sum by (app) (rate({env="prod"}[40s])))', time=str(t)))
    assert data["resultType"] == "vector"
    assert data["result"] == [{"metric": {"app": "api"}, "value": [t // S, "1"]}]
    data = _ok(_get(proc, "query", query='sum(avg_over_time({app="web"} | logfmt | unwrap duration(took) [1m]))',
                    time=str(t)))
    assert data["result"] == [{"metric": {}, "value": [t // S, "0.0105"]}]  # mean of 1..20 ms
    data = _ok(_get(proc, "query", query="1 + 2 * 3", time=str(t)))
    assert data == {"resultType": "scalar", "result": [t // S, "7"], "stats": data["stats"]}


@pytest.mark.parametrize(("path", "params", "status", "needle"), [
    ("query_range", {"query": 'sum(rate({app="api"}))'}, 400, "parse error at line 1, col 21: syntax error"),
    ("query", {"query": '{app="api"} | json | x > "y"'}, 400, "parse error at line 1, col 26"),
    ("query", {"query": 'count_over_time({app="web"} | json [1h])'}, 400, "pipeline error: 'JSONParserErr'"),
    ("query_range", {"query": 'rate({app="api"}[1m])', "step": "1ms"}, 400, "exceeded maximum resolution"),
    ("query_range", {"query": 'rate({app="api"}[1m])', "step": "-5"}, 400, "zero or negative query resolution"),
    ("query", {"query": 'count_over_time({app="api"} | json [1h])', "timeout": "1ns"}, 504, "timed out"),
])
def test_bad_queries_are_plain_text_errors(server: tuple[Proc, int], path: str, params: dict[str, str], status: int,
                                           needle: str) -> None:
    proc, _ = server
    r = _get(proc, path, **params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert needle in r.text


def test_index_stats_and_volume(server: tuple[Proc, int]) -> None:
    proc, base = server
    rng = {"start": str(base), "end": str(base + 60 * S)}
    r = _get(proc, "index/stats", query='{env="prod"}', **rng)
    assert r.status_code == 200, r.text
    api_bytes = sum(len(json.dumps({"level": "error" if i % 4 == 0 else "info", "status": 500 if i % 4 == 0 else 200,
                                    "latency_ms": i})) for i in range(1, 41))
    web_bytes = sum(len(f"level=info took={i}ms") for i in range(1, 21))
    assert r.json() == {"streams": 2, "chunks": 2, "entries": 60, "bytes": api_bytes + web_bytes}
    data = _ok(_get(proc, "index/volume", query='{env="prod"}', targetLabels="app", **rng))
    assert data == {"resultType": "vector", "result": [
        {"metric": {"app": "api"}, "value": [base // S + 60, str(api_bytes)]},
        {"metric": {"app": "web"}, "value": [base // S + 60, str(web_bytes)]}]}
    data = _ok(_get(proc, "index/volume", query='{env="prod"}', limit="1", **rng))  # grouped by the selector's env
    assert data["result"] == [{"metric": {"env": "prod"}, "value": [base // S + 60, str(api_bytes + web_bytes)]}]
    data = _ok(_get(proc, "index/volume_range", query='{app="web"}', step="30s", **rng))
    # windows (base-30s, base], (base, base+30s], (base+30s, base+60s]: web lines at 1..20 s
    assert data["resultType"] == "matrix"
    assert data["result"] == [{"metric": {"app": "web"}, "values": [[base // S + 30, str(web_bytes)]]}]
    assert _get(proc, "index/stats", **rng).status_code == 400


def test_tail_streams_new_entries(server: tuple[Proc, int]) -> None:
    import asyncio

    import websockets

    proc, _base = server
    ws_url = proc.url.replace("http://", "ws://") + "/loki/api/v1/tail"

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        q = httpx.QueryParams({"query": '{app="tail"} | logfmt | level="warn"', "limit": "2",
                               "start": str(time.time_ns() - 60 * S)})
        now = time.time_ns()
        old = [[str(now - (10 - i) * S), f"level=warn n={i}"] for i in range(3)]
        async with httpx.AsyncClient() as c:
            r = await c.post(f"{proc.url}/loki/api/v1/push", json={"streams": [{"stream": {"app": "tail"},
                                                                                "values": old}]})
            assert r.status_code == 204
            async with websockets.connect(f"{ws_url}?{q}") as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
                new = [[str(time.time_ns()), "level=warn n=new"], [str(time.time_ns() + 1), "level=info n=skip"]]
                r = await c.post(f"{proc.url}/loki/api/v1/push", json={"streams": [{"stream": {"app": "tail"},
                                                                                    "values": new}]})
                assert r.status_code == 204
                second = json.loads(await asyncio.wait_for(ws.recv(), 10))
        return first["streams"], second["streams"]

    first, second = asyncio.run(go())
    # the newest `limit` (2) entries since start, oldest first; then only what arrived since
    assert [v[1] for s in first for v in s["values"]] == ["level=warn n=1", "level=warn n=2"]
    assert first[0]["stream"] == {"app": "tail", "level": "warn", "n": "1"}
    assert [v[1] for s in second for v in s["values"]] == ["level=warn n=new"]


def test_tail_refuses_bad_queries_and_foreign_origins(server: tuple[Proc, int]) -> None:
    import asyncio

    import websockets

    proc, _ = server
    ws_url = proc.url.replace("http://", "ws://") + "/loki/api/v1/tail"

    async def status(url: str, **kw: Any) -> int:
        try:
            async with websockets.connect(url, **kw):
                return 101
        except websockets.InvalidStatus as e:
            return int(e.response.status_code)

    for params in ({"query": 'rate({app="x"}[1m])'}, {"query": "{"}, {"query": '{app="x"}', "limit": "0"}):
        assert asyncio.run(status(f"{ws_url}?{httpx.QueryParams(params)}")) == 403
    good_params = httpx.QueryParams({"query": '{app="x"}'})
    good = f"{ws_url}?{good_params}"
    assert asyncio.run(status(good, origin="http://evil.example")) == 403
    assert asyncio.run(status(good)) == 101


def test_detected_fields_and_patterns(server: tuple[Proc, int]) -> None:
    proc, base = server
    rng = {"start": str(base), "end": str(base + 60 * S)}
    r = _get(proc, "detected_fields", query='{app="web"}', **rng)
    assert r.status_code == 200, r.text
    assert r.json() == {"fields": [{"label": "level", "type": "string", "cardinality": 1, "parsers": ["logfmt"]},
                                   {"label": "took", "type": "duration", "cardinality": 20, "parsers": ["logfmt"]}],
                        "limit": 1000}
    data = _ok(_get(proc, "patterns", query='{app="web"}', step="30s", **rng))
    assert data == [{"pattern": "level=info took=<_>", "samples": [[base // S, 20]]}]
    assert _get(proc, "patterns", query='rate({app="web"}[1m])', **rng).status_code == 400


def test_detected_labels_and_format_query(server: tuple[Proc, int]) -> None:
    proc, base = server
    r = _get(proc, "detected_labels", query='{env="prod"}', start=str(base), end=str(base + 60 * S))
    assert r.status_code == 200, r.text
    assert r.json() == {"detectedLabels": [{"label": "app", "cardinality": 2}, {"label": "env", "cardinality": 1}]}
    data = _ok(_get(proc, "format_query", query='sum   by(level)(rate({app="api"}|json|x>1[5m]))'))
    assert data == 'sum by (level) (rate({app="api"} | json | x>1 [5m]))'
    assert _get(proc, "format_query", query="sum(").status_code == 400
