"""The ``auto`` series cap (pipeline/series_budget.py): half the host's memory at 12 KiB a series,
never below 10,000; a container's cgroup limit counts when lower than the RAM."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearsight.pipeline import series_budget as sb


def test_arithmetic() -> None:
    gib = 1 << 30
    assert sb.series_total_for(gib) == gib // 2 // (12 * 1024) == 43_690
    assert sb.series_total_for(4 * gib) == 174_762
    assert sb.series_total_for(64 << 20) == sb.MIN_SERIES  # a tiny host still takes some series
    assert sb.resolve_series_total(123) == (123, None)
    assert sb.resolve_series_total(0) == (0, None)  # 0: no cap


def test_auto_uses_the_lower_of_ram_and_the_cgroup_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = tmp_path / "memory.max"
    monkeypatch.setattr(sb, "_CGROUP_LIMITS", (limit,))
    limit.write_text("max\n")  # cgroup v2 without a limit
    ram = sb.host_memory_bytes()
    assert ram > 0
    limit.write_text(f"{512 << 20}\n")
    assert sb.host_memory_bytes() == min(ram, 512 << 20)
    n, memory = sb.resolve_series_total(sb.AUTO)
    assert memory == min(ram, 512 << 20) and n == sb.series_total_for(memory)
