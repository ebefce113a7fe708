"""``make bench``: runs every side-by-side benchmark with its default arguments.

Extra arguments (``make bench ARGS="--series 2000 --scrapes 20 --repeat 1"``) are passed to each
bench; each ignores the flags it does not know.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agent
import chunk_codec
import cold_start
import live_dashboard
import log_decode
import logs
import query
import remote_write
import request_floor
import rollups
import rules
import series_memory
import small_queries
import wakeup_cost

import ui

BENCHES: list[tuple[str, Callable[[list[str]], int]]] = [
    ("remote-write ingest, re-send and HA replica (bench/remote_write.py)", remote_write.main),
    ("chunk codec and the metrics file on the remote-write workload (bench/chunk_codec.py)", chunk_codec.main),
    ("small dashboard queries and concurrency (bench/small_queries.py)", small_queries.main),
    ("the fixed cost of a small query over HTTP, fast lane on and off (bench/request_floor.py)",
     request_floor.main),
    ("what a wake-up costs here, and polling before sleeping (bench/wakeup_cost.py)", wakeup_cost.main),
    ("cold start: restart, then the small queries' first and second execution (bench/cold_start.py)",
     cold_start.main),
    ("dashboard panels, heavier queries (bench/query.py)", query.main),
    ("live Node Exporter dashboard at now, ingest running (bench/live_dashboard.py)", live_dashboard.main),
    ("memory per active series (bench/series_memory.py)", series_memory.main),
    ("rollups: a 30-day rate at 1 h step, rollups vs raw samples (bench/rollups.py)", rollups.main),
    ("rule evaluation (bench/rules.py)", rules.main),
    ("agent vs node_exporter (bench/agent.py)", agent.main),
    ("log and event decoders (bench/log_decode.py)", log_decode.main),
    ("log ingest, disk and search vs grep (bench/logs.py)", logs.main),
    ("web UI in Chromium: first render, uPlot, page memory (bench/ui.py)", ui.main),
]


def main(argv: list[str]) -> int:
    failed = 0
    for title, run in BENCHES:
        print(f"\n== {title} ==", flush=True)
        try:
            rc = run(list(argv))
        except Exception:  # one broken bench does not hide the others' results
            traceback.print_exc()
            rc = 1
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
