"""Runs every promqltest file and fails when a file's pass count drops below the recorded floor.

The floor (promqltest_floor.json) only ever goes up: raise it when the engine improves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conformance import promqltest_runner as runner

FLOOR_PATH = Path(__file__).with_name("promqltest_floor.json")


def _floor() -> dict[str, int]:
    data: dict[str, int] = json.loads(FLOOR_PATH.read_text())
    return data


def test_conformance_files_present() -> None:
    files = runner.all_files()
    assert files, f"no promqltest files under {runner.promqltest_dir()}"
    names = {f.name for f in files}
    missing = set(_floor()) - names
    assert not missing, f"floor lists files that are gone: {sorted(missing)}"


@pytest.mark.parametrize("path", runner.all_files(), ids=lambda p: p.name)
def test_promqltest_file_meets_floor(path: Path) -> None:
    result = runner.run_file(path)
    floor = _floor().get(path.name, 0)
    assert result.total > 0
    failures = "\n".join(f"  line {ln}: {expr}: {why}" for ln, expr, why in result.failures[:20])
    assert result.passed >= floor, (
        f"{path.name}: {result.passed}/{result.total} passed, floor is {floor}\n{failures}")
