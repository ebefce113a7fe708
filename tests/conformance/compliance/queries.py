"""The compliance query list and its variant expansion.

The list is the PromQL compliance tester's ``promql-test-queries.yml``, kept next to the promqltest
files in ``../shared/conformance/compliance`` (``$CLEARSIGHT_SHARED`` overrides ``../shared``).
Templated queries (``{{.range}}``, ``{{.binOp}}`` ...) expand to every combination of the values
below, which are the tester's variant values; the first variant argument varies slowest, like the
tester orders them.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conformance.promqltest_runner import shared_dir

DEFAULT_QUERY_FILE = shared_dir() / "conformance" / "compliance" / "promql-test-queries.yml"

VARIANT_VALUES: dict[str, tuple[str, ...]] = {
    "range": ("1s", "15s", "1m", "5m", "15m", "1h"),
    "offset": ("1m", "5m", "10m"),
    "simpleAggrOp": ("sum", "avg", "max", "min", "count", "stddev", "stdvar"),
    "simpleTimeAggrOp": ("sum", "avg", "max", "min", "count", "stddev", "stdvar", "absent", "last"),
    "topBottomOp": ("topk", "bottomk"),
    "quantile": ("-0.5", "0.1", "0.5", "0.75", "0.95", "0.90", "0.99", "1", "1.5"),
    "arithBinOp": ("+", "-", "*", "/", "%", "^"),
    "compBinOp": ("==", "!=", "<", ">", "<=", ">="),
    "binOp": ("+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">="),
    "simpleMathFunc": ("abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "round"),
    "extrapolatedRateFunc": ("delta", "rate", "increase"),
    "clampFunc": ("clamp_min", "clamp_max"),
    "instantRateFunc": ("idelta", "irate"),
    "dateFunc": ("day_of_month", "day_of_week", "days_in_month", "hour", "minute", "month", "year"),
    "smoothingFactor": ("0.1", "0.5", "0.8"),
    "trendFactor": ("0.1", "0.5", "0.8"),
}

_PLACEHOLDER = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


@dataclass(frozen=True)
class TestCase:
    query: str
    should_fail: bool = False
    skip_comparison: bool = False
    template: str = ""


def render(template: str, args: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in args:
            raise KeyError(f"query {template!r} uses {{{{.{name}}}}} but does not list it in variant_args")
        return args[name]

    return _PLACEHOLDER.sub(sub, template)


def expand(template: str, variant_args: list[str]) -> list[str]:
    for name in variant_args:
        if name not in VARIANT_VALUES:
            raise KeyError(f"unknown variant arg {name!r} in {template!r}")
    if not variant_args:
        return [render(template, {})]
    combos = itertools.product(*(VARIANT_VALUES[n] for n in variant_args))
    return [render(template, dict(zip(variant_args, combo, strict=True))) for combo in combos]


def load(path: Path = DEFAULT_QUERY_FILE) -> list[TestCase]:
    doc = yaml.safe_load(path.read_text())
    out: list[TestCase] = []
    for entry in doc["test_cases"]:
        template = str(entry["query"])
        for q in expand(template, list(entry.get("variant_args") or [])):
            out.append(
                TestCase(
                    query=q,
                    should_fail=bool(entry.get("should_fail", False)),
                    skip_comparison=bool(entry.get("skip_comparison", False)),
                    template=template,
                )
            )
    return out
