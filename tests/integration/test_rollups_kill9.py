"""A ``kill -9`` during rollup passes loses nothing and leaves no duplicates.

The child (this file run as a script) reopens a store holding four days of random series and runs
rollup passes of one block per writer command while a thread writes late samples into the rolled-up
days (new series: each one makes a block dirty, recomputed by a later pass), printing the id of each
acknowledged late write. The parent SIGKILLs it at a random moment, several times on the same data
directory, then finishes the rollups in process and checks: no (series, block) row twice, every
acknowledged late sample present, and every rollup answer equal to the raw answer.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

RUNS = 4
NOW_DAYS = 4


def _open(data_dir: Path) -> object:
    from clearsight.store.embedded import EmbeddedMetricsStore

    return EmbeddedMetricsStore(data_dir, retention_ms=10**13, out_of_order_window_ms=3_600_000,
                                compact_min_rows=20_000, compact_samples_per_series=0, compact_idle_seconds=0.0)


def _now() -> int:
    from tests.unit.store.rollup_data import DAY, HOUR, T0

    return T0 + NOW_DAYS * DAY + 2 * HOUR


def _late(i: int) -> object:
    from clearsight.model.labels import make_labels
    from tests.unit.store.rollup_data import HOUR, T0, batch

    ts = T0 + HOUR + (i * 7_919_000) % ((NOW_DAYS - 1) * 24 * HOUR)
    return batch([(make_labels({"__name__": "x_total", "instance": "late", "s": f"late{i}"}), [(ts, float(i))])])


def _child(data_dir: Path, first_id: int) -> None:
    store = _open(data_dir)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    lock = threading.Lock()

    def late_writes() -> None:
        i = first_id
        while True:
            store.append("t", _late(i)).result()  # type: ignore[attr-defined]
            with lock:
                sys.stdout.write(f"{i}\n")
                sys.stdout.flush()
            i += 1

    threading.Thread(target=late_writes, daemon=True).start()
    while True:
        store.run_rollups(_now(), max_blocks=1)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_kill_during_rollup_passes_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    from clearsight.model.rollups import FIVE_MINUTES_MS, ONE_HOUR_MS
    from clearsight.query.promql.engine import Engine
    from clearsight.store.embedded import EmbeddedMetricsStore
    from clearsight.store.embedded.rollups import SCHEMES
    from tests.unit.store.rollup_data import DAY, HOUR, T0, RawOnly, batch, random_series
    from tests.unit.store.test_rollups import assert_same

    store = _open(tmp_path)
    assert isinstance(store, EmbeddedMetricsStore)
    store.append("t", batch(random_series(11, 30, NOW_DAYS))).result()
    store.compact()
    store.close()
    rng = random.Random(os.getpid())
    acked: list[int] = []
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for run in range(RUNS):
        proc = subprocess.Popen([sys.executable, __file__, str(tmp_path), str((run + 1) * 100_000)],
                                stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        target = rng.randint(5, 60)
        got = 0
        for line in proc.stdout:
            acked.append(int(line))
            got += 1
            if got >= target:
                break
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        acked.extend(int(x) for x in rest.split() if x.strip())
        assert proc.returncode == -signal.SIGKILL

    store = _open(tmp_path)
    assert isinstance(store, EmbeddedMetricsStore)
    try:
        progress = store.stats().rollups
        assert progress is not None and progress.until_ms, "the children rolled nothing up before the kills"
        store.run_rollups(_now())
        with store._reader() as cur:
            for table in [p.name for sch in SCHEMES.values() for p in sch.list(cur)]:
                dup = cur.execute(f"SELECT series_id, block_start, count(*) FROM {table} GROUP BY ALL "
                                  "HAVING count(*) > 1").fetchall()
                assert dup == [], f"{table}: rows written twice {dup[:5]}"
            assert cur.execute("SELECT count(*) FROM rollup_dirty").fetchall() == [(0,)]
        cov = {c.res_ms: (c.from_ms, c.until_ms) for c in store.querier("t").rollup_coverage()}
        assert cov[FIVE_MINUTES_MS][1] == _now() - HOUR  # now - out-of-order window, whole hours
        assert cov[ONE_HOUR_MS] == (T0, T0 + NOW_DAYS * DAY)
        e = Engine()
        for q, approx in (("sum by (instance) (rate(x_total[1h]))", True), ("count_over_time(x_total[1h])", False),
                          ("max_over_time(x_total[5m])", False)):
            for step in (FIVE_MINUTES_MS, ONE_HOUR_MS):
                rolled = e.range(store.querier("t"), q, T0 + HOUR, T0 + NOW_DAYS * DAY, step)
                raw = e.range(RawOnly(store.querier("t")), q, T0 + HOUR, T0 + NOW_DAYS * DAY, step)
                assert_same(rolled, raw, approx, q)
        late = e.instant(store.querier("t"), 'count(count_over_time(x_total{instance="late"}[30d]))', _now())
        assert late.series and int(late.series[0].values[0]) >= len(set(acked))
        p = store.stats().rollups
        assert p is not None and p.fallbacks_total == 0 and p.reads_total > 0
    finally:
        store.close()
    print(f"{len(acked)} acknowledged late writes across {RUNS} SIGKILLs during rollup passes, 0 lost, 0 duplicated")


if __name__ == "__main__":
    _child(Path(sys.argv[1]), int(sys.argv[2]))
