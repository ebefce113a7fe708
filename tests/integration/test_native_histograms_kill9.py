"""Acknowledged native histogram samples survive ``kill -9`` of the server (they are committed in the
same transaction as float samples), twice in a row, and read back exactly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from clearsight.ingest import prom_histogram
from clearsight.ingest.prompb_encode import encode_labels, len_field, snappy
from clearsight.model.histogram import FloatHistogram
from clearsight.model.matchers import Matcher
from clearsight.store.embedded import EmbeddedMetricsStore
from tests.support.kill9 import send_until_stopped
from tests.support.peers import start_clearsight

SERIES = 50


def _hist(batch_id: int, s: int) -> FloatHistogram:
    return FloatHistogram.build(
        schema=1,
        count=10.0 + batch_id + s % 3,
        sum=0.5 * batch_id + s,
        zero_count=2,
        positive={-1: 3.0, 2: 5.0 + batch_id},
        negative={0: float(s % 3)},
        zero_threshold=0.001,
    )


def _batch(batch_id: int, base_ms: int) -> bytes:
    return snappy(
        b"".join(
            len_field(
                1,
                encode_labels([("__name__", "kill_hist"), ("series", str(s))])
                + len_field(4, prom_histogram.encode(_hist(batch_id, s), base_ms + batch_id)),
            )
            for s in range(SERIES)
        )
    )


def test_acked_histograms_survive_kill9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    base_ms = int(time.time() * 1000) - 1_800_000
    acked: list[int] = []
    for round_no in range(2):
        proc = start_clearsight(tmp_path / f"round{round_no}", data_dir=data_dir)
        stop = threading.Event()
        sender = threading.Thread(target=send_until_stopped,
                                  args=(proc.url, lambda b: _batch(b, base_ms), round_no * 100_000, acked, stop))
        sender.start()
        deadline = time.monotonic() + 30
        while len(acked) < 5 * (round_no + 1) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        proc.kill9()
        stop.set()
        sender.join(15)
    assert len(acked) >= 10, "the sender should have been acknowledged several batches"

    store = EmbeddedMetricsStore(data_dir, retention_ms=10**12, out_of_order_window_ms=10**10)
    try:
        data = store.select("default", [Matcher.of("=", "__name__", "kill_hist")], 0, 2**62)
        assert len(data) == SERIES and data.histograms is not None
        for i in range(len(data)):
            labels, ts, _ = data.series(i)
            s = int(dict(labels)["series"])
            a = int(data.offsets[i])
            got = {
                int(t) - base_ms: h
                for t, h in zip(ts.tolist(), data.histograms[a : a + len(ts)], strict=True)
            }
            missing = [b for b in acked if b not in got]
            assert not missing, f"series {s}: {len(missing)} acknowledged batches lost, e.g. {missing[:5]}"
            assert all(got[b].equals(_hist(b, s)) for b in acked)
    finally:
        store.close()
