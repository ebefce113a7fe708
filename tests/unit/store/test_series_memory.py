"""Memory per active series (issue 8 point 6, docs/storage.md "Memory"): the Python structures
that remote-written series leave behind in the validator and the store, measured with tracemalloc
(numpy's buffers included), stay under a bound. A size assertion over the real path: protobuf
WriteRequests decoded by the remote-write decoder, validated, appended to a real store."""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path

import pytest

from clearsight.ingest.prompb_encode import encode_labels, encode_sample, len_field
from clearsight.ingest.remote_write import batch_from_protobuf
from clearsight.model.fingerprint_table import ENTRY_BYTES
from clearsight.pipeline.limits import WriteLimits
from clearsight.pipeline.validate import make_validator
from clearsight.store.embedded import EmbeddedMetricsStore, duckdb_store

MODES = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]
BOUND = 450  # bytes per series; measured ~344 with the fingerprint tables (~632 before them)


def _request(first: int, n: int, now_ms: int) -> bytes:
    """``n`` node_exporter-like CPU series (8 modes x 8 cores per host), one sample each."""
    out = []
    for i in range(first, first + n):
        host, rest = divmod(i, 64)
        labels = [("__name__", "node_cpu_seconds_total"), ("cpu", str(rest // 8)), ("mode", MODES[rest % 8]),
                  ("instance", f"10.0.{host // 250}.{host % 250}:9100"), ("job", "node")]
        out.append(len_field(1, encode_labels(labels) + len_field(2, encode_sample(now_ms, float(i)))))
    return b"".join(out)


def test_bytes_per_remote_written_series_stay_under_the_bound(tmp_path: Path) -> None:
    store = EmbeddedMetricsStore(tmp_path, compact_min_rows=10**9)  # the head holds 1 row a series
    validate = make_validator(WriteLimits(), time.time, known_keys=store.known_keys)  # as server.py wires it
    now_ms = int(time.time() * 1000)

    def write(first: int, n: int) -> None:
        for a in range(first, first + n, 2000):
            batch = validate("t", batch_from_protobuf(_request(a, min(2000, first + n - a), now_ms)))
            assert store.append("t", batch).result().series_created == min(2000, first + n - a)

    try:
        write(0, 10_000)  # the tenant's structures exist, arrays past their first sizes
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            n = 40_000
            write(10_000, n)
            gc.collect()
            per_series = (tracemalloc.get_traced_memory()[0] - before) / n
        finally:
            tracemalloc.stop()
        print(f"{per_series:.0f} bytes per series")
        assert per_series < BOUND
    finally:
        store.close()


def test_the_key_table_stays_bounded_when_one_series_comes_in_many_encodings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb_store, "_KEYS_SLACK", 100)
    store = EmbeddedMetricsStore(tmp_path)
    validate = make_validator(WriteLimits(), time.time, known_keys=store.known_keys)
    start_ms = int(time.time() * 1000) - 1_000_000
    try:
        sizes = []
        for r in range(20):  # 1,000 keys (empty-valued labels differ) that all mean up{job="a"}
            pb = b"".join(
                len_field(1, encode_labels([("__name__", "up"), (f"pad{k}", ""), ("job", "a")])
                          + len_field(2, encode_sample(start_ms + 1000 * k, 1.0)))
                for k in range(r * 50, r * 50 + 50))
            got = store.append("t", validate("t", batch_from_protobuf(pb))).result()
            assert got.samples_written == 50
            sizes.append(store.stats().series_key_bytes)
        assert store.stats().total_series == 1
        # at most 2 keys per series + 100 slack: never past 128 slots (+ the label set table's 64)
        assert max(sizes) <= (128 + 64) * ENTRY_BYTES
    finally:
        store.close()
