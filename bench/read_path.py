"""The store's read path, in process: the dashboard panels of bench/dashboard_queries.py evaluated by
the engine over demo data loaded through the HTTP write path (the same layout bench/query.py gets),
with the time spent inside ``select`` measured separately.

    .venv/bin/python bench/read_path.py                      # 20 instances (2,560 series) x 6 h
    .venv/bin/python bench/read_path.py --instances 30 --profile 2   # + cProfile of panel 2

Per panel: median wall time of the engine evaluation, of the store selects it made, and of
encoding the result as the API's JSON body (over ``--repeats`` rounds after one warm-up). ``--no-cache`` turns the decoded-chunk cache off so the
cold decode path is measured. Machines are noisy: compare runs made back to back.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from dashboard_queries import PANELS
from starlette.testclient import TestClient
from tests.conformance.compliance import data

from clearsight.api.app import create_app
from clearsight.api.prometheus_query import encode_result
from clearsight.config import load_config
from clearsight.model.matchers import Matcher
from clearsight.model.samples import SeriesData
from clearsight.query.promql.engine import Engine
from clearsight.server import build
from clearsight.store.embedded.chunk_parts import all_chunks
from clearsight.store.interface import SeriesSelector


class TimedSelector:
    def __init__(self, inner: SeriesSelector) -> None:
        self.inner = inner
        self.seconds = 0.0

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
        t = time.perf_counter()
        try:
            return self.inner.select(matchers, start_ms, end_ms)
        finally:
            self.seconds += time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--instances", type=int, default=20)
    p.add_argument("--hours", type=float, default=6.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--profile", type=int, default=None, help="cProfile this panel index")
    p.add_argument("--no-cache", action="store_true", help="disable the decoded-chunk cache")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cs-readpath-"))
    try:
        cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp)})
        b = build(cfg)
        end = int(time.time() * 1000)
        ds = data.generate(end, hours=args.hours, instances=args.instances)
        with TestClient(create_app(b.services)) as c:
            for body in data.write_requests(ds):
                r = c.post(
                    "/api/v1/write",
                    content=body,
                    headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"},
                )
                assert r.status_code == 204, r.text
        b.store.flush()
        store = b.store
        if args.no_cache and hasattr(store, "_chunk_cache"):
            store._chunk_cache.resize(0)
        with store._reader() as cur:  # layout the selects see: head rows, chunks
            head = store.storage_breakdown()["head_rows"]
            chunks = cur.execute(f"SELECT count(*), avg(n) FROM {all_chunks(cur)}").fetchone()
        print(f"series {len(ds.series)}, samples {ds.samples:,}; head rows {head}, chunks (count, avg n) {chunks}")
        everything = store.select("default", [Matcher.of("=~", "__name__", ".+")], ds.start_ms, end)
        print(f"select of everything: {everything.timestamps.shape[0]:,} samples (written {ds.samples:,})")
        eng = Engine()
        sel = TimedSelector(store.querier("default"))
        rows = []
        for p_ in PANELS:
            start = ds.start_ms if p_.range_h is None else end - int(p_.range_h * 3600_000)
            step = p_.step_s * 1000
            eng.range(sel, p_.query, start, end, step)  # warm-up
            tot, sel_s, enc_s = [], [], []
            for _ in range(args.repeats):
                sel.seconds = 0.0
                t = time.perf_counter()
                res = eng.range(sel, p_.query, start, end, step)
                tot.append(time.perf_counter() - t)
                sel_s.append(sel.seconds)
                t = time.perf_counter()
                orjson.dumps(encode_result(res, end, None)[0])
                enc_s.append(time.perf_counter() - t)
            rows.append((p_.name, *(statistics.median(x) * 1e3 for x in (tot, sel_s, enc_s))))
        print(f"{'panel':30s} {'eval ms':>9s} {'select ms':>10s} {'encode ms':>10s}")
        for name, t_ms, s_ms, e_ms in rows:
            print(f"{name:30s} {t_ms:9.1f} {s_ms:10.1f} {e_ms:10.1f}")
        print(f"{'sum':30s} " + " ".join(f"{sum(r[i] for r in rows):{w}.1f}" for i, w in ((1, 9), (2, 10), (3, 10))))
        if args.profile is not None:
            p_ = PANELS[args.profile]
            start = ds.start_ms if p_.range_h is None else end - int(p_.range_h * 3600_000)
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(3):
                eng.range(sel, p_.query, start, end, p_.step_s * 1000)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
