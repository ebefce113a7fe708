"""Soak and chaos at CI scale (``bench/soak.py``; the full hour is ``make soak``): 90 s of mixed
remote-write, queries and slow clients against a real server that is killed with SIGKILL twice
mid-ingest and restarted. Every acknowledged sample must survive, and the server's RSS must stay
under the bound computed from its configured limits (``soak.rss_bound``), never a timing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def _soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("clearsight_bench_soak", REPO / "bench" / "soak.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve their module
    spec.loader.exec_module(mod)
    return mod


def test_soak_with_kills_loses_nothing_and_stays_bounded(tmp_path: Path) -> None:
    soak = _soak()
    args = soak.parse(["--minutes", "1.5", "--series", "300", "--data-hours", "2", "--kills", "2",
                       "--slow", "10", "--queries", "2", "--workdir", str(tmp_path)])
    res = soak.run(args)
    print(res.report())
    assert not res.errors, res.errors
    assert res.kills == 2 and len(res.restart_seconds) == 3
    assert res.scrapes == 480 and res.samples_acked == 480 * 300  # every scrape acknowledged once
    assert res.lost == 0
    assert res.write_codes.get(204) == 480 * 2  # two senders
    assert set(res.write_codes) <= {0, 204, 429, 503}  # refused only while down or busy, then re-sent
    assert res.query_codes.get(200, 0) > 0
    assert res.slow_cut > 0  # the read deadlines closed the slow connections
    assert 0 < res.max_rss <= res.rss_bound, res.report()
