"""Acknowledged writes survive ``kill -9`` of the server, several times in a row."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np

from clearsight.ingest.prompb_encode import TimeSeries, WriteRequest, encode_snappy
from clearsight.model.matchers import Matcher
from clearsight.store.embedded import EmbeddedMetricsStore
from tests.support.kill9 import send_until_stopped
from tests.support.peers import start_clearsight

SERIES = 200
PER_BATCH = 5  # samples per series per batch


def _batch(batch_id: int, base_ms: int) -> bytes:
    ts = [base_ms + batch_id * PER_BATCH + j for j in range(PER_BATCH)]
    return encode_snappy(WriteRequest([
        TimeSeries([("__name__", "kill_test"), ("series", str(s))], [(t, float(batch_id)) for t in ts])
        for s in range(SERIES)
    ]))


def test_acked_batches_survive_kill9(tmp_path: Path) -> None:
    rng = random.Random(1234)
    data_dir = tmp_path / "data"
    base_ms = int(time.time() * 1000) - 1_800_000  # ids x 5 ms stay within ~5 minutes
    acked: list[int] = []
    for round_no in range(3):
        proc = start_clearsight(tmp_path / f"round{round_no}", data_dir=data_dir)
        stop = threading.Event()
        senders = [threading.Thread(target=send_until_stopped,
                                    args=(proc.url, lambda b: _batch(b, base_ms), round_no * 20_000 + k * 10_000, acked, stop))
                   for k in range(2)]
        for s in senders:
            s.start()
        time.sleep(rng.uniform(1.0, 3.0))
        proc.kill9()
        stop.set()
        for s in senders:
            s.join(15)
    assert len(acked) > 10, "the senders should have been acknowledged many batches"

    store = EmbeddedMetricsStore(data_dir, retention_ms=10**12, out_of_order_window_ms=10**10,
                                 max_active_series_per_tenant=10**6, queue_max_batches=8)
    try:
        data = store.select("default", [Matcher.of("=", "__name__", "kill_test")], 0, 2**62)
        assert len(data) == SERIES
        for i in range(len(data)):
            _labels, ts, _vals = data.series(i)
            have = set(ts.tolist())
            missing = [b for b in acked
                       if not all(base_ms + b * PER_BATCH + j in have for j in range(PER_BATCH))]
            assert not missing, f"series {i}: {len(missing)} acknowledged batches lost, e.g. {missing[:5]}"
        assert np.all(np.diff(data.timestamps[data.offsets[0]:data.offsets[1]]) > 0)
    finally:
        store.close()
