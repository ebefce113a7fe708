"""The head mirror's writer-thread CPU per ``apply`` (store/embedded/head.py): a long steady
sequence of group commits of ``--rows`` rows (one sample per series, ts advancing), the CPU time
of the calling thread (``time.thread_time``) per ``apply`` as p50/p99/max (and its wall time, which
includes a wait for the merger), with the background
merger (``--inline`` rows merged inline at most) and without (``--no-merger``: every merge up to
MAX_MERGE_ROWS inline, as before). Runs against whatever ``clearsight`` is on PYTHONPATH (an older
tree without the merger is measured as it is). No server, one process:

    PYTHONPATH=src .venv/bin/python bench/head_apply.py --groups 5000 --rows 200
"""

from __future__ import annotations

import argparse
import inspect
import time

import numpy as np

from clearsight.store.embedded import head


def run(groups: int, rows: int, merger: bool, inline: int | None, interval: float) -> dict[str, float]:
    params = inspect.signature(head.HeadMirror).parameters
    kwargs: dict[str, object] = {}
    if "merger" in params and merger:
        kwargs["merger"] = head.make_merger()
    if "inline_merge_rows" in params and inline is not None:
        kwargs["inline_merge_rows"] = inline
    mirror = head.HeadMirror(**kwargs)  # type: ignore[arg-type]
    sid = np.arange(1, rows + 1, dtype=np.uint32)
    vals = np.ones(rows, dtype=np.float64)
    cpu = np.zeros(groups, dtype=np.float64)
    wall = np.zeros(groups, dtype=np.float64)
    segs = 0
    for g in range(groups):
        ts = np.full(rows, 1_700_000_000_000 + g * 1000, dtype=np.int64)
        t0, w0 = time.thread_time(), time.perf_counter()
        mirror.apply((sid, ts, vals))
        cpu[g], wall[g] = time.thread_time() - t0, time.perf_counter() - w0
        if interval:
            time.sleep(interval)  # the writer's pause between group commits (the merger's turn)
        segs = max(segs, mirror.segments)
    if hasattr(mirror, "close"):
        mirror.close()
    ms = cpu * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "p999_ms": float(np.percentile(ms, 99.9)), "max_ms": float(ms.max()), "total_s": float(cpu.sum()),
            "wall_p99_ms": float(np.percentile(wall, 99) * 1000), "wall_max_ms": float(wall.max() * 1000),
            "max_segments": segs, "waited": getattr(mirror, "merges_waited", 0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=5000)
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--inline", type=int, default=None, help="inline merge bound (default: the module's)")
    ap.add_argument("--no-merger", action="store_true")
    ap.add_argument("--interval-ms", type=float, default=0.0, help="sleep between group commits")
    a = ap.parse_args()
    out = run(a.groups, a.rows, not a.no_merger, a.inline, a.interval_ms / 1000)
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
