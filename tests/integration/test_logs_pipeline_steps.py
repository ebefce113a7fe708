"""The log pipeline steps in a real server, over HTTP: a Loki push has its PII replaced by keyed
hashes (body and structured metadata), repeats collapsed with repeat_count, and the tenant's rate
limit answers 429 with Retry-After (or 400 over the burst) with nothing of the refused push stored."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.peers import Proc, start_clearsight

S = 1_000_000_000
CONFIG = """
logs:
  pipeline:
    pii: {enabled: true, custom: {token: 'tok_[a-z0-9]{8}'}}
    dedup_window: 10s
    rate_lines: 1
    rate_lines_burst: 40
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    workdir = tmp_path_factory.mktemp("logsteps")
    proc = start_clearsight(workdir, config_yaml=CONFIG)
    try:
        yield proc
    finally:
        proc.stop()


def _push(proc: Proc, app: str, lines: list[tuple[int, str] | tuple[int, str, dict[str, str]]]) -> httpx.Response:
    values: list[list[Any]] = [[str(v[0]), v[1], *([v[2]] if len(v) > 2 else [])] for v in lines]  # type: ignore[misc]
    return httpx.post(f"{proc.url}/loki/api/v1/push", json={"streams": [{"stream": {"app": app}, "values": values}]},
                      timeout=10)


def _query(proc: Proc, q: str, start: int) -> list[tuple[dict[str, str], str]]:
    r = httpx.get(f"{proc.url}/loki/api/v1/query_range", params={"query": q, "start": str(start),
                  "end": str(start + 120 * S), "direction": "forward", "limit": "100"}, timeout=30)
    assert r.status_code == 200, r.text
    return [(s["stream"], v[1]) for s in r.json()["data"]["result"] for v in s["values"]]


def test_pii_is_hashed_and_repeats_collapse(server: Proc) -> None:
    base = (time.time_ns() // S - 300) * S
    r = _push(server, "pii", [
        (base + S, "login bob@example.com card 4111 1111 1111 1111 key tok_abcd1234", {"user": "bob@example.com"}),
        (base + 2 * S, "login bob@example.com card 4111 1111 1111 1111 key tok_abcd1234", {"user": "bob@example.com"}),
        (base + 3 * S, "ssn 123-45-6789 of alice@example.org"),
        (base + 4 * S, "login bob@example.com card 4111 1111 1111 1111 key tok_abcd1234", {"user": "bob@example.com"}),
    ])
    assert r.status_code == 204, r.text
    got = _query(server, '{app="pii"}', base)
    assert len(got) == 2
    (labels0, line0), (_, line1) = got
    for secret in ("bob@example.com", "4111", "tok_abcd1234", "123-45-6789", "alice@"):
        assert secret not in line0 and secret not in line1 and secret not in str(labels0)
    assert line0.startswith("login <email:") and "card <card:" in line0 and "key <token:" in line0
    assert line1.startswith("ssn <ssn:") and " of <email:" in line1
    # the metadata value hashes like the same value in the body, and the repeat count is kept
    tok = line0.split()[1]
    filtered = _query(server, f'{{app="pii"}} | repeat_count="3" | user="{tok}"', base)
    assert [line for _, line in filtered] == [line0]
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'clearsight_log_lines_deduplicated_total{tenant="default"} 2.0' in metrics
    # after dedup: email + card + token in the first body and the metadata email (4), ssn + email (2)
    assert 'clearsight_log_pii_replacements_total{tenant="default"} 6.0' in metrics
    key = Path(server.log_path).parent / "data" / "logs_pii.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_rate_limit_refuses_whole_push(server: Proc) -> None:
    base = (time.time_ns() // S - 200) * S
    over = _push(server, "rate", [(base + i, f"line {i}") for i in range(41)])
    assert over.status_code == 400 and "burst of 40" in over.text
    lines = [(base + i, f"line {i}") for i in range(30)]
    assert _push(server, "rate", lines).status_code == 204
    refused = _push(server, "rate", [(base + 100 + i, f"more {i}") for i in range(20)])
    assert refused.status_code == 429, refused.text
    assert "lines rate limit" in refused.text and int(refused.headers["retry-after"]) >= 9
    stored = _query(server, '{app="rate"}', base - S)
    assert sorted(line for _, line in stored) == sorted(line for _, line in lines)


def test_enrichment_with_fixed_attributes_and_registry_hosts(tmp_path: Path) -> None:
    """logs.pipeline.enrich: fixed resource attributes for every tenant; logs.tenants.<t>.enrich.hosts
    adds what an agent heartbeat told the resource registry about the host a line names."""
    proc = start_clearsight(tmp_path, config_yaml="""
logs:
  pipeline:
    enrich: {resource: {deployment.environment: prod}}
  tenants:
    default: {enrich: {hosts: true}}
""")
    try:
        hb = {"id": "host:web-7", "kind": "host", "hostname": "web-7", "os": "Debian GNU/Linux 12",
              "kernel": "6.1.0-18-amd64", "machine_id": "4c4c4544", "tags": {"rack": "r3"}}
        assert httpx.post(f"{proc.url}/api/v1/resources/heartbeat", json=hb, timeout=10).status_code == 200
        now = time.time_ns()
        r = httpx.post(f"{proc.url}/loki/api/v1/push", timeout=10, json={"streams": [
            {"stream": {"app": "shop", "host": "web-7"}, "values": [[str(now), "order 1 paid"]]},
            {"stream": {"app": "shop", "host": "db-1"}, "values": [[str(now + 1), "order 2 paid"]]}]})
        assert r.status_code == 204, r.text
        got = httpx.get(f"{proc.url}/api/v1/logs", params={"label": "app=shop", "since": "5m"}, timeout=10)
        assert got.status_code == 200, got.text
        by_line = {e["line"]: e.get("resource", {}) for e in got.json()["data"]["entries"]}
        assert by_line == {
            "order 1 paid": {"deployment.environment": "prod", "host.id": "4c4c4544", "host.os": "Debian GNU/Linux 12",
                             "host.kernel": "6.1.0-18-amd64", "host.tag.rack": "r3"},
            "order 2 paid": {"deployment.environment": "prod"}}  # an unknown host: the fixed attributes only
    finally:
        proc.stop()
