"""The PromQL differential test: Clearsight against a real Prometheus 2.42, both fed the same
generated demo-service data by remote write, the compliance query list run as range queries on both.

The pass count must not drop below the floor recorded in ``compliance_floor.json`` (raise the floor
as Clearsight improves; never lower it). Prometheus missing, or Clearsight not answering queries,
fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conformance.compliance import runner

FLOOR_FILE = Path(__file__).with_name("compliance_floor.json")


@pytest.mark.peer
@pytest.mark.slow
def test_promql_compliance_against_prometheus(tmp_path: Path) -> None:
    floor = int(json.loads(FLOOR_FILE.read_text())["clearsight"])
    lines: list[str] = []
    report = runner.run("clearsight", workdir=tmp_path, log=lines.append)
    runner.print_report(report, log=lines.append)
    print("\n".join(lines))
    # The reference answered (almost) everything: a broken reference must not pass as a good score.
    assert report.skipped <= 5, f"Prometheus could not answer {report.skipped} queries:\n" + "\n".join(lines)
    not_found = [o.query for o in report.outcomes if "unexpected failure: HTTP 404" in o.detail]
    assert not not_found, (
        f"Clearsight answered HTTP 404 to {len(not_found)} range queries (is /api/v1/query_range wired?)"
    )
    assert report.passed >= floor, (
        f"{report.summary()} is below the floor of {floor} in {FLOOR_FILE.name}:\n" + "\n".join(lines[-60:])
    )
