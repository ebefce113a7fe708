"""``clearsight rules check`` and ``clearsight rules test``: output and exit codes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from clearsight.cli.main import app

GOOD = "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: sum(up)\n      - alert: X\n" \
       "        expr: up == 0\n"


def test_check_counts_rules_and_names_problems(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yml", tmp_path / "bad.yml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("sum(up)", "sum(up"))
    r = CliRunner().invoke(app, ["rules", "check", str(good)])
    assert (r.exit_code, r.stdout) == (0, f"Checking {good}\n  SUCCESS: 2 rules found\n\n")
    r = CliRunner().invoke(app, ["rules", "check", str(good), str(bad), str(tmp_path / "missing.yml")])
    assert r.exit_code == 1
    assert f'{bad}:5: group "g", rule 1 ("a:b"): field "expr": could not parse expression' in r.stderr
    assert f"{tmp_path / 'missing.yml'}: no such file" in r.stderr


def test_test_command_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(GOOD)
    t = tmp_path / "t.yml"
    t.write_text("rule_files: [r.yml]\ntests:\n  - input_series: [{series: 'up', values: '0 0'}]\n"
                 "    promql_expr_test:\n      - expr: a:b\n        eval_time: 1m\n"
                 "        exp_samples: [{labels: 'a:b', value: 0}]\n")
    r = CliRunner().invoke(app, ["rules", "test", str(t)])
    assert (r.exit_code, r.stdout) == (0, f"Unit Testing:  {t}\n  SUCCESS\n\n")
    t.write_text(t.read_text().replace("value: 0", "value: 1"))
    r = CliRunner().invoke(app, ["rules", "test", str(t)])
    assert r.exit_code == 1
    assert r.stderr == ('  FAILED:\n    expr: "a:b", time: 1m,\n        exp: {__name__="a:b"} 1E+00\n'
                        '        got: {__name__="a:b"} 0E+00\n')
