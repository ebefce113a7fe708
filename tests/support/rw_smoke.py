"""One remote-write sample of ``up`` sent to a running server and read back by a query: the
smallest proof that a started server ingests and answers (the lazy-import tests check what a
server that did only this has loaded)."""

from __future__ import annotations

import time

import httpx

from clearsight.ingest.prompb_encode import encode_labels, encode_sample, len_field, snappy


def write_and_query_up(c: httpx.Client) -> int:
    """Writes ``up{job="a"} 1`` at now through ``c`` (a client on the server's URL), checks the
    query ``up`` answers it, and returns the sample's timestamp (ms)."""
    now_ms = int(time.time() * 1000)
    body = snappy(len_field(1, encode_labels([("__name__", "up"), ("job", "a")]) + len_field(2, encode_sample(now_ms, 1.0))))
    r = c.post("/api/v1/write", content=body, headers={
        "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0"})
    assert r.status_code == 204, r.text
    got = c.get("/api/v1/query", params={"query": "up"}).json()["data"]["result"]
    assert [s["value"][1] for s in got] == ["1"]
    return now_ms
