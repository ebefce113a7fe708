"""Random operation sequences against the embedded store vs a plain-Python model of the contract."""

from __future__ import annotations

import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.labels import Labels, make_labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import STALE_NAN, SampleBatch
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.embedded.chunk_parts import all_chunks
from clearsight.store.interface import AppendResult, LimitExceeded
from tests.support.head_log import replay as _replay

WINDOW = 10_000
RETENTION = 30_000
LIMIT = 5
TENANTS = ["t1", "t2"]

SeriesSpec = tuple[Labels, list[tuple[int, float]]]


def _bits(v: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", v))[0])


@dataclass
class Model:
    data: dict[tuple[str, Labels], dict[int, float]] = field(default_factory=dict)
    maxts: dict[tuple[str, Labels], int] = field(default_factory=dict)
    floor: int = -(2**62)  # samples older than the last applied retention cutoff are refused
    deleted_total: int = 0

    def append(self, tenant: str, series: list[SeriesSpec]) -> AppendResult | None:
        """Returns the expected result, or None when the batch must be rejected by the limit."""
        active = {k for k in self.data if k[0] == tenant}
        new = {(tenant, lbl) for lbl, samples in series if any(t >= self.floor for t, _ in samples)} - active
        if len(active) + len(new) > LIMIT:
            return None
        res = AppendResult(series_created=len(new))
        before = dict(self.maxts)
        for lbl, samples in series:
            key = (tenant, lbl)
            for ts, v in samples:
                if (key in before and ts < before[key] - WINDOW) or ts < self.floor:
                    res.out_of_bounds += 1
                    continue
                res.samples_written += 1
                d = self.data.setdefault(key, {})
                if ts in d:
                    res.duplicates += 1
                d[ts] = v
                self.maxts[key] = max(self.maxts.get(key, ts), ts)
        return res

    def retention(self, now: int) -> int:
        cutoff = now - RETENTION
        self.floor = max(self.floor, cutoff)
        deleted = 0
        for key in list(self.data):
            d = self.data[key]
            old = [t for t in d if t < cutoff]
            deleted += len(old)
            for t in old:
                del d[t]
            if not d:
                del self.data[key]
                del self.maxts[key]
        self.deleted_total += deleted
        return deleted

    def delete(self, tenant: str, job: str, start: int, end: int) -> int:
        """delete_series({job="<job>"}, start, end) of one tenant ("" matches series without job)."""
        deleted = 0
        for key in list(self.data):
            if key[0] != tenant or dict(key[1]).get("job", "") != job:
                continue
            d = self.data[key]
            gone = [t for t in d if start <= t <= end and t >= self.floor]
            deleted += len(gone)
            for t in gone:
                del d[t]
            if not d:
                del self.data[key]
                del self.maxts[key]
            elif gone:
                self.maxts[key] = max(d)
        return deleted

    def expected(self, tenant: str, start: int, end: int) -> dict[Labels, list[tuple[int, int]]]:
        out = {}
        for (t, lbl), d in self.data.items():
            if t != tenant:
                continue
            pts = sorted((ts, _bits(v)) for ts, v in d.items() if start <= ts <= end)
            if pts:
                out[lbl] = pts
        return out


label_sets = st.builds(
    lambda name, job, inst: make_labels({"__name__": name, "job": job, "inst": inst}),
    st.sampled_from(["a", "b"]),
    st.sampled_from(["x", "y", ""]),
    st.sampled_from(["1", "2", "3", ""]),
)
values = st.one_of(st.integers(-5, 5).map(float), st.just(STALE_NAN), st.floats(allow_nan=False, width=64))
samples = st.lists(st.tuples(st.integers(0, 40).map(lambda s: s * 1000), values), max_size=6)
batches = st.lists(st.tuples(label_sets, samples), min_size=0, max_size=5)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.sampled_from(TENANTS), batches),
        st.tuples(
            st.just("group"), st.lists(st.tuples(st.sampled_from(TENANTS), batches), min_size=2, max_size=5)
        ),
        st.tuples(st.just("retention"), st.integers(0, 100).map(lambda s: s * 1000)),
        st.tuples(st.just("reopen")),
        st.tuples(st.just("compact")),
        st.tuples(
            st.just("delete"),
            st.sampled_from(TENANTS),
            st.sampled_from(["x", "y", ""]),
            st.integers(0, 40).map(lambda s: s * 1000),
            st.integers(0, 40).map(lambda s: s * 1000),
        ),
        # Send an earlier batch again, unchanged (a remote-write retry, an HA replica).
        st.tuples(st.just("resend"), st.integers(0, 100)),
    ),
    min_size=1,
    max_size=12,
)


def _open(d: Path, blob_cache_bytes: int) -> EmbeddedMetricsStore:
    # Compaction only when asked ("compact" op), so samples mix between head and chunks.
    return EmbeddedMetricsStore(
        d,
        retention_ms=RETENTION,
        out_of_order_window_ms=WINDOW,
        max_active_series_per_tenant=LIMIT,
        queue_max_batches=64,
        duckdb_threads=1,
        compact_min_rows=10**9,
        chunk_target_samples=4,
        chunk_blob_cache_bytes=blob_cache_bytes,
        partition_ms=10_000,  # the ops' 0-60 s span several chunk partitions, dropped by retention
    )


def _check_result(got_future: object, want: AppendResult | None) -> None:
    import concurrent.futures

    assert isinstance(got_future, concurrent.futures.Future)
    if want is None:
        exc = got_future.exception(timeout=60)
        assert isinstance(exc, LimitExceeded), exc
    else:
        assert got_future.result(timeout=60) == want


def _compare(store: EmbeddedMetricsStore, model: Model, start: int, end: int) -> None:
    for tenant in TENANTS:
        data = store.select(tenant, [Matcher.of("=~", "__name__", ".+")], start, end)
        got = {}
        for i in range(len(data)):
            lbl, ts, vs = data.series(i)
            got[lbl] = [(int(t), _bits(float(v))) for t, v in zip(ts, vs, strict=True)]
        assert got == model.expected(tenant, start, end)
        assert set(store.series(tenant, [], start, end)) >= set(got)
    _check_mirrors(store)


def _check_mirrors(store: EmbeddedMetricsStore) -> None:
    """The in-memory head holds exactly the rows the head log describes, and the chunk catalogue
    exactly the rows of the chunks table (with the right bytes for every cached blob)."""
    with store._reader() as cur:
        h_sid, h_ts, h_vals, damaged, _ = _replay(store, cur)
        assert damaged == 0
        rows = list(zip(h_sid.tolist(), h_ts.tolist(), h_vals.view(np.int64).tolist(), strict=True))
        chunks = cur.execute(
            f"SELECT series_id, min_ts, max_ts, n, codec, scale, data FROM {all_chunks(cur)} ORDER BY series_id, min_ts"
        ).fetchall()
    sid, ts, vals = store._head.select(np.arange(1, 10_000, dtype=np.uint32), -(2**62), 2**62)
    mirror = list(zip(sid.tolist(), ts.tolist(), vals.view(np.int64).tolist(), strict=True))
    assert mirror == [tuple(r) for r in rows]
    cat = store._catalog.snapshot()
    listed = list(zip(cat.series_id.tolist(), cat.min_ts.tolist(), cat.max_ts.tolist(), cat.n.tolist(),
                      cat.codec.tolist(), cat.scale.tolist(), strict=True))
    assert listed == [tuple(r[:6]) for r in chunks]
    for blob, row in zip(store._catalog.blobs(cat.uid), chunks, strict=True):
        assert blob is None or blob == bytes(row[6])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.integers(0, 60_000), st.integers(0, 60_000), st.sampled_from([0, 200, 64 << 20]))
def test_store_matches_model(operations: list[Any], a: int, b: int, blob_cache_bytes: int) -> None:
    """``blob_cache_bytes``: 0 sends every chunk read to DuckDB, 200 evicts constantly."""
    model = Model()
    physical = 0
    sent: list[tuple[str, list[SeriesSpec]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = _open(Path(tmp), blob_cache_bytes)
        try:
            for op in operations:
                if op[0] in ("append", "resend"):
                    if op[0] == "append":
                        _, tenant, spec = op
                        sent.append((tenant, spec))
                    elif sent:
                        tenant, spec = sent[op[1] % len(sent)]
                    else:
                        continue
                    fut = store.append(tenant, SampleBatch.from_series(spec))
                    _check_result(fut, model.append(tenant, spec))
                elif op[0] == "group":
                    futs = [(store.append(t, SampleBatch.from_series(spec)), t, spec) for t, spec in op[1]]
                    for fut, t, spec in futs:
                        _check_result(fut, model.append(t, spec))
                elif op[0] == "retention":
                    # Expired samples vanish from reads at once (compared below); the store may
                    # reclaim chunk space later, so only the running total is bounded.
                    physical += store.apply_retention(op[1])
                    model.retention(op[1])
                    assert physical <= model.deleted_total
                elif op[0] == "compact":
                    store.compact()
                elif op[0] == "delete":
                    _, tenant, job, start, end = op
                    got = store.delete_series(tenant, [[Matcher.of("=", "job", job)]], start, end)
                    assert got == model.delete(tenant, job, start, end)
                else:
                    store.close()
                    store = _open(Path(tmp), blob_cache_bytes)
                _compare(store, model, 0, 10**9)
            _compare(store, model, min(a, b), max(a, b))
        finally:
            store.close()
