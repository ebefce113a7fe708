"""Every log line of a real server process is one JSON object (issue 9: opening ``/docs`` used to
write non-JSON warnings into the JSON log): after the API descriptions, error answers, a failing
scrape target and a bad remote-write, the only other lines are the two documented human-facing
banners (the first start's one-time admin password on stderr, never in the log, and the
"running at" line on stdout)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson

from tests.support.peers import free_port, start_clearsight

BANNERS = (
    "Clearsight first start: created user",
    "    ",  # the password line of that banner
    "It is shown only this once.",
    "Clearsight is running at ",
)


def test_every_log_line_is_json(tmp_path: Path) -> None:
    dead = free_port()  # nothing listens: the scrape fails (a WARNING line)
    cfg = (
        "global:\n  scrape_interval: 1s\n"
        f"scrape_configs:\n  - job_name: gone\n    static_configs: [{{targets: ['127.0.0.1:{dead}']}}]\n"
        "log:\n  access_log: true\n"
    )
    cs = start_clearsight(tmp_path, config_yaml=cfg)
    try:
        for path in (
            "/docs",
            "/openapi.json",
            "/redoc",
            "/api/v1/nope",
            "/api/v1/query?query=up(",
            "/federate",
        ):
            assert httpx.get(cs.url + path, timeout=30).status_code in (200, 400, 404), path
        r = httpx.post(
            cs.url + "/api/v1/write", content=b"junk", headers={"Content-Type": "application/x-protobuf"}
        )
        assert r.status_code == 400
        for _ in range(100):  # until the failed scrape was logged
            if f"127.0.0.1:{dead}" in cs.log():
                break
            httpx.get(cs.url + "/ready", timeout=30)
            time.sleep(0.1)
    finally:
        cs.stop()
    lines = [line for line in cs.log_path.read_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        if line.startswith(BANNERS):
            continue
        records.append(orjson.loads(line))  # raises on any other line
    assert all(isinstance(r, dict) and {"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    loggers = {r["logger"] for r in records}
    assert "clearsight.access" in loggers  # the access log is among them
    assert any(r["level"] == "warning" and str(dead) in orjson.dumps(r).decode() for r in records), loggers
