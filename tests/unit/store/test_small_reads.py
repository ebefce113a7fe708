"""A store's selects through the compiled small-read path (``HeadView.read_cached``, ``_headsel.Segments``,
``_inrange``, ``DecodedChunkCache.cached_range``) answer exactly what the numpy path answers on the
same state: random series with samples only in chunks, only in the head, in both (overwrites and
late samples that overlap a chunk), NaN and stale-marker values, native histogram series, selections
that match nothing, ranges outside the data, and read limits that refuse (the same ``needed``)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.labels import Labels, make_labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import STALE_NAN, SampleBatch, SeriesData
from clearsight.store.embedded import catalog as catalog_mod
from clearsight.store.embedded import duckdb_store as store_mod
from clearsight.store.embedded import head as head_mod
from clearsight.store.embedded.duckdb_store import EmbeddedMetricsStore
from clearsight.store.interface import ReadLimits, SampleLimitExceeded, read_limits
from clearsight.store.storetest.contract_histograms import hist, hwrite

_tenants = itertools.count()

values_st = st.sampled_from([1.5, -0.0, 0.0, math.nan, STALE_NAN, math.inf, -2.25e300])
# per series: chunk samples (seconds), head samples written after the compaction (in two writes), whether it
# is a native histogram series, whether the selector matches it
series_st = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(0, 60), values_st), max_size=8, unique_by=lambda p: p[0]),
        st.lists(st.tuples(st.integers(0, 60), values_st), max_size=6, unique_by=lambda p: p[0]),
        st.booleans(),
        st.booleans(),
    ),
    max_size=5,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMetricsStore]:
    s = EmbeddedMetricsStore(Path(tmp_path_factory.mktemp("small-reads")), retention_ms=10**13,
                             out_of_order_window_ms=10**12, compact_min_rows=10**9, rollups=False)
    yield s
    s.close()


@contextmanager
def _numpy_path(store: EmbeddedMetricsStore) -> Iterator[None]:
    """The store read without its compiled modules (the head's view rebuilt without them)."""
    saved = head_mod._headsel, catalog_mod._inrange, store_mod._inrange
    head_mod._headsel = catalog_mod._inrange = store_mod._inrange = None
    store._head._segments = store._head._segments
    try:
        yield
    finally:
        head_mod._headsel, catalog_mod._inrange, store_mod._inrange = saved
        store._head._segments = store._head._segments


def _write(store: EmbeddedMetricsStore, tenant: str, rows: list[tuple[Labels, list[tuple[int, float]]]]) -> None:
    rows = [(lbl, s) for lbl, s in rows if s]
    if rows:
        store.append(tenant, SampleBatch.from_series(rows)).result(timeout=60)


def _read(store: EmbeddedMetricsStore, tenant: str, matchers: list[Matcher], lo: int, hi: int,
          cap: int | None) -> SeriesData | int:
    """The select's answer, or the ``needed`` of the SampleLimitExceeded it raised."""
    try:
        with read_limits(ReadLimits(max_samples=cap, should_stop=lambda: None)):
            return store.select(tenant, matchers, lo, hi)
    except SampleLimitExceeded as e:
        return e.needed


def _same(a: SeriesData | int, b: SeriesData | int) -> None:
    if isinstance(a, int) or isinstance(b, int):
        assert a == b
        return
    assert a.labels == b.labels
    assert a.offsets.tolist() == b.offsets.tolist()
    assert a.timestamps.tolist() == b.timestamps.tolist()
    assert a.values.view(np.int64).tolist() == b.values.view(np.int64).tolist()  # bit for bit: NaN payloads
    assert (a.histograms is None) == (b.histograms is None)
    if a.histograms is not None and b.histograms is not None:
        assert [repr(h) for h in a.histograms] == [repr(h) for h in b.histograms]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(series_st, st.integers(-10, 70), st.integers(-10, 70), st.sampled_from([None, -1, 0, 3, 10, 10**6]))
def test_compiled_reads_answer_as_the_numpy_path(
    store: EmbeddedMetricsStore, series: list[tuple[list[tuple[int, float]], list[tuple[int, float]], bool, bool]],
    a: int, b: int, cap: int | None,
) -> None:
    tenant = f"t{next(_tenants)}"
    labels = [make_labels({"__name__": f"m{i % 2}", "i": str(i), "sel": str(int(s[3]))})
              for i, s in enumerate(series)]
    base = 1_700_000_000_000
    _write(store, tenant, [(lbl, [(base + t * 1000, v) for t, v in c])
                           for lbl, (c, _, h, _) in zip(labels, series, strict=True) if not h])
    for i, (lbl, (c, _, h, _)) in enumerate(zip(labels, series, strict=True)):
        if h and c:
            hwrite(store, tenant, [(lbl, [(base + t * 1000, hist(i)) for t, _ in sorted(c)])])
    store.compact()
    for half in (0, 1):  # two head segments: the second's rows may be older than the first's
        _write(store, tenant, [(lbl, [(base + t * 1000, v) for t, v in hd[half::2]])
                               for lbl, (_, hd, h, _) in zip(labels, series, strict=True) if not h])
    lo, hi = base + min(a, b) * 1000, base + max(a, b) * 1000
    for matchers in ([Matcher.of("=", "sel", "1")], [Matcher.of("=~", "__name__", "m.*")],
                     [Matcher.of("=", "__name__", "absent")]):
        first = _read(store, tenant, matchers, lo, hi, cap)  # may decode chunks
        again = _read(store, tenant, matchers, lo, hi, cap)  # their decoded samples cached
        with _numpy_path(store):
            want = _read(store, tenant, matchers, lo, hi, cap)
        _same(first, want)
        _same(again, want)


def test_a_head_read_over_the_limit_is_refused_as_by_the_numpy_path(store: EmbeddedMetricsStore) -> None:
    tenant = f"t{next(_tenants)}"
    base = 1_800_000_000_000
    rows = [(make_labels({"__name__": "h", "i": str(i)}), [(base + t * 1000, float(t)) for t in range(5)])
            for i in range(3)]
    _write(store, tenant, rows)  # head only
    matchers = [Matcher.of("=", "__name__", "h")]
    for cap in (0, 14, 15, None):
        got = _read(store, tenant, matchers, base, base + 10_000, cap)
        with _numpy_path(store):
            want = _read(store, tenant, matchers, base, base + 10_000, cap)
        _same(got, want)
        if cap is not None and cap < 15:
            assert got == 15  # refused, naming the samples it would have returned
        else:
            assert isinstance(got, SeriesData) and len(got) == 3


def test_cached_reads_follow_overwrites_compactions_deletes_and_retention(tmp_path: Path) -> None:
    """The one-call read over cached chunks (``HeadView.read_cached``) takes the catalogue snapshot
    and the head of its moment: after each change that rewrites, adds or removes chunks (an
    overwrite of a chunk's sample, a late sample, a compaction, a delete, retention) a read whose
    chunks were cached before answers the new state, the same as the numpy path and as a dict
    model of what was written."""
    s = EmbeddedMetricsStore(tmp_path, retention_ms=10**13, out_of_order_window_ms=10**12, compact_min_rows=10**9,
                             rollups=False)
    base = 1_700_000_000_000
    labels = [make_labels({"__name__": "m", "i": str(i)}) for i in range(3)]
    model: dict[int, dict[int, float]] = {i: {} for i in range(3)}
    sel = [Matcher.of("=", "__name__", "m")]

    def write(points: dict[int, list[tuple[int, float]]]) -> None:
        _write(s, "t", [(labels[i], [(base + t * 1000, v) for t, v in p]) for i, p in points.items()])
        for i, p in points.items():
            model[i].update({base + t * 1000: v for t, v in p})

    def check(lo_s: int, hi_s: int) -> None:
        lo, hi = base + lo_s * 1000, base + hi_s * 1000
        _read(s, "t", sel, lo, hi, None)  # decodes what is not cached yet
        hits = s._chunk_cache.hits
        got = _read(s, "t", sel, lo, hi, 10**6)
        assert isinstance(got, SeriesData)
        if any(lo <= t <= hi for i in range(3) for t in model[i] if t < base + 40_000):
            assert s._chunk_cache.hits > hits  # the chunks came from the cache
        with _numpy_path(s):
            _same(got, _read(s, "t", sel, lo, hi, 10**6))
        want = [(labels[i], sorted((t, v) for t, v in model[i].items() if lo <= t <= hi)) for i in range(3)]
        want = [w for w in want if w[1]]
        assert got.labels == [w[0] for w in want]
        assert got.timestamps.tolist() == [t for w in want for t, _ in w[1]]
        assert got.values.tolist() == [v for w in want for _, v in w[1]]

    try:
        write({i: [(t, float(t * 10 + i)) for t in range(0, 40, 2)] for i in range(3)})
        s.compact()
        write({i: [(t, float(t * 10 + i)) for t in range(40, 50, 2)] for i in range(3)})
        for lo_s, hi_s in ((0, 50), (30, 45), (10, 20), (45, 50)):
            check(lo_s, hi_s)
        write({0: [(10, -1.5)]})  # overwrites a chunk's sample: the chunk is rewritten
        check(0, 50)
        check(5, 15)
        write({1: [(11, 7.25)]})  # a late sample inside a chunk's span
        check(0, 50)
        check(5, 15)
        s.compact()  # the head's rows become chunks
        check(0, 50)
        check(40, 50)
        s.delete_series("t", [[Matcher.of("=", "i", "2")]], base + 12_000, base + 44_000)
        model[2] = {t: v for t, v in model[2].items() if not base + 12_000 <= t <= base + 44_000}
        check(0, 50)
        check(10, 46)
        s.apply_retention(base + 20_000 + s.retention_ms)
        for i in range(3):
            model[i] = {t: v for t, v in model[i].items() if t >= base + 20_000}
        check(0, 50)
        check(15, 25)
    finally:
        s.close()
