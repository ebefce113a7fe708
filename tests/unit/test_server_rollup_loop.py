"""The server's rollup loop waits one ``storage.rollup_interval`` before its first pass, so a pass
catching up on hours of data does not run while the first queries after a (re)start are answered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from clearsight.config import Config
from clearsight.server import _rollup_loop
from clearsight.store.embedded.duckdb_store import EmbeddedMetricsStore


def _run_loop(store: EmbeddedMetricsStore, cfg: Config, passes: int) -> tuple[list[str], list[float]]:
    events: list[str] = []
    sleeps: list[float] = []

    def run_rollups(now_ms: int, max_blocks: int = 24) -> None:
        events.append("pass")

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        events.append("sleep")
        if events.count("pass") == passes:
            raise asyncio.CancelledError

    store.run_rollups = run_rollups  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(_rollup_loop(store, cfg, sleep=sleep))
    return events, sleeps


def test_the_first_rollup_pass_runs_one_interval_after_start(tmp_path: Path) -> None:
    cfg = Config()
    cfg.storage.rollup_interval = "2m"
    store = EmbeddedMetricsStore(tmp_path / "data")
    try:
        events, sleeps = _run_loop(store, cfg, passes=2)
    finally:
        store.close()
    assert events == ["sleep", "pass", "sleep", "pass", "sleep"]
    assert sleeps == [120.0, 120.0, 120.0]


def test_no_rollup_loop_when_rollups_are_off(tmp_path: Path) -> None:
    cfg = Config()
    cfg.storage.rollups = False
    store = EmbeddedMetricsStore(tmp_path / "data")
    calls: list[float] = []

    async def sleep(seconds: float) -> None:
        calls.append(seconds)

    try:
        asyncio.run(_rollup_loop(store, cfg, sleep=sleep))
    finally:
        store.close()
    assert calls == []
