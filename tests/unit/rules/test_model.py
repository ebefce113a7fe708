"""Rule files: the model, and errors that name file, line, group, rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearsight.rules.model import RuleFileError, load_rule_files, parse_rule_text


def _check(expr: str) -> str | None:
    return "unexpected end of input" if expr.rstrip().endswith("==") else None


GOOD = """
groups:
  - name: api
    interval: 30s
    limit: 10
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {team: core}
      - alert: Down
        expr: up == 0
        for: 5m
        keep_firing_for: 1m
        labels: {severity: page, n: 3, b: true}
        annotations:
          summary: "{{ $labels.instance }} down"
"""


def test_a_good_file() -> None:
    [g] = parse_rule_text(GOOD, "r.yml", _check)
    assert (g.file, g.name, g.interval_ms, g.limit, g.line) == ("r.yml", "api", 30_000, 10, 3)
    rec, alert = g.rules
    assert (rec.kind, rec.name, rec.expr, rec.labels) == ("recording", "job:up:sum", "sum by (job) (up)",
                                                         (("team", "core"),))
    assert (alert.kind, alert.for_ms, alert.keep_firing_for_ms, alert.line) == ("alerting", 300_000, 60_000, 10)
    assert alert.labels == (("severity", "page"), ("n", "3"), ("b", "true"))
    assert alert.annotations == (("summary", "{{ $labels.instance }} down"),)


@pytest.mark.parametrize(("text", "expected"), [
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n",
     'f.yml:5: group "g", rule 1 ("A"): field "expr": could not parse expression: unexpected end of input'),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5x\n",
     'f.yml:6: group "g", rule 1 ("A"): field "for": not a valid duration string: "5x"'),
    ("groups:\n  - name: g\n    rules:\n      - record: 'a b'\n        expr: up\n",
     'f.yml:4: group "g", rule 1 ("a b"): field "record": invalid recording rule name: a b'),
    ("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n        for: 1m\n",
     "f.yml:6: group \"g\", rule 1 (\"r\"): field \"for\": invalid field 'for' in recording rule"),
    ("groups:\n  - name: g\n    rules:\n      - expr: up\n",
     "f.yml:4: group \"g\", rule 1: one of 'record' or 'alert' must be set"),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        record: r\n        expr: up\n",
     "only one of 'record' and 'alert' must be set"),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n",
     "f.yml:4: group \"g\", rule 1 (\"A\"): field 'expr' must be set in rule"),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        severity: page\n",
     'f.yml:6: group "g", rule 1 ("A"): field "severity": field severity not found in type rulefmt.Rule'),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations:\n"
     "          s: '{{ bogus }}'\n",
     'f.yml:6: group "g", rule 1 ("A"): field "annotations": template: __alert_A:1: function "bogus" not defined'),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        labels: {'a-b': x}\n",
     'field "labels": invalid label name: a-b'),
    ("groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n",
     'f.yml:4: group "g": field "name": groupname: "g" is repeated in the same file'),
    ("groups:\n  - rules: []\n", 'f.yml:2: group 1: field "name": Groupname must not be empty'),
    ("groups:\n  - name: g\n    interval: soon\n    rules: []\n",
     'f.yml:3: group "g": field "interval": not a valid duration string: "soon"'),
    ("groups:\n  - name: g\n    limit: -1\n    rules: []\n", 'f.yml:3: group "g": field "limit"'),
    ("rules: []\n", "f.yml:1: field rules not found in type rulefmt.RuleGroups"),
    ("groups: [\n", "f.yml:2: invalid YAML"),
])
def test_errors_name_file_line_group_rule_and_field(text: str, expected: str) -> None:
    with pytest.raises(RuleFileError) as e:
        parse_rule_text(text, "f.yml", _check)
    assert any(expected in err for err in e.value.errors), e.value.errors


def test_every_problem_is_listed() -> None:
    text = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n      - record: 'x y'\n" \
           "        expr: up\n"
    with pytest.raises(RuleFileError) as e:
        parse_rule_text(text, "f.yml", _check)
    assert len(e.value.errors) == 2


def test_globs_relative_to_a_base_dir_and_all_files_checked(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yml").write_text(GOOD)
    (tmp_path / "rules" / "b.yml").write_text(GOOD.replace("name: api", "name: other"))
    groups = load_rule_files(["rules/*.yml", "none/*.yml"], _check, base_dir=str(tmp_path))
    assert [(Path(g.file).name, g.name) for g in groups] == [("a.yml", "api"), ("b.yml", "other")]
    (tmp_path / "rules" / "c.yml").write_text("groups:\n  - name: x\n    rules:\n      - alert: A\n")
    with pytest.raises(RuleFileError, match=r"c\.yml:4: .*'expr' must be set"):
        load_rule_files(["rules/*.yml"], _check, base_dir=str(tmp_path))
