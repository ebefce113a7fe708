"""Random and generated queries against a real server's Loki query API: never a 5xx, and every
4xx is Loki's plain-text error."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.peers import Proc, start_clearsight
from tests.unit.query.logql.test_eval_fuzz import metric, pipeline, selector

S = 1_000_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, int]]:
    proc = start_clearsight(tmp_path_factory.mktemp("logql-fuzz"))
    try:
        base = (time.time_ns() // S - 300) * S
        values = [[str(base + i * S), f'{{"level": "info", "n": {i}}}' if i % 2 else f"level=warn n={i} d={i}ms"]
                  for i in range(1, 61)]
        r = httpx.post(f"{proc.url}/loki/api/v1/push", json={"streams": [
            {"stream": {"app": "a", "env": "p"}, "values": values},
            {"stream": {"app": "b", "env": "p"}, "values": values[:20]}]}, timeout=10)
        assert r.status_code == 204, r.text
        yield proc, base
    finally:
        proc.stop()


def _check(proc: Proc, base: int, path: str, params: dict[str, str]) -> None:
    r = httpx.get(f"{proc.url}/loki/api/v1/{path}", params={"start": str(base), "end": str(base + 70 * S), **params},
                  timeout=60)
    assert r.status_code < 500, (params, r.status_code, r.text)
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("text/plain"), r.text
    else:
        assert r.json()


_SETTINGS = settings(max_examples=80, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(st.one_of(metric(1), st.tuples(selector, pipeline).map(" ".join)), st.sampled_from(["query", "query_range"]),
       st.sampled_from(["", "1s", "15s", "1m"]))
def test_generated_queries_never_5xx(server: tuple[Proc, int], query: str, path: str, step: str) -> None:
    proc, base = server
    params = {"query": query, "limit": "50"}
    if path == "query":
        params["time"] = str(base + 60 * S)
    elif step:
        params["step"] = step
    _check(proc, base, path, params)


@_SETTINGS
@given(st.text(max_size=80), st.sampled_from(["query", "query_range", "labels", "series", "index/stats",
                                              "index/volume", "detected_fields", "patterns"]))
def test_random_text_never_5xx(server: tuple[Proc, int], text: str, path: str) -> None:
    proc, base = server
    key = "match[]" if path == "series" else "query"
    _check(proc, base, path, {key: text})
    _check(proc, base, path, {key: '{app="a"} ' + text})
