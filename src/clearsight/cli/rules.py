"""``clearsight rules check FILE...`` and ``clearsight rules test FILE...`` (promtool's formats).

This module wires the concrete pieces the rules package is given: the PromQL parser as the
expression checker, and for unit tests an in-memory series store with the PromQL engine.

The engine, the store and the rules package are imported when a command runs, not when the
``clearsight`` command line starts (``clearsight agent`` stays light).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from clearsight.model.labels import Labels
    from clearsight.query.promql.result import QueryResult
    from clearsight.rules.testfile import TestBackend
    from clearsight.rules.types import Vector

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Check and unit-test rule files.")


def check_expr(expr: str) -> str | None:
    """The PromQL parser's message for a bad expression, None when it parses."""
    from clearsight.query.promql.parser import ParseError, parse

    try:
        parse(expr)
    except ParseError as e:
        return str(e)
    return None


def vector_of(result: QueryResult) -> Vector:
    """An engine result as the rules package takes it (a scalar is one sample without labels)."""
    from clearsight.rules.types import QueryFailed, Sample

    if result.result_type == "scalar":
        return [Sample((), result.scalar_value)]
    if result.result_type != "vector":
        raise QueryFailed("rule result is not a vector or scalar")
    out: Vector = []
    for s in result.series:
        if s.histograms and s.histograms[0] is not None:
            continue  # native histogram results are not recorded (the store keeps floats only)
        out.append(Sample(s.labels, float(s.values[0])))
    return out


class MemoryBackend:
    """Series in memory and the PromQL engine over them (what promtool's test suite uses)."""

    def __init__(self) -> None:
        from clearsight.query.promql.engine import Engine
        from clearsight.store.memory import MemorySeriesSelector

        self.selector = MemorySeriesSelector()
        self.engine = Engine(lookback_delta_ms=300_000)

    def add(self, samples: Sequence[tuple[Labels, int, float]]) -> None:
        import numpy as np

        by_series: dict[Labels, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
        for lbls, t, v in samples:
            ts, vs = by_series[lbls]
            ts.append(t)
            vs.append(v)
        for lbls, (ts, vs) in by_series.items():
            self.selector.add(lbls, np.asarray(ts, dtype=np.int64), np.asarray(vs, dtype=np.float64))

    def query(self, expr: str, time_ms: int) -> Vector:
        from clearsight.rules.types import QueryFailed

        try:
            return vector_of(self.engine.instant(self.selector, expr, time_ms))
        except QueryFailed:
            raise
        except Exception as e:
            raise QueryFailed(str(e)) from e


def _backend() -> TestBackend:
    return MemoryBackend()


@app.command("check")
def check(files: Annotated[list[str], typer.Argument(help="Rule files")]) -> None:
    """Check rule files (syntax, fields, expressions, templates) as `promtool check rules`."""
    from clearsight.rules.model import RuleFileError, load_rule_files

    failed = False
    for f in files:
        typer.echo(f"Checking {f}")
        if not Path(f).is_file():
            failed = True
            typer.echo(f"  FAILED:\n{f}: no such file", err=True)
            typer.echo("")
            continue
        try:
            groups = load_rule_files([f], check_expr)
        except RuleFileError as e:
            failed = True
            typer.echo("  FAILED:\n" + "\n".join(e.errors), err=True)
            typer.echo("")
            continue
        n = sum(len(g.rules) for g in groups)
        typer.echo(f"  SUCCESS: {n} rules found")
        typer.echo("")
    if failed:
        raise typer.Exit(1)


@app.command("test")
def test(files: Annotated[list[str], typer.Argument(help="Unit test files (promtool test rules format)")]) -> None:
    """Run rule unit tests written for `promtool test rules`; same output and exit code."""
    from clearsight.rules.testfile import report, run_file

    logging.getLogger("clearsight.rules").setLevel(logging.CRITICAL)  # failures are reported, not logged
    results = [run_file(f, _backend, check_expr) for f in files]
    out, err, code = report(results)
    typer.echo(out, nl=False)
    if err:
        typer.echo(err, nl=False, err=True)
    if code:
        raise typer.Exit(code)
