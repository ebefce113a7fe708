"""A range ``topk``/``bottomk`` picks its cells by one stable argsort and the first ``max(k)``
ranks (``aggregations._top_cells``): the cells whose lexsort rank (``_ranks``, what an instant
query orders its rows by) is below the column's k, for any values, NaNs, absences and k."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.query.promql.aggregations import _ranks, _top_cells
from clearsight.query.promql.engine import Engine
from clearsight.store.memory import MemorySeriesSelector

cells = st.tuples(st.one_of(st.floats(allow_nan=True), st.sampled_from([0.0, -0.0, 1.0, 1.0, np.inf, -np.inf])),
                  st.booleans())


@st.composite
def groups(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = draw(st.integers(1, 7))
    width = draw(st.integers(0, 5))
    drawn = draw(st.lists(cells, min_size=m * width, max_size=m * width))
    x = np.asarray([c[0] for c in drawn], dtype=np.float64).reshape(m, width)
    p = np.asarray([c[1] for c in drawn], dtype=bool).reshape(m, width)
    kk = np.asarray(draw(st.lists(st.sampled_from([-2.0, 0.0, 1.0, 2.0, 3.0, 9.0]), min_size=width,
                                  max_size=width)), dtype=np.float64)
    return p, x, np.minimum(kk, m)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["topk", "bottomk"]), groups())
def test_top_cells_are_the_cells_ranked_below_k(op: str, case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    p, x, kk = case
    want = p & (_ranks(op, p, x) < kk[None, :])
    assert _top_cells(op, p, x, kk).tolist() == want.tolist()


def test_range_topk_equals_instant_topk_at_each_step() -> None:
    """Through the engine: each step of a range ``topk``/``bottomk`` (cells picked) has the series
    the instant query (ranks) has at that time, ties and NaNs included."""
    sel = MemorySeriesSelector()
    rng = np.random.default_rng(3)
    ts = np.arange(0, 600_000, 15_000, dtype=np.int64)
    for i in range(12):
        vals = rng.integers(0, 4, size=ts.shape[0]).astype(np.float64)
        vals[rng.random(ts.shape[0]) < 0.1] = np.nan
        keep = rng.random(ts.shape[0]) < 0.8
        sel.add((("__name__", "m"), ("g", str(i % 3)), ("i", str(i))), ts[keep], vals[keep])
    eng = Engine()
    for q in ("topk(3, m)", "bottomk(2, m)", "topk by (g) (2, m)", "topk(scalar(count(m)) - 10, m)"):
        rng_res = eng.range(sel, q, 60_000, 540_000, 30_000)
        by_step: dict[int, set[tuple[tuple[str, str], ...]]] = {}
        for s in rng_res.series:
            for t in s.timestamps.tolist():
                by_step.setdefault(t, set()).add(s.labels)
        for t in range(60_000, 540_001, 30_000):
            inst = eng.instant(sel, q, t)
            assert by_step.get(t, set()) == {s.labels for s in inst.series}, (q, t)
