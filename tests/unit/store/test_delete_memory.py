"""``delete_series`` of the in-memory ``MemorySeriesSelector`` and of the embedded store agree: the
same samples, the same random deletions (matcher sets ORed, inclusive bounds), the same reads and
the same counts, with histogram samples in the mix, and whatever the size of the runs the embedded
store cuts a deletion into (deletion.slices)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import Labels
from clearsight.store.embedded import deletion, duckdb_store
from clearsight.store.memory import MemorySeriesSelector
from clearsight.store.storetest.contract import L, _open, m
from clearsight.store.storetest.contract_histograms import as_hdict, hist, hwrite, same
from tests.unit.store.test_contract_embedded import FACTORIES

SERIES = [L(__name__="x", job="a"), L(__name__="x", job="b"), L(__name__="y", job="a"), L(__name__="y")]
SELECTORS = ['job="a"', 'job="b"', '__name__="y"', 'job=""', '__name__=~"x|y"']
Samples = list[tuple[int, float | FloatHistogram]]

samples = st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=12, unique_by=lambda p: p[0])
deletes = st.lists(
    st.tuples(
        st.lists(st.sampled_from(SELECTORS), min_size=1, max_size=2), st.integers(-5, 35), st.integers(-5, 35)
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(samples, min_size=len(SERIES), max_size=len(SERIES)),
    deletes,
    st.sampled_from(list(FACTORIES)),
    st.sampled_from([1, 5, 1_000_000]),  # samples decoded per transaction: many runs, a few, one
)
def test_memory_and_embedded_delete_alike(
    per_series: list[list[tuple[int, bool]]], ops: list[tuple[list[str], int, int]], factory: str, run: int
) -> None:
    data: list[tuple[Labels, Samples]] = [
        (lbl, [(t * 1000, hist(t) if h else float(t)) for t, h in sorted(pts)])
        for lbl, pts in zip(SERIES, per_series, strict=True)
    ]
    mem = MemorySeriesSelector()
    for lbl, pts in data:
        if pts:
            mem.add(
                lbl,
                [t for t, _ in pts],
                [0.0 if isinstance(v, FloatHistogram) else v for _, v in pts],
                histograms=[v if isinstance(v, FloatHistogram) else None for _, v in pts],
            )
    with tempfile.TemporaryDirectory() as d, mock.patch.object(duckdb_store, "_DELETE_RUN_SAMPLES", run):
        store = _open(FACTORIES[factory], Path(d))
        try:
            hwrite(store, "t", [(lbl, pts) for lbl, pts in data if pts])
            for specs, a, b in ops:
                sets = [[m(s)] for s in specs]
                assert store.delete_series("t", sets, a * 1000, b * 1000) == mem.delete_series(
                    sets, a * 1000, b * 1000
                )
                want = as_hdict(mem.select([m('__name__=~".+"')], -(10**9), 10**9))
                got = as_hdict(store.select("t", [m('__name__=~".+"')], -(10**9), 10**9))
                assert set(got) == set(want) == set(store.series("t", [], -(10**9), 10**9))
                for k, v in want.items():
                    assert same(got[k], v), (k, got[k], v)
        finally:
            store.close()


def test_slices_bound_each_run_by_its_cost() -> None:
    ids = np.array([2, 5, 7, 9, 11], dtype=np.uint32)
    # series 5 costs 3 + 4, 9 costs 10 (over the budget: alone), 11 costs 1
    cost_sid = np.array([5, 9, 5, 11], dtype=np.uint32)
    cost = np.array([3, 10, 4, 1], dtype=np.int64)
    runs = [r.tolist() for r in deletion.slices(ids, cost_sid, cost, 8)]
    assert runs == [[2, 5, 7], [9], [11]]
    assert [r.tolist() for r in deletion.slices(ids, cost_sid, cost, 100)] == [ids.tolist()]
    assert deletion.slices(ids[:0], cost_sid[:0], cost[:0], 8) == []
