"""``delete_series`` on native histogram samples (embedded store, head and compacting factories):
the range goes, the rest stays with the newest write of each timestamp still winning, mixed float
and histogram series lose both kinds in the range, a series left empty is gone; durable across
reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearsight.model.histogram import FloatHistogram
from clearsight.store.storetest.contract import _open, m
from clearsight.store.storetest.contract_histograms import H_A, H_B, MIXED, as_hdict, hist, hwrite, same
from tests.unit.store.test_contract_embedded import FACTORIES

Samples = list[tuple[int, float | FloatHistogram]]


def _check(got: dict[object, Samples], want: dict[object, Samples]) -> None:
    assert set(got) == set(want)
    for k, v in want.items():
        assert same(got[k], v), (k, got[k], v)


@pytest.mark.parametrize("factory", list(FACTORIES), ids=list(FACTORIES))
def test_delete_series_removes_histogram_samples_in_the_range(factory: str, tmp_path: Path) -> None:
    make = FACTORIES[factory]
    a: Samples = [(t * 1000, hist(t)) for t in range(10)]
    mixed: Samples = [(t * 1000, hist(t) if t % 2 else float(t)) for t in range(10)]
    store = _open(make, tmp_path)
    try:
        hwrite(store, "t", [(H_A, a[:5]), (H_B, a), (MIXED, mixed)])
        hwrite(store, "t", [(H_A, a[5:])])
        # A rewrite of timestamps 6000..7000 (a newer row): the newest write must still win after
        # the deletion rewrites the series' rows.
        newer = [(6000, hist(60)), (7000, hist(70))]
        hwrite(store, "t", [(H_A, newer)])
        hwrite(store, "u", [(H_A, a)])
        a_now = [*a[:6], *newer, *a[8:]]
        assert store.delete_series("t", [[m('job="a"')]], 2000, 4000) == 3 + 3  # H_A and MIXED
        gap = [s for s in a_now if not 2000 <= s[0] <= 4000]
        mixed_gap = [s for s in mixed if not 2000 <= s[0] <= 4000]
        _check(
            as_hdict(store.select("t", [m('__name__=~".+"')], 0, 10**6)), {H_A: gap, H_B: a, MIXED: mixed_gap}
        )
        assert store.delete_series("t", [[m('job="b"')]], -(2**62), 2**62) == 10
        assert store.series("t", [], 0, 10**6) == sorted([H_A, MIXED])
    finally:
        store.close()
    store = _open(make, tmp_path)
    try:
        _check(as_hdict(store.select("t", [m('__name__=~".+"')], 0, 10**6)), {H_A: gap, MIXED: mixed_gap})
        _check(as_hdict(store.select("u", [m('__name__=~".+"')], 0, 10**6)), {H_A: a})
        # Deleting what is left of H_A then writing it again: a new series with only the new sample.
        assert store.delete_series("t", [[m('__name__="rpc_seconds"')]], -(2**62), 2**62) == len(gap)
        hwrite(store, "t", [(H_A, [(9000, hist(99))])])
        _check(
            as_hdict(store.select("t", [m('job="a"')], 0, 10**6)), {H_A: [(9000, hist(99))], MIXED: mixed_gap}
        )
    finally:
        store.close()
