"""Embedded-store specifics beyond the backend-agnostic contract: queueing, series resolution by
raw key, stats, compaction, validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clearsight.model.labels import Labels, canonical_bytes, make_labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import SampleBatch
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.embedded.chunk_parts import all_chunks
from clearsight.store.interface import InvalidBatch, Overloaded, StoreClosed
from clearsight.store.storetest import workload

UP = make_labels({"__name__": "up", "job": "a"})


def _open(d: Path, **kw: int) -> EmbeddedMetricsStore:
    opts = {
        "retention_ms": 10**12,
        "out_of_order_window_ms": 3_600_000,
        "max_active_series_per_tenant": 0,
        "queue_max_batches": 8,
        "duckdb_threads": 1,
    }
    opts.update(kw)
    return EmbeddedMetricsStore(d, **opts)


def _raw_batch(
    keys: list[bytes], kind: str, labels_of: dict[bytes, Labels], calls: list[bytes], ts: int
) -> SampleBatch:
    def decode(k: bytes) -> Labels:
        calls.append(k)
        return labels_of[k]

    n = len(keys)
    return SampleBatch(
        keys=keys,
        key_kind=kind,
        decode_labels=decode,
        series_idx=np.arange(n, dtype=np.int32),
        timestamps=np.full(n, ts, dtype=np.int64),
        values=np.arange(n, dtype=np.float64),
    )


def test_overloaded_when_queue_full(tmp_path: Path) -> None:
    store = _open(tmp_path, queue_max_batches=4)
    try:
        futures = []
        # Holding the index lock stalls the writer when it publishes its first group.
        with store._index_lock:
            with pytest.raises(Overloaded) as exc:
                for i in range(100):
                    futures.append(store.append("t", SampleBatch.from_series([(UP, [(i, 1.0)])])))
            assert exc.value.retry_after >= 1.0
            # (The writer may drain the full queue right after the refusal, then stall.)
            assert store.stats().queue_depth in (0, 4)
        for f in futures:
            assert f.result(timeout=60).samples_written == 1
        assert len(store.select("t", [Matcher.of("=", "job", "a")], 0, 1000).timestamps) == len(futures)
    finally:
        store.close()


def test_series_resolved_once_per_raw_key(tmp_path: Path) -> None:
    store = _open(tmp_path)
    try:
        lbl = make_labels({"__name__": "x", "a": "1"})
        other = make_labels({"__name__": "x", "a": "2"})
        # Unsorted labels from a decoder are canonicalized; empty values are dropped.
        labels_of = {b"r1": lbl, b"r2": (("a", "1"), ("__name__", "x"), ("empty", "")), b"r3": other}
        calls: list[bytes] = []
        res = store.append("t", _raw_batch([b"r1", b"r3"], "rw", labels_of, calls, 1000)).result()
        assert res.series_created == 2 and sorted(calls) == [b"r1", b"r3"]
        calls.clear()
        store.append("t", _raw_batch([b"r1", b"r3"], "rw", labels_of, calls, 2000)).result()
        assert calls == []  # cached by raw key
        # Another key (or key kind) for the same label set is the same series.
        res = store.append("t", _raw_batch([b"r2"], "rw", labels_of, calls, 3000)).result()
        assert res.series_created == 0 and calls == [b"r2"]
        res = store.append("t", _raw_batch([b"r1"], "otlp", labels_of, calls, 4000)).result()
        assert res.series_created == 0
        data = store.select("t", [Matcher.of("=", "__name__", "x")], 0, 10_000)
        assert data.labels == [lbl, other]
        assert data.series(0)[1].tolist() == [1000, 2000, 3000, 4000]
        # The same raw key in another tenant is not shared.
        calls.clear()
        res = store.append("u", _raw_batch([b"r1"], "rw", labels_of, calls, 1000)).result()
        assert res.series_created == 1 and calls == [b"r1"]
    finally:
        store.close()


def test_series_without_samples_are_not_created(tmp_path: Path) -> None:
    store = _open(tmp_path)
    try:
        b = SampleBatch.from_series([(UP, [(1, 1.0)]), (make_labels({"__name__": "idle"}), [])])
        assert store.append("t", b).result().series_created == 1
        assert store.series("t", [], 0, 10) == [UP]
        assert store.stats().active_series == {"t": 1}
    finally:
        store.close()


@pytest.mark.parametrize("mutate", ["idx_range", "lengths", "no_labels", "bad_decoder"])
def test_invalid_batches_write_nothing(tmp_path: Path, mutate: str) -> None:
    store = _open(tmp_path)
    try:
        b = SampleBatch.from_series([(UP, [(1, 1.0), (2, 2.0)])])
        if mutate == "idx_range":
            b.series_idx = np.array([0, 1], dtype=np.int32)
        elif mutate == "lengths":
            b.values = np.array([1.0])
        elif mutate == "no_labels":
            b.keys = [canonical_bytes(())]
        else:

            def boom(k: bytes) -> Labels:
                raise ValueError("truncated protobuf")

            b.decode_labels = boom
        with pytest.raises(InvalidBatch):
            store.append("t", b).result(timeout=60)
        assert store.series("t", [], 0, 10) == []
        with pytest.raises(InvalidBatch):
            store.append("", SampleBatch.from_series([(UP, [(1, 1.0)])])).result(timeout=60)
    finally:
        store.close()


def test_stats_and_closed_store(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.append("t", SampleBatch.from_series([(UP, [(1, 1.0), (2, 2.0), (2, 3.0)])])).result()
    store.append("u", SampleBatch.from_series([(UP, [(1, 1.0)])])).result()
    st = store.stats()
    assert st.active_series == {"t": 1, "u": 1} and st.total_series == 2
    assert st.samples_written_total == 3  # the duplicate overwrote in the same commit
    assert st.duplicates_total == 1 and st.commits_total >= 1 and st.commit_seconds_sum > 0
    assert st.bytes_on_disk > 0 and st.writer_alive and st.queue_depth == 0
    store.close()
    assert not store.stats().writer_alive
    with pytest.raises(StoreClosed):
        store.select("t", [Matcher.of("=", "job", "a")], 0, 10)
    with pytest.raises(StoreClosed):
        store.flush()


def test_compaction_keeps_data_and_reaches_chunks(tmp_path: Path) -> None:
    labels = workload.series_labels(300)
    ts = workload.timestamps(40)
    vals = workload.values_matrix(300, 40)
    store = _open(tmp_path, compact_min_rows=10**9)
    try:
        for b in workload.scrape_batches(labels, ts, vals, batch_series=100):
            store.append("t", b).result()
        before = store.select("t", [Matcher.of("=", "job", "node")], 0, 2**62)
        store.compact()
        br = store.storage_breakdown()
        assert br["head_rows"] == 0 and br["chunk_rows"] == 300 and br["chunk_samples"] == 300 * 40
        after = store.select("t", [Matcher.of("=", "job", "node")], 0, 2**62)
        assert after.labels == before.labels
        assert np.array_equal(after.offsets, before.offsets)
        assert np.array_equal(after.timestamps, before.timestamps)
        assert np.array_equal(after.values.view(np.uint64), before.values.view(np.uint64))
        # A sub-range cuts inside chunks.
        part = store.select("t", [Matcher.of("=", "job", "node")], int(ts[10]), int(ts[19]))
        assert part.timestamps.shape[0] == 300 * 10
        # New samples land in the head and merge with chunks on read.
        store.append("t", SampleBatch.from_series([(labels[0], [(int(ts[-1]) + 15_000, 1.0)])])).result()
        one = store.select(
            "t", [Matcher.of("=", "idx", "0"), Matcher.of("=", "__name__", labels[0][0][1])], 0, 2**62
        )
        assert one.timestamps.tolist() == [*ts.tolist(), int(ts[-1]) + 15_000]
    finally:
        store.close()


def test_small_chunks_are_merged(tmp_path: Path) -> None:
    labels = workload.series_labels(50)
    ts = workload.timestamps(40)
    vals = workload.values_matrix(50, 40)
    store = _open(tmp_path, compact_min_rows=10**9, chunk_target_samples=30)
    try:
        batches = workload.scrape_batches(labels, ts, vals, batch_series=50)
        for k in range(4):
            for b in batches[k * 10 : (k + 1) * 10]:
                store.append("t", b).result()
            store.compact()
        # Three chunks of 10 were merged into one of 30; the fourth stays alone.
        br = store.storage_breakdown()
        assert br["chunk_rows"] == 100 and br["chunk_samples"] == 2000
        data = store.select("t", [Matcher.of("=", "job", "node")], 0, 2**62)
        for i in range(len(data)):
            lbl, got_ts, got_v = data.series(i)
            j = labels.index(lbl)
            assert got_ts.tolist() == ts.tolist()
            assert np.array_equal(got_v.view(np.uint64), vals[j].view(np.uint64))
    finally:
        store.close()


def test_series_rows_on_disk(tmp_path: Path) -> None:
    import duckdb

    lbl = make_labels({"__name__": "up", "job": 'a"b', "zone": "é"})
    store = _open(tmp_path)
    store.append("t", SampleBatch.from_series([(lbl, [(1, 1.0)])])).result()
    store.close()
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"))
    try:
        rows = con.execute("SELECT * FROM series").fetchall()
    finally:
        con.close()
    # labels without __name__ (in metric) since schema 3
    assert rows == [(1, "t", "up", '{"job":"a\\"b","zone":"é"}')]
    store = _open(tmp_path)
    try:
        assert store.series("t", [], 0, 10) == [lbl]
    finally:
        store.close()


def test_due_compaction_runs_when_writes_pause(tmp_path: Path) -> None:
    import time

    store = _open(tmp_path, compact_min_rows=10, compact_samples_per_series=0, compact_idle_seconds=0.05)
    try:
        store.append("t", SampleBatch.from_series([(UP, [(i, float(i)) for i in range(12)])])).result()
        deadline = time.monotonic() + 60
        while store.storage_breakdown()["head_rows"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.storage_breakdown()["head_rows"] == 0
        assert store.select("t", [Matcher.of("=", "job", "a")], 0, 100).timestamps.tolist() == list(range(12))
        # Twice the bound compacts at once, without waiting for a pause.
        store.compact_idle_seconds = 3600.0
        store.append("t", SampleBatch.from_series([(UP, [(i, 1.0) for i in range(100, 125)])])).result()
        store.sync()
        assert store.storage_breakdown()["head_rows"] == 0
    finally:
        store.close()


def test_many_new_series_are_checkpointed_when_writes_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``_SERIES_CHECKPOINT`` new series (no compaction due) the writer checkpoints on idle, so
    DuckDB holds their rows compressed in the file instead of in memory; the head log's records go
    into the file with them and the data reads the same after a reopen."""
    import shutil
    import time

    import clearsight.store.embedded.duckdb_store as duckdb_store

    monkeypatch.setattr(duckdb_store, "_SERIES_CHECKPOINT", 100)
    store = _open(tmp_path / "a", compact_min_rows=10**9, compact_idle_seconds=0.05)
    wal = tmp_path / "a" / "metrics.duckdb.wal"
    try:
        labels = workload.series_labels(150)
        _scrapes(store, labels, workload.timestamps(2), workload.values_matrix(150, 2))
        deadline = time.monotonic() + 60
        while store._fresh_series and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store._fresh_series == 0 and store._head.rows == 300  # checkpointed, not compacted
        assert not wal.exists() or wal.stat().st_size == 0
        want = _all_job_node(store)
        shutil.copytree(tmp_path / "a", tmp_path / "b")
    finally:
        store.close()
    again = _open(tmp_path / "b", compact_min_rows=10**9)
    try:
        assert _all_job_node(again) == want and again._head.rows == 300
    finally:
        again.close()


def _all_job_node(store: EmbeddedMetricsStore) -> list[tuple[int, int]]:
    got = store.select("t", [Matcher.of("=", "job", "node")], 0, 2**62)
    return list(zip(got.timestamps.tolist(), got.values.view(np.int64).tolist(), strict=True))


def test_refuses_other_schema_version(tmp_path: Path) -> None:
    import duckdb

    from clearsight.store.interface import StoreError

    _open(tmp_path).close()
    con = duckdb.connect(str(tmp_path / "metrics.duckdb"))
    con.execute("UPDATE clearsight_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="schema version 99"):
        _open(tmp_path)


def test_reads_see_consistent_snapshots_during_compaction(tmp_path: Path) -> None:
    """Readers running while the writer appends, compacts and merges always see whole commits:
    every series has the same samples 0..k-1, never a duplicate or a gap."""
    import threading

    from clearsight.store.storetest.contract import check_well_formed

    labels = [make_labels({"__name__": "c", "s": str(i)}) for i in range(50)]
    store = _open(
        tmp_path,
        compact_min_rows=500,
        compact_samples_per_series=0,
        compact_idle_seconds=0.0,
        chunk_target_samples=40,
        queue_max_batches=1000,
    )
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        last = 0
        try:
            while not done.is_set():
                data = store.select("t", [Matcher.of("=", "__name__", "c")], 0, 10**9)
                check_well_formed(data)
                counts = {int(data.offsets[i + 1] - data.offsets[i]) for i in range(len(data))}
                assert len(counts) <= 1, counts
                k = counts.pop() if counts else 0
                assert k >= last
                last = k
                for i in range(len(data)):
                    assert data.series(i)[1].tolist() == [j * 1000 for j in range(k)]
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        # One commit at a time: the head passes twice its bound (1,000 rows) every 20 rounds, and
        # the writer compacts right after that commit, while the readers run. (Queuing all 300 at
        # once let the futures resolve before the only compaction had started.)
        for j in range(300):
            store.append("t", SampleBatch.from_series([(lbl, [(j * 1000, float(j))]) for lbl in labels])).result(
                timeout=120
            )
    finally:
        done.set()
        for t in threads:
            t.join()
    try:
        assert not errors, errors[0]
        assert store.storage_breakdown()["chunk_rows"] > 0
        data = store.select("t", [Matcher.of("=", "__name__", "c")], 0, 10**9)
        assert data.timestamps.shape[0] == 50 * 300
    finally:
        store.close()


def test_compaction_in_slices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clearsight.store.embedded import duckdb_store

    monkeypatch.setattr(duckdb_store, "_COMPACT_SLICE_ROWS", 7)
    labels = workload.series_labels(40)
    ts = workload.timestamps(5)
    vals = workload.values_matrix(40, 5)
    store = _open(tmp_path, compact_min_rows=10**9)
    try:
        for b in workload.scrape_batches(labels, ts, vals, batch_series=40):
            store.append("t", b).result()
        before = store.select("t", [Matcher.of("=", "job", "node")], 0, 2**62)
        store.compact()
        br = store.storage_breakdown()
        assert br["head_rows"] == 0 and br["chunk_samples"] == 200 and br["chunk_rows"] == 40
        after = store.select("t", [Matcher.of("=", "job", "node")], 0, 2**62)
        assert np.array_equal(after.timestamps, before.timestamps)
        assert np.array_equal(after.values.view(np.uint64), before.values.view(np.uint64))
    finally:
        store.close()


def test_overlapping_chunks_and_head_merge_in_order(tmp_path: Path) -> None:
    # Late samples compacted after newer ones give chunks that overlap in time, and a head row
    # older than a chunk's end; select merges them by timestamp, series in label order.
    b = make_labels({"__name__": "up", "job": "b"})
    store = _open(tmp_path, compact_min_rows=1, chunk_target_samples=10**6)
    try:
        store.append("t", SampleBatch.from_series([(b, [(t, 1.0) for t in range(1000, 2001, 100)])])).result()
        store.append("t", SampleBatch.from_series([(UP, [(t, 2.0) for t in range(0, 1001, 200)])])).result()
        store.compact()
        store.append("t", SampleBatch.from_series([(b, [(1050, 3.0), (2500, 4.0)])])).result()
        store.append("t", SampleBatch.from_series([(UP, [(100, 5.0)])])).result()
        store.compact()
        store.append("t", SampleBatch.from_series([(b, [(1150, 6.0), (3000, 7.0)])])).result()
        store.append("t", SampleBatch.from_series([(UP, [(300, 8.0)])])).result()
        got = store.select("t", [Matcher.of("=", "__name__", "up")], 0, 10_000)
        assert got.labels == [UP, b]
        want_up = sorted([(t, 2.0) for t in range(0, 1001, 200)] + [(100, 5.0), (300, 8.0)])
        want_b = sorted([(t, 1.0) for t in range(1000, 2001, 100)] + [(1050, 3.0), (2500, 4.0), (1150, 6.0), (3000, 7.0)])
        for i, want in enumerate((want_up, want_b)):
            _, ts, vals = got.series(i)
            assert list(zip(ts.tolist(), vals.tolist(), strict=True)) == want
        cut = store.select("t", [Matcher.of("=", "__name__", "up")], 150, 1100)
        assert [cut.series(i)[1].tolist() for i in range(2)] == [
            [200, 300, 400, 600, 800, 1000],
            [1000, 1050, 1100],
        ]
    finally:
        store.close()


def test_reads_after_chunk_rewrite_see_new_values(tmp_path: Path) -> None:
    # The decoded-chunk cache is keyed by chunk content: replacing a sample inside a chunk (same
    # series, same time span, same length) must not serve the old decoded values.
    store = _open(tmp_path, compact_min_rows=1)
    try:
        store.append("t", SampleBatch.from_series([(UP, [(t, 1.0) for t in range(0, 1000, 100)])])).result()
        store.compact()
        sel = [Matcher.of("=", "__name__", "up")]
        assert store.select("t", sel, 0, 2000).values.tolist() == [1.0] * 10
        assert len(store._chunk_cache) == 1
        store.append("t", SampleBatch.from_series([(UP, [(500, 9.0)])])).result()
        store.compact()
        assert store.select("t", sel, 0, 2000).values.tolist() == [1.0] * 5 + [9.0] + [1.0] * 4
    finally:
        store.close()


def test_reads_stay_consistent_while_overwrites_rewrite_chunks(tmp_path: Path) -> None:
    """Each round rewrites every sample of every series with a new value: the first 40 timestamps
    live in chunks (rewritten in place), the last 20 in the head until a compaction (every 3rd
    round) moves them. A read pairs the in-memory head with a DuckDB snapshot of the chunks, so it
    must never mix two rounds, lose a sample or see one twice."""
    import threading

    from clearsight.store.storetest.contract import check_well_formed

    labels = [make_labels({"__name__": "g", "s": str(i)}) for i in range(20)]
    store = _open(tmp_path, compact_min_rows=10**9, chunk_target_samples=10**6, queue_max_batches=1000)
    sel = [Matcher.of("=", "__name__", "g")]

    def round_batch(v: float, n: int = 60) -> SampleBatch:
        return SampleBatch.from_series([(lbl, [(j * 1000, v) for j in range(n)]) for lbl in labels])

    errors: list[BaseException] = []
    done = threading.Event()
    reads = [0]

    def reader() -> None:
        try:
            while not done.is_set():
                data = store.select("t", sel, 0, 10**9)
                check_well_formed(data)
                assert len(data) == 20 and data.timestamps.shape[0] in (20 * 40, 20 * 60)
                assert len(set(data.values.tolist())) == 1, sorted(set(data.values.tolist()))
                reads[0] += 1
        except BaseException as e:
            errors.append(e)

    try:
        store.append("t", round_batch(0.0, 40)).result()
        store.compact()
        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for v in range(1, 90):
                store.append("t", round_batch(float(v))).result()
                if v % 3 == 0:
                    store.compact()
        finally:
            done.set()
            for t in threads:
                t.join()
        assert not errors, errors[0]
        assert reads[0] > 0
        assert store.select("t", sel, 0, 10**9).values.tolist() == [89.0] * 1200
    finally:
        store.close()


def _scrapes(store: EmbeddedMetricsStore, labels: list[Labels], ts: np.ndarray, vals: np.ndarray) -> list[int]:
    dups = []
    for b in workload.scrape_batches(labels, ts, vals, batch_series=100):
        dups.append(store.append("t", b).result().duplicates)
    return dups


def _scraped(tmp_path: Path, **kw: int) -> tuple[EmbeddedMetricsStore, tuple[list[Labels], np.ndarray, np.ndarray]]:
    """A store (no compaction until asked) holding 50 series x 20 scrapes, and those scrapes."""
    labels = workload.series_labels(50)
    ts = workload.timestamps(20)
    vals = workload.values_matrix(50, 20)
    store = _open(tmp_path, compact_min_rows=10**9, **kw)
    _scrapes(store, labels, ts, vals)
    return store, (labels, ts, vals)


def _table_rows(store: EmbeddedMetricsStore) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with store._reader() as cur:
        head = [tuple(r) for r in store._head_log.log.read()]
        chunks = cur.execute(f"SELECT series_id, min_ts, max_ts, n, data FROM {all_chunks(cur)} ORDER BY ALL").fetchall()
    return head, chunks


@pytest.mark.parametrize("where", ["head", "chunks"])
def test_identical_resend_writes_nothing(tmp_path: Path, where: str) -> None:
    labels = workload.series_labels(200)
    ts = workload.timestamps(30)
    vals = workload.values_matrix(200, 30)
    store = _open(tmp_path, compact_min_rows=10**9)
    try:
        assert sum(_scrapes(store, labels, ts, vals)) == 0
        if where == "chunks":
            store.compact()
        before = _table_rows(store)
        uids = store._catalog.snapshot().uid.tolist()
        segments = store._head.segments
        assert sum(_scrapes(store, labels, ts, vals)) == 200 * 30  # every sample recognised
        assert _table_rows(store) == before  # nothing deleted, rewritten or appended
        assert store._catalog.snapshot().uid.tolist() == uids  # no chunk replaced
        assert store._head.segments == segments
        assert store.stats().duplicates_total == 200 * 30
        assert store.stats().identical_total == 200 * 30
        assert store.stats().out_of_order_total == 0
        got = store.select("t", [Matcher.of("=", "job", "node")], 0, 2**62)
        assert got.timestamps.shape[0] == 200 * 30
    finally:
        store.close()


def test_resend_without_a_window_is_still_recognised(tmp_path: Path) -> None:
    """``window_max_samples=0`` (config storage.overwrite_window_samples): the writer keeps no
    decoded window, and a re-send into chunks is still recognised sample by sample."""
    store, (labels, ts, vals) = _scraped(tmp_path, window_max_samples=0)
    try:
        store.compact()
        before = _table_rows(store)
        assert sum(_scrapes(store, labels, ts, vals)) == 50 * 20
        assert store._window is None
        assert _table_rows(store) == before and store.stats().identical_total == 50 * 20
    finally:
        store.close()


def test_resend_decodes_its_chunks_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-send arriving as many groups, each over a narrow time range, decodes the chunks of the
    out-of-order window once (the writer's decoded window), not once per group's range."""
    import clearsight.store.embedded.duckdb_store as duckdb_store

    labels = workload.series_labels(50)
    ts = workload.timestamps(40)
    vals = workload.values_matrix(50, 40)
    store = _open(tmp_path, compact_min_rows=10**9)
    try:
        for part in (slice(0, 20), slice(20, 40)):  # two compactions: two chunks per series
            _scrapes(store, labels, ts[part], vals[:, part])
            store.compact()
        assert len(store._catalog.snapshot()) > 50
        decoded: list[int] = []
        real = duckdb_store.chunk_codec.decode

        def counting(n: np.ndarray, *args: object, **bounds: object) -> object:
            decoded.append(int(n.sum()))
            return real(n, *args, **bounds)  # type: ignore[arg-type]

        monkeypatch.setattr(duckdb_store.chunk_codec, "decode", counting)
        assert sum(_scrapes(store, labels, ts, vals)) == 50 * 40  # every sample recognised
        assert decoded == [50 * 40]
    finally:
        store.close()


def test_resend_with_changed_values_rewrites_only_touched_chunks(tmp_path: Path) -> None:
    a = make_labels({"__name__": "a"})
    b = make_labels({"__name__": "b"})
    store = _open(tmp_path, compact_min_rows=10**9)
    try:
        store.append("t", SampleBatch.from_series([(a, [(t, 1.0) for t in range(10)]),
                                                   (b, [(t, 2.0) for t in range(10)])])).result()
        store.compact()
        store.append("t", SampleBatch.from_series([(a, [(t, 1.0) for t in range(10, 20)])])).result()
        cat = store._catalog.snapshot()
        b_uid = int(cat.uid[cat.series_id == cat.series_id.max()][0])
        # One identical sample, one changed sample in a's chunk, one changed sample in the head.
        res = store.append("t", SampleBatch.from_series([(a, [(3, 1.0), (4, 7.0), (15, 8.0)])])).result()
        assert res.duplicates == 3 and res.samples_written == 3
        got = store.select("t", [Matcher.of("=", "__name__", "a")], 0, 100)
        assert got.values.tolist() == [1.0] * 4 + [7.0] + [1.0] * 10 + [8.0] + [1.0] * 4
        cat = store._catalog.snapshot()
        assert b_uid in cat.uid.tolist()  # b's chunk was not touched
        assert store.select("t", [Matcher.of("=", "__name__", "b")], 0, 100).values.tolist() == [2.0] * 10
    finally:
        store.close()


def test_late_samples_between_chunk_samples_go_to_the_head(tmp_path: Path) -> None:
    # An HA replica's samples, a few ms apart from the first replica's, already compacted.
    store = _open(tmp_path, compact_min_rows=10**9)
    try:
        store.append("t", SampleBatch.from_series([(UP, [(t * 1000, 1.0) for t in range(10)])])).result()
        store.compact()
        chunks_before = _table_rows(store)[1]
        res = store.append("t", SampleBatch.from_series([(UP, [(t * 1000 + 3, 2.0) for t in range(10)])])).result()
        assert res.duplicates == 0 and res.samples_written == 10
        assert store.stats().out_of_order_total == 9  # the last one is the series' newest sample
        assert _table_rows(store)[1] == chunks_before
        got = store.select("t", [Matcher.of("=", "__name__", "up")], 0, 10**6)
        assert got.timestamps.tolist() == sorted([t * 1000 for t in range(10)] + [t * 1000 + 3 for t in range(10)])
    finally:
        store.close()


def test_overwrite_checks_across_a_wide_time_span(tmp_path: Path) -> None:
    # Chunk timestamps 2**33 ms apart: the decoded window does not apply (key span), the chunks
    # are decoded for the call.
    store = _open(tmp_path, compact_min_rows=10**9, out_of_order_window_ms=2**40)
    try:
        store.append("t", SampleBatch.from_series([(UP, [(0, 1.0), (2**33, 2.0)])])).result()
        store.compact()
        res = store.append("t", SampleBatch.from_series([(UP, [(0, 1.0), (2**33, 5.0)])])).result()
        assert res.duplicates == 2
        assert store.select("t", [Matcher.of("=", "__name__", "up")], 0, 2**34).values.tolist() == [1.0, 5.0]
    finally:
        store.close()


def test_small_reads_of_cached_chunks_run_no_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = workload.series_labels(50)
    ts = workload.timestamps(20)
    store = _open(tmp_path, compact_min_rows=10**9)
    try:
        _scrapes(store, labels, ts, workload.values_matrix(50, 20))
        store.compact()  # the new chunks' bytes enter the blob cache
        want = store.select("t", [Matcher.of("=", "idx", "3")], 0, 2**62)

        def no_sql() -> None:
            raise AssertionError("a read went to DuckDB")

        monkeypatch.setattr(store, "_reader", no_sql)
        got = store.select("t", [Matcher.of("=", "idx", "3")], 0, 2**62)
        assert got.timestamps.shape[0] > 0 and got.labels == want.labels
        assert got.timestamps.tolist() == want.timestamps.tolist()
    finally:
        monkeypatch.undo()
        store.close()


def test_reads_fetch_chunks_missing_from_the_blob_cache(tmp_path: Path) -> None:
    store, _ = _scraped(tmp_path, chunk_blob_cache_bytes=0)
    try:
        want = store.select("t", [Matcher.of("=", "job", "node")], 0, 2**62)
        store.compact()
        assert store._catalog.blob_bytes == 0
        got = store.select("t", [Matcher.of("=", "job", "node")], 0, 2**62)
        assert np.array_equal(got.values.view(np.uint64), want.values.view(np.uint64))
        assert store._catalog.blob_misses > 0
    finally:
        store.close()


def test_read_limits_refuse_before_materialising(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clearsight.store.embedded import duckdb_store
    from clearsight.store.interface import ReadLimits, SampleLimitExceeded, read_limits

    monkeypatch.setattr(duckdb_store, "_READ_BATCH_CHUNKS", 7)
    labels = workload.series_labels(60)
    ts = workload.timestamps(30)
    store = _open(tmp_path, compact_min_rows=10**9)
    try:
        _scrapes(store, labels, ts, workload.values_matrix(60, 30))
        store.compact()
        _scrapes(store, labels, ts + 30 * 15_000, workload.values_matrix(60, 30))  # head rows too
        sel = [Matcher.of("=", "job", "node")]
        want = store.select("t", sel, 0, 2**62)
        total = int(want.timestamps.shape[0])
        assert total == 60 * 60
        calls = 0

        def stop() -> None:
            nonlocal calls
            calls += 1

        with read_limits(ReadLimits(max_samples=total, should_stop=stop)):
            got = store.select("t", sel, 0, 2**62)  # exactly at the limit: allowed
        assert np.array_equal(got.values.view(np.uint64), want.values.view(np.uint64))
        assert calls == -(-60 // 7)  # once per batch of 7 chunks
        with read_limits(ReadLimits(max_samples=total - 1)), pytest.raises(SampleLimitExceeded) as exc:
            store.select("t", sel, 0, 2**62)
        assert exc.value.limit == total - 1 and exc.value.needed > total - 1
        with read_limits(ReadLimits(max_samples=100)), pytest.raises(SampleLimitExceeded):
            store.select("t", sel, 0, 2**62)  # the head rows alone exceed it

        def abandon() -> None:
            raise TimeoutError("deadline")

        with read_limits(ReadLimits(should_stop=abandon)), pytest.raises(TimeoutError):
            store.select("t", sel, 0, int(ts[-1]))  # chunks only: stop is asked before decoding
    finally:
        monkeypatch.undo()
        store.close()


def test_one_chunk_per_series_reads_equal_the_general_assembly(tmp_path: Path) -> None:
    labels = workload.series_labels(40)
    ts = workload.timestamps(20)
    vals = workload.values_matrix(40, 20)
    store = _open(tmp_path, compact_min_rows=10**9)
    try:
        _scrapes(store, labels, ts, vals)
        store.compact()  # one chunk per series, an empty head
        for lo, hi in ((0, 2**62), (int(ts[5]), int(ts[12])), (int(ts[-1]), int(ts[-1]))):
            got = store.select("t", [], lo, hi)
            assert got.labels == sorted(got.labels) and len(got) == 40
            for i, lbl in enumerate(got.labels):
                j = labels.index(lbl)
                keep = (ts >= lo) & (ts <= hi)
                a, b = int(got.offsets[i]), int(got.offsets[i + 1])
                assert got.timestamps[a:b].tolist() == ts[keep].tolist()
                assert got.values[a:b].tolist() == vals[j][keep].tolist()
            assert got.timestamps.flags.writeable and got.values.flags.writeable
            got.values[:] = 0.0  # the caller's own arrays: the cache is unchanged
            again = store.select("t", [], lo, hi)
            assert bool(np.any(again.values != 0.0)) or not bool(np.any(vals != 0.0))
            one = store.select("t", [Matcher.of("=", "__name__", labels[3][0][1]), Matcher.of("=", "idx", "3")],
                               lo, hi)  # a single series: always in label order
            j = [i for i, lbl in enumerate(labels) if ("idx", "3") in lbl and lbl[0] == labels[3][0]]
            assert len(one) == len(j) == 1
            assert one.values.tolist() == vals[j[0]][(ts >= lo) & (ts <= hi)].tolist()
    finally:
        store.close()
