"""Label names and label values listings (label_listing.py) against a pass over the series the
store's ``series`` returns for the same selection and range: random series sets over two tenants,
ranges, deletions, retention, compaction and reopening; the index's sorted listings and counts
against its label sets; the listing cache's generations and bounds."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.labels import Labels, make_labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import SampleBatch
from clearsight.store.embedded import EmbeddedMetricsStore, duckdb_store
from clearsight.store.embedded.index import TenantIndex
from clearsight.store.embedded.label_listing import Listing, ListingCache, scan, scan_counts, without

TENANTS = ["t1", "t2"]
NAMES = ["__name__", "job", "inst", "zone", "absent"]
MATCHER_SETS: list[list[list[Matcher]]] = [
    [],
    [[Matcher.of("=", "__name__", "a")]],
    [[Matcher.of("=~", "job", "x|y")]],
    [[Matcher.of("!=", "zone", "")]],
    [[Matcher.of("=", "__name__", "b")], [Matcher.of("=", "inst", "1")]],
    [[Matcher.of("=~", "__name__", ".+")]],  # every series, through a matcher
]
RANGES = [(0, 10**9), (0, 5_000), (10_000, 20_000), (30_000, 40_000), (19_000, 19_000), (45_000, 60_000)]

label_sets = st.builds(
    lambda name, job, inst, zone: make_labels({"__name__": name, "job": job, "inst": inst, "zone": zone}),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["x", "y", "z", ""]),
    st.sampled_from(["1", "2", "3", "4", ""]),
    st.sampled_from(["", "", "eu"]),
)
# A series' samples: a run of scrapes somewhere in 0-40 s (so ranges cut the series set).
runs = st.tuples(st.integers(0, 40), st.integers(1, 8)).map(
    lambda r: [(min(40, r[0] + k) * 1000, float(k)) for k in range(r[1])])
batches = st.lists(st.tuples(label_sets, runs), min_size=1, max_size=8)
seconds = st.integers(0, 40).map(lambda s: s * 1000)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.sampled_from(TENANTS), batches),
        st.tuples(st.just("retention"), st.integers(0, 60).map(lambda s: s * 1000)),
        st.tuples(st.just("delete"), st.sampled_from(TENANTS), st.sampled_from(["x", "y", ""]), seconds, seconds),
        st.tuples(st.just("compact")),
        st.tuples(st.just("reopen")),
    ),
    min_size=1,
    max_size=10,
)


def _open(d: Path) -> EmbeddedMetricsStore:
    return EmbeddedMetricsStore(d, retention_ms=20_000, out_of_order_window_ms=60_000, queue_max_batches=64,
                                duckdb_threads=1, compact_min_rows=10**9, chunk_target_samples=4,
                                partition_ms=10_000)


def _expected(store: EmbeddedMetricsStore, tenant: str, name: str | None, ms: list[list[Matcher]], start: int,
              end: int) -> list[str]:
    """The listing as a pass over the label sets ``series`` returns (the path used before)."""
    found = store.series(tenant, ms, start, end)
    if name is None:
        return sorted({n for lbls in found for n, _ in lbls})
    return sorted({v for lbls in found for n, v in lbls if n == name})


def _check(store: EmbeddedMetricsStore) -> int:
    """Every listing of every tenant, selection and range, twice (the second from what the first
    kept), with and without a limit; returns how many were not empty."""
    non_empty = 0
    for tenant in [*TENANTS, "nobody"]:
        for ms in MATCHER_SETS:
            for start, end in RANGES:
                for name in [None, *NAMES]:
                    want = _expected(store, tenant, name, ms, start, end)
                    non_empty += bool(want)
                    for _ in range(2):
                        if name is None:
                            assert store.label_names(tenant, ms, start, end) == want
                            assert store.label_names(tenant, ms, start, end, limit=2) == want[:2]
                        else:
                            assert store.label_values(tenant, name, ms, start, end) == want
                            assert store.label_values(tenant, name, ms, start, end, limit=1) == want[:1]
    return non_empty


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.sampled_from([(0, 4096), (0, 3), (256, 4096)]))
def test_listings_match_a_pass_over_the_series(operations: list[Any], thresholds: tuple[int, int]) -> None:
    """``thresholds``: the store's (``_LISTING_SCAN_IDS``, ``_SMALL_ID_SET``), lowered so that these
    few series take every path (the listing less the series out of range, kept subsets, postings)."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(duckdb_store, "_LISTING_SCAN_IDS", thresholds[0])
        mp.setattr(duckdb_store, "_SMALL_ID_SET", thresholds[1])
        store = _open(Path(tmp))
        try:
            for op in operations:
                if op[0] == "append":
                    store.append(op[1], SampleBatch.from_series(op[2])).result(timeout=60)
                elif op[0] == "retention":
                    store.apply_retention(op[1])
                elif op[0] == "delete":
                    _, tenant, job, a, b = op
                    store.delete_series(tenant, [[Matcher.of("=", "job", job)]], min(a, b), max(a, b))
                elif op[0] == "compact":
                    store.compact()
                else:
                    store.close()
                    store = _open(Path(tmp))
                _check(store)
        finally:
            store.close()


def test_large_selections_use_the_postings() -> None:
    """More series than the label-set pass takes (4,096): the listings are counted on the postings
    (and made from the postings when most series are out of the range). ``inst`` and ``zone`` go
    with the series' time, so ranges leave some of their values, and ``zone``, out."""
    n = 12_000
    series = [
        (make_labels({"__name__": f"m{i % 7}", "job": f"j{i % 3}", "inst": str(i % 40), "host": str(i),
                      **({"zone": f"z{i % 3}"} if i % 40 >= 35 else {})}),
         [((i % 40) * 1000, 1.0), ((i % 40) * 1000 + 500, 2.0)])
        for i in range(n)
    ]
    sets: list[list[list[Matcher]]] = [[], [[Matcher.of("!=", "__name__", "m3")]], [[Matcher.of("=~", "job", "j0|j1")]]]
    with tempfile.TemporaryDirectory() as tmp:
        store = _open(Path(tmp))
        try:
            assert store.append("t", SampleBatch.from_series(series)).result(timeout=120).series_created == n
            ranges = [(0, 10**6), (0, 30_000), (0, 15_000), (12_000, 36_000), (35_000, 35_000), (39_500, 39_500)]
            non_empty = 0
            for _ in range(2):
                for ms in sets:
                    for start, end in ranges:
                        for name in [None, "zone", "inst", "absent"]:
                            want = _expected(store, "t", name, ms, start, end)
                            non_empty += bool(want)
                            got = (store.label_names("t", ms, start, end) if name is None
                                   else store.label_values("t", name, ms, start, end))
                            assert got == want
                # retention: series ending before the cutoff go, the others start at it
                store.apply_retention(20_000 + store.retention_ms)
            assert non_empty > 50
        finally:
            store.close()


def test_a_listing_follows_deletions_that_keep_every_series() -> None:
    """A deletion that moves a series' bounds without removing it leaves the index generation as
    it was: listings read the bounds at every call."""
    with tempfile.TemporaryDirectory() as tmp:
        store = _open(Path(tmp))
        try:
            store.append("t", SampleBatch.from_series([
                (make_labels({"__name__": "up", "job": "a"}), [(1000, 1.0), (9000, 1.0)]),
                (make_labels({"__name__": "up", "job": "b", "zone": "eu"}), [(1000, 1.0)]),
            ])).result(timeout=60)
            ms = [[Matcher.of("=", "__name__", "up")]]
            assert store.label_values("t", "job", ms, 5000, 9000) == ["a"]
            assert store.label_names("t", [], 0, 9000) == ["__name__", "job", "zone"]
            store.delete_series("t", [[Matcher.of("=", "job", "a")]], 5000, 9000)
            assert store.label_values("t", "job", ms, 5000, 9000) == []
            assert store.label_values("t", "job", [], 0, 2000) == ["a", "b"]
            store.delete_series("t", [[Matcher.of("=", "job", "b")]], 0, 2000)
            assert store.label_names("t", [], 0, 9000) == ["__name__", "job"]
            assert store.label_values("t", "job", ms, 0, 9000) == ["a"]
        finally:
            store.close()


# --- the index's listings, the pieces -----------------------------------------------------------

index_labels = st.dictionaries(st.sampled_from(["__name__", "job", "mode"]), st.sampled_from(["a", "b", "c", "d"]),
                               min_size=1).map(make_labels)


@settings(max_examples=200, deadline=None)
@given(st.lists(index_labels, min_size=1, max_size=30), st.data())
def test_index_listings_and_counts(series: list[Labels], data: st.DataObject) -> None:
    idx = TenantIndex()
    labels: list[Labels] = [(), *series]
    for i, lbls in enumerate(series, start=1):
        idx.add(i, lbls)
    seen = {idx.generation}
    for _ in range(2):
        dead = sorted(data.draw(st.sets(st.integers(1, len(series)), max_size=len(series) // 2 + 1)))
        assert idx.names_sorted() == scan(labels, idx.all(), None)  # kept, then recomputed after the removal
        idx.remove(np.asarray(dead, dtype=np.uint32), [labels[i] for i in dead if labels[i]])
        if dead:
            assert idx.generation not in seen
            seen.add(idx.generation)
        for i in dead:
            labels[i] = ()
        alive = idx.all()
        assert idx.names_sorted() == scan(labels, alive, None)
        for name in ("job", "mode", "zone"):
            assert idx.values_sorted(name) == scan(labels, alive, name)
        some = np.asarray(sorted(data.draw(st.sets(st.sampled_from(alive.tolist())))) if alive.size else [],
                          dtype=np.uint32)
        assert idx.name_counts(some) == scan_counts(labels, some, None)
        for name in ("job", "mode", "zone"):
            assert idx.value_counts(name, some) == scan_counts(labels, some, name)
        counts = scan_counts(labels, alive, None)
        assert {n: idx.name_count(n) for n in [*counts, "zone"]} == {**counts, "zone": 0}
        job_counts = scan_counts(labels, alive, "job")
        assert {v: idx.value_count("job", v) for v in "abcd"} == {v: job_counts.get(v, 0) for v in "abcd"}


@settings(max_examples=200, deadline=None)
@given(st.lists(index_labels, min_size=1, max_size=30), st.data())
def test_without_drops_exactly_the_keys_of_the_series_left_out(series: list[Labels], data: st.DataObject) -> None:
    labels: list[Labels] = [(), *series]
    every = np.arange(1, len(series) + 1, dtype=np.uint32)
    gone = np.asarray(sorted(data.draw(st.sets(st.integers(1, len(series))))), dtype=np.uint32)
    kept = np.setdiff1d(every, gone).astype(np.uint32)
    limit = data.draw(st.one_of(st.none(), st.integers(1, 3)))
    for name in (None, "job", "mode"):
        listing = Listing.of(scan_counts(labels, every, name))
        got = without(listing.keys, [labels[i] for i in gone.tolist()], name, listing.counts.__getitem__, limit)
        want = scan(labels, kept, name)
        assert got == (want[:limit] if limit is not None else want)


def test_listing_cache_generations_and_bounds() -> None:
    cache = ListingCache(max_entries=3, max_keys=5)
    one, two = Listing.of({"a": 1}), Listing.of({"a": 1, "b": 2})
    cache.put("t", "k", 10, one)
    assert cache.get("t", "k", 10) is one
    assert cache.get("t", "k", 11) is None  # the index changed since
    cache.put("t", "k", 9, two)  # computed from an older state: refused
    assert cache.get("t", "k", 10) is one
    cache.put("t", "j", 12, two)  # a newer generation drops the tenant's older entries
    assert cache.get("t", "k", 10) is None and cache.get("t", "j", 12) is two
    assert (cache.entries, cache.keys) == (1, 2)
    cache.put("t", "j", 12, one)  # replaced
    assert cache.get("t", "j", 12) is one and (cache.entries, cache.keys) == (1, 1)
    cache.put("t", "j", 12, two)
    gone = np.asarray([3, 7], dtype=np.uint32)
    cache.put_subset("t", "j", 12, gone, ["a"])  # beside the listing of the same key
    assert cache.get_subset("t", "j", 12, gone.copy()) == ["a"] and cache.get("t", "j", 12) is two
    assert cache.get_subset("t", "j", 12, gone[:1]) is None  # other series left out
    assert cache.get_subset("t", "j", 13, gone) is None
    cache.clear()
    cache.put("t", "j", 12, two)
    assert (cache.entries, cache.keys) == (1, 2)
    cache.put("u", "k", 1, two)
    cache.put("u", "j", 1, one)
    assert (cache.entries, cache.keys) == (3, 5)
    cache.put("u", "i", 1, one)  # past a bound: starts again empty
    assert (cache.entries, cache.keys) == (1, 1)
    assert cache.get("t", "j", 12) is None and cache.get("u", "i", 1) is one
    cache.put("u", "big", 1, Listing.of(dict.fromkeys("abcdef", 1)))  # larger than the whole bound: not kept
    assert cache.get("u", "big", 1) is None
    cache.clear()
    assert (cache.entries, cache.keys) == (0, 0)
