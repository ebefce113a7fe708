"""``python -m tests.conformance.compliance --target clearsight|victoriametrics|prometheus``

Exit status 0 when every compared query passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.conformance.compliance import queries, runner


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.conformance.compliance", description=__doc__)
    p.add_argument("--target", choices=runner.TARGETS, default="clearsight")
    p.add_argument("--target-url", help="use an already running target instead of starting one")
    p.add_argument("--hours", type=float, default=3.0, help="hours of data at 15 s (default 3)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--parallel", type=int, default=4, help="queries in flight (default 4)")
    p.add_argument(
        "--align-to-step",
        action="store_true",
        help="align start/end to the step (the tester's VictoriaMetrics tweak)",
    )
    p.add_argument(
        "--windows",
        default=",".join(runner.DEFAULT_WINDOWS),
        help="query windows: 'tester' (end = data end - 12m, 10m range, 10s step, the tester's default), "
        "'span' (the whole data span at a 60s step), 'aligned' (the same, aligned to the step); "
        "a case passes when it passes in all (default: tester,span)",
    )
    p.add_argument(
        "--end-ms", type=int, help="end of the generated data (default: the last hh:20:34.567 before now)"
    )
    p.add_argument("--queries", type=Path, default=queries.DEFAULT_QUERY_FILE)
    p.add_argument("--show-passing", action="store_true")
    p.add_argument("--json", type=Path, help="write every outcome to this file")
    p.add_argument("--workdir", type=Path, help="keep peer data and logs here instead of a temp dir")
    args = p.parse_args(argv)
    report = runner.run(
        args.target,
        hours=args.hours,
        seed=args.seed,
        parallel=args.parallel,
        align_to_step=args.align_to_step,
        window_names=tuple(w.strip() for w in args.windows.split(",") if w.strip()),
        end_ms=args.end_ms,
        query_file=args.queries,
        workdir=args.workdir,
        target_url=args.target_url,
    )
    runner.print_report(report, show_passing=args.show_passing)
    if args.json:
        runner.write_json(report, args.json)
    return 0 if report.passed == report.total else 1


if __name__ == "__main__":
    sys.exit(main())
