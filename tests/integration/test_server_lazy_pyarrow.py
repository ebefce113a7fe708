"""pyarrow (~50 MiB of RSS, docs/storage.md "Memory") is loaded by a running server only once it
stores logs or spans: a server that started and took metrics has no pyarrow library mapped; the
first log line loads it and is stored and read back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson

from clearsight.ingest.prompb_encode import encode_labels, encode_sample, len_field, snappy
from tests.support.peers import start_clearsight


def _arrow_mapped(pid: int) -> bool:
    return "libarrow" in Path(f"/proc/{pid}/maps").read_text()


def test_pyarrow_is_loaded_by_the_first_log_line_not_before(tmp_path: Path) -> None:
    proc = start_clearsight(tmp_path)
    try:
        now_ms = int(time.time() * 1000)
        body = snappy(len_field(1, encode_labels([("__name__", "up"), ("job", "a")]) + len_field(2, encode_sample(now_ms, 1.0))))
        with httpx.Client(base_url=proc.url, timeout=30) as c:
            r = c.post("/api/v1/write", content=body, headers={
                "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                "X-Prometheus-Remote-Write-Version": "0.1.0"})
            assert r.status_code == 204, r.text
            got = c.get("/api/v1/query", params={"query": "up"}).json()["data"]["result"]
            assert [s["value"][1] for s in got] == ["1"]
            assert not _arrow_mapped(proc.pid)

            push = {"streams": [{"stream": {"app": "lazy"}, "values": [[str(now_ms * 1_000_000), "hello arrow"]]}]}
            r = c.post("/loki/api/v1/push", content=orjson.dumps(push), headers={"Content-Type": "application/json"})
            assert r.status_code == 204, r.text
            lines = c.get("/loki/api/v1/query_range", params={
                "query": '{app="lazy"}', "start": str((now_ms - 60_000) * 1_000_000),
                "end": str((now_ms + 60_000) * 1_000_000)}).json()["data"]["result"]
            assert [v[1] for s in lines for v in s["values"]] == ["hello arrow"]
            assert _arrow_mapped(proc.pid)
    finally:
        proc.stop()
