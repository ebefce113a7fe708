"""Runs every promqltest file and fails when a file's pass count drops below the recorded floor.

The floor (promqltest_floor.json) only ever goes up: raise it when the engine improves.
"""

from __future__ import annotations

import json
import math
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


# ---- the DSL pieces the runner implements ----

def test_series_value_notation() -> None:
    vals = runner.parse_values("1+2x3 _ 5-1x2 _x2 stale 7x1 Inf -Inf")
    nums = [v if isinstance(v, float) else None for v in vals]
    assert nums[:4] == [1.0, 3.0, 5.0, 7.0]
    assert isinstance(vals[4], runner.Omitted)
    assert nums[5:8] == [5.0, 4.0, 3.0]
    assert all(isinstance(v, runner.Omitted) for v in vals[8:10])
    stale = vals[10]
    assert isinstance(stale, float) and math.isnan(stale)
    assert nums[11:15] == [7.0, 7.0, math.inf, -math.inf]


def test_histogram_literals_are_parsed_as_opaque_values() -> None:
    vals = runner.parse_values("{{schema:1 sum:3 count:22 buckets:[5 10 7]}}x2 1")
    assert [type(v).__name__ for v in vals] == ["Histogram", "Histogram", "Histogram", "float"]


def test_series_description_with_quoted_and_utf8_names() -> None:
    labels, rest = runner.parse_series_desc('{"my.metric", a="x\\"y", b=""} 1 2')
    assert labels == (("__name__", "my.metric"), ("a", 'x"y'))
    assert rest == "1 2"
    labels, rest = runner.parse_series_desc("up 0+1x2")
    assert labels == (("__name__", "up"),) and rest == "0+1x2"


def test_float_comparison_tolerance() -> None:
    assert runner.almost_equal(math.nan, math.nan)
    assert runner.almost_equal(1.0, 1.0 + 1e-9)
    assert not runner.almost_equal(1.0, 1.001)
    assert not runner.almost_equal(0.0, 1e-300)
    assert runner.almost_equal(math.inf, math.inf)
    assert not runner.almost_equal(math.inf, -math.inf)


def test_script_parsing_of_eval_variants() -> None:
    cmds = runner.parse_script(
        "load 1m\n  m{a=\"1\"} 1 2\n\n"
        "eval instant at 1m m\n  expect ordered\n  expect warn regex: foo.*\n  m{a=\"1\"} 2\n\n"
        "eval_fail instant at 0 m\n  expected_fail_message boom\n\n"
        "eval range from 0 to 2m step 1m m\n  m{a=\"1\"} 1 2 _\n"
    )
    load, inst, fail, rng = cmds
    assert isinstance(load, runner.LoadCmd) and load.interval_ms == 60_000
    assert isinstance(inst, runner.EvalCmd) and inst.is_ordered() and inst.eval_time == 60_000
    assert "warn" in inst.expects
    assert isinstance(fail, runner.EvalCmd) and fail.is_fail() and fail.fail_message == "boom"
    assert isinstance(rng, runner.EvalCmd) and rng.is_range and rng.end == 120_000 and rng.step == 60_000


def test_runner_counts_a_small_script(tmp_path: Path) -> None:
    script = tmp_path / "mini.test"
    script.write_text(
        "load 1m\n  m{a=\"1\"} 1+1x5\n\n"
        "eval instant at 2m m\n  m{a=\"1\"} 3\n\n"
        "eval instant at 2m m\n  m{a=\"1\"} 4\n\n"
        "eval range from 0 to 2m step 1m sum(m)\n  {} 1 2 3\n"
    )
    result = runner.run_file(script)
    assert (result.passed, result.total) == (2, 3)
    assert result.failures[0][0] == 7
