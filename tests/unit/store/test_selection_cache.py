"""The embedded store remembers which series a matcher set selects (selection_cache.py): a remembered
selection must never outlive a change of the tenant's index. Every read below repeats a selector
the store has already answered (so the second answer can come from the cache), across new series,
deleted series, other tenants' writes and a reopen; and the cache's own bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clearsight.store.embedded.duckdb_store import EmbeddedMetricsStore
from clearsight.store.embedded.selection_cache import SelectionCache
from clearsight.store.storetest.contract import L, as_dict, m, write

A1 = L(__name__="up", job="a", instance="1")
A2 = L(__name__="up", job="a", instance="2")
B1 = L(__name__="up", job="b", instance="1")


def _open(d: Path) -> EmbeddedMetricsStore:
    return EmbeddedMetricsStore(d, retention_ms=365 * 86_400_000, out_of_order_window_ms=3_600_000,
                                max_active_series_per_tenant=0)


def _names(store: EmbeddedMetricsStore, tenant: str, *specs: str) -> set[str]:
    return {dict(lbl)["instance"] for lbl in as_dict(store.select(tenant, [m(s) for s in specs], 0, 10**6))}


def test_selection_follows_new_and_deleted_series(tmp_path: Path) -> None:
    store = _open(tmp_path)
    try:
        write(store, "t", [(A1, [(1000, 1.0)]), (B1, [(1000, 2.0)])])
        for _ in range(2):  # the second read may be answered from the cache
            assert _names(store, "t", 'job="a"') == {"1"}
            assert _names(store, "t", 'job=~"a|b"', 'instance="1"') == {"1"}
        hits = store._selections.hits
        assert _names(store, "t", 'job="a"') == {"1"}
        assert store._selections.hits > hits  # the cache answered
        # A new series of job a: the remembered selection must not hide it.
        write(store, "t", [(A2, [(2000, 3.0)])])
        assert _names(store, "t", 'job="a"') == {"1", "2"}
        assert _names(store, "t", 'job="a"') == {"1", "2"}
        # Another tenant's new series leave this tenant's selections in place and invisible to it.
        write(store, "u", [(L(__name__="up", job="a", instance="9"), [(1000, 1.0)])])
        assert _names(store, "t", 'job="a"') == {"1", "2"}
        assert _names(store, "u", 'job="a"') == {"9"}
        # A whole series deleted: gone from the next select of the same selector.
        assert store.delete_series("t", [[m('instance="2"')]], -(2**62), 2**62) == 1
        assert _names(store, "t", 'job="a"') == {"1"}
        # Written again, it comes back (as a new series).
        write(store, "t", [(A2, [(5000, 4.0)])])
        assert _names(store, "t", 'job="a"') == {"1", "2"}
        # The time range is applied on every read, not remembered with the selection.
        assert as_dict(store.select("t", [m('job="a"')], 4000, 6000)) == {A2: [(5000, 4.0)]}
        assert as_dict(store.select("t", [m('job="a"')], 0, 1500)) == {A1: [(1000, 1.0)]}
    finally:
        store.close()
    store = _open(tmp_path)
    try:
        assert _names(store, "t", 'job="a"') == {"1", "2"}
        assert _names(store, "t", 'job="b"') == {"1"}
    finally:
        store.close()


def _ids(*xs: int) -> np.ndarray:
    return np.array(xs, dtype=np.uint32)


def test_cache_bounds() -> None:
    c = SelectionCache(max_entries=2, max_ids=5, max_selection=3)
    k1, k2, k3 = (c.key([[m(f'job="{j}"')]]) for j in "abc")
    c.put("t", k1, _ids(1, 2))
    c.put("t", k2, _ids(3))
    assert c.get("t", k1) is not None and c.get("t", k2) is not None
    assert c.get("u", k1) is None  # per tenant
    c.put("t", k3, _ids(4))  # a third entry: the tenant's selections are dropped first
    assert c.get("t", k1) is None and c.get("t", k3) is not None
    c.put("t", k1, _ids(1, 2, 3, 4))  # wider than max_selection: not kept
    assert c.get("t", k1) is None
    c.put("u", k1, _ids(1, 2, 3))
    assert c.cached_ids == 4
    c.put("v", k1, _ids(5, 6))  # past max_ids: everything goes
    assert c.cached_ids == 2 and c.get("u", k1) is None
    kept = c.get("v", k1)
    assert kept is not None and not kept.flags.writeable  # shared by readers: read-only
    c.forget("v")
    assert c.cached_ids == 0 and c.get("v", k1) is None


def test_zero_ids_turns_the_cache_off() -> None:
    c = SelectionCache(max_ids=0)
    k = c.key([[m('job="a"')]])
    c.put("t", k, _ids(1, 2))
    c.put("t", c.key([]), _ids())
    assert c.get("t", k) is None and c.get("t", c.key([])) is None and c.cached_ids == 0
