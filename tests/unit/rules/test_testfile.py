"""The promtool test-file format: expanding notation, series, Go/Prometheus formatting, report."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from clearsight.cli.rules import MemoryBackend
from clearsight.model.samples import is_stale_nan
from clearsight.rules.testfile import (
    FileResult,
    expand_values,
    format_e,
    go_duration,
    labels_string,
    model_duration,
    parse_series,
    report,
    run_file,
)


def test_expanding_notation() -> None:
    assert expand_values("0+10x3") == [0, 10, 20, 30]
    assert expand_values("5-1x2 7x2") == [5, 4, 3, 7, 7, 7]
    assert expand_values("1 _ _x2 3") == [1, None, None, None, 3]
    assert expand_values("-2.5e1 Inf -Inf")[:2] == [-25.0, math.inf]
    stale = expand_values("stale")[0]
    assert stale is not None and is_stale_nan(stale)
    with pytest.raises(ValueError, match="invalid value"):
        expand_values("1 two")


def test_series_and_labels_strings() -> None:
    lbls = parse_series('up{job="a", instance="h:1",x="q\\"uote"}')
    assert lbls == (("__name__", "up"), ("instance", "h:1"), ("job", "a"), ("x", 'q"uote'))
    assert labels_string(lbls) == '{__name__="up", instance="h:1", job="a", x="q\\"uote"}'
    assert parse_series("{}") == ()
    with pytest.raises(ValueError):
        parse_series("up{job=a}")


@pytest.mark.parametrize(("ms", "model", "go"), [(0, "0s", "0s"), (300_000, "5m", "5m0s"), (5_400_000, "1h30m", "1h30m0s"),
                                                 (1_500, "1s500ms", "1.5s"), (86_400_000, "1d", "24h0m0s")])
def test_durations(ms: int, model: str, go: str) -> None:
    assert (model_duration(ms), go_duration(ms)) == (model, go)


def test_format_e() -> None:
    assert [format_e(v) for v in (1.0, 0.25, 120.0, -3.0, math.inf)] == ["1E+00", "2.5E-01", "1.2E+02", "-3E+00",
                                                                           "+Inf"]


def test_report_is_promtools_layout() -> None:
    out, err, code = report([FileResult("a.yml", True, []), FileResult("b.yml", False, ["    e1", "    e2"])])
    assert out == "Unit Testing:  a.yml\n  SUCCESS\n\nUnit Testing:  b.yml\n\n\n\n"
    assert err == "  FAILED:\n    e1\n    e2\n"
    assert code == 1


def test_a_file_runs_against_the_in_memory_engine(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text("groups:\n  - name: g\n    rules:\n      - alert: Hot\n        expr: t > 5\n"
                                    "        for: 2m\n")
    (tmp_path / "t.yml").write_text("""
rule_files: [r.yml]
tests:
  - input_series:
      - {series: 't{room="a"}', values: '1 9 9 9 9'}
    alert_rule_test:
      - {eval_time: 2m, alertname: Hot}
      - eval_time: 3m
        alertname: Hot
        exp_alerts: [{exp_labels: {room: a}}]
    promql_expr_test:
      - expr: ALERTS_FOR_STATE
        eval_time: 3m
        exp_samples: [{labels: 'ALERTS_FOR_STATE{alertname="Hot", room="a"}', value: 60}]
""")
    assert run_file(str(tmp_path / "t.yml"), MemoryBackend) == FileResult(str(tmp_path / "t.yml"), True, [])
    (tmp_path / "bad.yml").write_text("rule_files: [r.yml]\ntests:\n  - bogus: 1\n")
    res = run_file(str(tmp_path / "bad.yml"), MemoryBackend)
    assert not res.ok and "field bogus not found in type main.testGroup" in res.errors[0]
