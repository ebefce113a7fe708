"""pyarrow (~50 MiB of RSS, docs/storage.md "Memory") is loaded by a running server only once it
stores logs or spans: a server that started and took metrics has no pyarrow library mapped; the
first log line loads it and is stored and read back."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from tests.support.peers import start_clearsight
from tests.support.rw_smoke import write_and_query_up


def _arrow_mapped(pid: int) -> bool:
    return "libarrow" in Path(f"/proc/{pid}/maps").read_text()


def test_pyarrow_is_loaded_by_the_first_log_line_not_before(tmp_path: Path) -> None:
    proc = start_clearsight(tmp_path)
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as c:
            now_ms = write_and_query_up(c)
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
