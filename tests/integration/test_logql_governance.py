"""LogQL reads under the query governor, wired by ``server.build`` (in process, real stores): they
run on the query pool, and a client that goes away stops its query after the store read in
flight (no further chunk is read) and frees the slot."""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import clearsight.query.logql.evaluator as evaluator
from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.server import Built, build
from tests.integration.test_query_governance import _until, serve

S = 1_000_000_000
BASE = (time.time_ns() // S - 600) * S


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Built]]:
    tmp: Path = tmp_path_factory.mktemp("logql-gov")
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp / "data"), "query.max_concurrency": 1})
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            values = [[str(BASE + i * S), f'{{"n": {i}}}'] for i in range(200)]
            r = c.post("/loki/api/v1/push", json={"streams": [{"stream": {"app": "gov"}, "values": values}]})
            assert r.status_code == 204, r.text
            yield c, built
    finally:
        built.store.close()
        if built.log_store is not None:
            built.log_store.close()


def test_logql_reads_run_on_the_query_pool(served: tuple[TestClient, Built]) -> None:
    c, built = served
    assert built.log_store is not None
    threads: set[str] = set()
    orig = built.log_store.select

    def spy(*args: Any, **kw: Any) -> Any:
        threads.add(threading.current_thread().name)
        return orig(*args, **kw)

    built.log_store.select = spy  # type: ignore[method-assign]
    try:
        r = c.get("/loki/api/v1/query_range", params={"query": '{app="gov"} | json | n > 100', "limit": "5",
                                                      "start": str(BASE), "end": str(BASE + 300 * S)})
        assert r.status_code == 200, r.text
    finally:
        built.log_store.select = orig  # type: ignore[method-assign]
    assert threads and all(t.startswith("clearsight-query") for t in threads)


def test_a_disconnected_client_stops_its_logql_query(served: tuple[TestClient, Built],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _, built = served
    gov = built.services.query_governor
    assert gov is not None and built.log_store is not None
    monkeypatch.setattr(evaluator, "CHUNK_ENTRIES", 10)  # 200 lines: 20 chunks if nothing stopped it
    gate, entered = threading.Event(), threading.Event()
    reads: list[int] = []
    orig = built.log_store.select

    def held(*args: Any, **kw: Any) -> Any:
        reads.append(1)
        entered.set()
        assert gate.wait(30)
        return orig(*args, **kw)

    built.log_store.select = held  # type: ignore[method-assign]
    try:
        with serve(create_app(built.services)) as port:
            canceled = gov.stats().canceled
            s = socket.create_connection(("127.0.0.1", port))
            q = urllib.parse.urlencode({"query": 'sum(count_over_time({app="gov"} | json [10m]))',
                                        "time": str(BASE + 300 * S)})
            s.sendall(f"GET /loki/api/v1/query?{q} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            assert entered.wait(30)
            s.close()
            _until(lambda: gov.stats().canceled == canceled + 1)
            gate.set()
            _until(lambda: gov.stats().running == 0)
    finally:
        built.log_store.select = orig  # type: ignore[method-assign]
    assert len(reads) == 1
