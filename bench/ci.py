"""``make test``'s last step: the latency targets of issue 7 point 2 (small queries against
Prometheus 2.42) and issue 8 points 1-3 (``/health`` while expensive bodies are decoded, query
timeouts and a disconnected client's query, remote-write p99 beside 20 heavy queries), and issue
8's memory bounds (three heavy queries at once, unfinished bodies, large remote-writes at once, RSS
per active series) measured on the CI machine itself, after the suite, so every CI log carries
the verdicts.

Each bench runs as it would by hand, at a shorter length (the commands are printed); a bench that
fails (an error, a server that does not start) fails ``make test``; a target not met does not: it is
a measurement, printed as "met" or "not met" (tests never assert on timing).

    .venv/bin/python bench/ci.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RUNS = (
    ("issue 8.3: remote-write p99 with 20 heavy queries, against idle",
     ["governance.py", "ingest", "--seconds", "24", "--rounds", "4"]),
    ("issue 8.1 and 8.2: /health beside tiny expensive OTLP bodies, a 100 ms timeout, a client gone",
     ["hardening.py", "--bodies", "2"]),
    ("issue 8.2 and 8.4: server memory with three heavy queries at once, sixty unfinished bodies, ten 239 MiB "
     "remote-writes at once", ["memory_bounds.py"]),
    ("issue 8.6: RSS per active series, Clearsight and Prometheus 2.42",
     ["series_memory.py", "--steps", "20000,200000"]),
    ("issue 7.2: small dashboard queries, Clearsight and Prometheus 2.42 asked in turn",
     ["small_queries.py", "--targets", "clearsight,prometheus", "--rounds", "30", "--concurrent-requests", "200"]),
)


def main() -> int:
    failed = 0
    for title, cmd in RUNS:
        print(f"\n== {title} ==\n$ python bench/{' '.join(cmd)}", flush=True)
        began = time.monotonic()
        rc = subprocess.run([sys.executable, str(BENCH / cmd[0]), *cmd[1:]], check=False).returncode
        print(f"(exit {rc}, {time.monotonic() - began:.0f} s)", flush=True)
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
