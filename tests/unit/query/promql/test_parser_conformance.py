"""Parses every ``eval`` query of the shared promqltest files (Prometheus' own PromQL tests).

Queries not marked to fail must parse. Queries marked ``expect fail`` (or ``eval_fail``) fail at
*evaluation* in Prometheus for all current files (duplicate series, bad regex replacement, NaN
parameters, ...), so they must parse too, except the few listed in ``PARSE_LEVEL_FAILURES``.

The shared directory is ``$CLEARSIGHT_SHARED`` (default: the repository's parent + ``/shared``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from clearsight.query.promql.parser import ParseError, parse
from clearsight.query.promql.printer import format_expr
from tests.unit.query.promql.test_parser_properties import normalized

REPO = Path(__file__).resolve().parents[4]
SHARED = Path(os.environ.get("CLEARSIGHT_SHARED", str(REPO.parent / "shared")))
PROMQLTEST = SHARED / "conformance" / "promqltest"

_EVAL = re.compile(
    r"^eval(?P<variant>_fail|_ordered|_warn|_info)?\s+"
    r"(?:instant\s+at\s+\S+|range\s+from\s+\S+\s+to\s+\S+\s+step\s+\S+)\s+(?P<query>.*)$")

# Queries that Prometheus rejects while *parsing* although the file expects a failure; none today.
PARSE_LEVEL_FAILURES: frozenset[str] = frozenset()

# Queries that parse in Prometheus but not here, with the reason. Keep this empty or explained.
KNOWN_GAPS: dict[str, str] = {}


@dataclass(frozen=True)
class EvalCase:
    file: str
    line: int
    query: str
    expect_fail: bool
    fail_msg: str | None


def _cases() -> list[EvalCase]:
    out: list[EvalCase] = []
    if not PROMQLTEST.is_dir():
        return out
    for path in sorted(PROMQLTEST.glob("*.test")):
        lines = path.read_text(encoding="utf-8").split("\n")
        for i, line in enumerate(lines):
            m = _EVAL.match(line)
            if m is None:
                continue
            fail = m.group("variant") == "_fail"
            msg: str | None = None
            j = i + 1
            while j < len(lines) and lines[j].strip().startswith("expect"):
                stripped = lines[j].strip()
                if stripped.startswith("expect fail"):
                    fail = True
                    if ":" in stripped:
                        msg = stripped.split(":", 1)[1].strip()
                j += 1
            out.append(EvalCase(path.name, i + 1, m.group("query").strip(), fail, msg))
    return out


CASES = _cases()


def test_conformance_files_are_present() -> None:
    assert PROMQLTEST.is_dir(), f"missing {PROMQLTEST} (set CLEARSIGHT_SHARED)"
    assert len(CASES) > 2000


def test_every_eval_query_parses_as_prometheus_does() -> None:
    parsed = 0
    failures: list[str] = []
    gaps_seen: set[str] = set()
    for c in CASES:
        should_parse = c.query not in PARSE_LEVEL_FAILURES
        try:
            parse(c.query)
        except ParseError as e:
            if c.query in KNOWN_GAPS:
                gaps_seen.add(c.query)
                continue
            if should_parse:
                failures.append(f"{c.file}:{c.line}: {c.query!r}: {e}")
            continue
        if not should_parse:
            failures.append(f"{c.file}:{c.line}: {c.query!r} parsed but Prometheus rejects it")
        parsed += 1
    assert failures == []
    # Stale gap entries must be removed once fixed.
    assert gaps_seen == set(KNOWN_GAPS)
    not_fail = sum(1 for c in CASES if not c.expect_fail)
    print(f"\nconformance eval queries: {len(CASES)} total, {not_fail} expected to succeed, "
          f"{parsed} parsed, {len(gaps_seen)} known gaps")


def test_every_eval_query_round_trips_through_the_printer() -> None:
    for c in CASES:
        if c.query in KNOWN_GAPS:
            continue
        tree = parse(c.query)
        text = format_expr(tree)
        assert normalized(parse(text)) == normalized(tree), (c.file, c.line, c.query, text)


# --- the PromQL compliance tester's query list --------------------------------------------------

COMPLIANCE_FILE = SHARED / "conformance" / "compliance" / "promql-test-queries.yml"
# One representative value per template variable (the compliance runner expands all of them).
_VARIANTS = {
    "arithBinOp": "+", "binOp": "==", "clampFunc": "clamp_min", "compBinOp": ">",
    "dateFunc": "day_of_month", "extrapolatedRateFunc": "rate", "offset": "5m", "quantile": "0.5",
    "instantRateFunc": "irate", "range": "1m", "simpleAggrOp": "sum", "simpleMathFunc": "abs",
    "simpleTimeAggrOp": "avg", "topBottomOp": "topk",
}


def _compliance_queries() -> list[tuple[str, bool]]:
    import yaml

    doc = yaml.safe_load(COMPLIANCE_FILE.read_text(encoding="utf-8"))
    out = []
    for entry in doc["test_cases"]:
        q = str(entry["query"])
        for name, value in _VARIANTS.items():
            q = q.replace("{{." + name + "}}", value)
        out.append((q, bool(entry.get("should_fail", False))))
    return out


def test_compliance_queries_parse() -> None:
    cases = _compliance_queries()
    assert len(cases) > 100
    assert all("{{" not in q for q, _ in cases)
    parse_failures = []
    for q, should_fail in cases:
        try:
            tree = parse(q)
        except ParseError as e:
            parse_failures.append((q, should_fail, e.message))
            continue
        assert normalized(parse(format_expr(tree))) == normalized(tree), q
    # The only parse-level failure on the list; the other should_fail queries fail at evaluation
    # (bad label_replace regex or label name).
    assert parse_failures == [
        ('{__name__=~".*"}', True, "vector selector must contain at least one non-empty matcher")]
