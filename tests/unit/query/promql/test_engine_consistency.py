"""Property tests: a range query must agree, step by step, with instant queries at those steps.

The engine evaluates all steps at once (numpy over series x steps); instant queries are the
k == 1 case. Comparing both over random data (gaps, stale markers, NaN) catches vectorization
mistakes that hand-written cases miss.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.labels import Labels
from clearsight.model.samples import STALE_NAN
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.values import QueryError
from clearsight.store.memory import MemorySeriesSelector

S = 1000
QUERIES = [
    "m",
    "m offset 30s",
    "m @ 100",
    "-m",
    "m * 2 + 1",
    "m > 3",
    "m > bool 3",
    "sum(m)",
    "sum by (g) (m)",
    "avg without (i) (m)",
    "max by (g) (m)",
    "count(m)",
    "stddev(m)",
    "quantile(0.3, m)",
    "topk(2, m)",
    "bottomk by (g) (1, m)",
    "count_values(\"v\", m)",
    "m + on(i) group_left n",
    "m / ignoring(g) n",
    "m and n",
    "m or n",
    "m unless n",
    "m + fill(0) n",
    "rate(m[1m])",
    "max_over_time(m[45s])",
    "sum_over_time(m[1m:20s])",
    "last_over_time(m[2m:15s] offset 10s)",
]

value = st.one_of(
    st.floats(-100, 100, allow_nan=False),
    st.just(math.nan),
    st.just(STALE_NAN),
)


@st.composite
def datasets(draw: st.DrawFn) -> list[tuple[Labels, list[tuple[int, float]]]]:
    out: list[tuple[Labels, list[tuple[int, float]]]] = []
    for name in ("m", "n"):
        nseries = draw(st.integers(0, 4))
        for i in range(nseries):
            g = draw(st.sampled_from(["a", "b"]))
            lbl: Labels = (("__name__", name), ("g", g), ("i", str(i)))
            times = draw(st.lists(st.integers(0, 40), unique=True, max_size=25))
            pts = [(t * 10 * S, draw(value)) for t in sorted(times)]
            out.append((lbl, pts))
    return out


def _store(data: list[tuple[Labels, list[tuple[int, float]]]]) -> MemorySeriesSelector:
    s = MemorySeriesSelector()
    for lbl, pts in data:
        if pts:
            s.add(lbl, [t for t, _ in pts], [v for _, v in pts])
    return s


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets(), qi=st.integers(0, len(QUERIES) - 1), start=st.integers(0, 20), nsteps=st.integers(1, 8))
def test_range_query_matches_instant_queries(data: list[tuple[Labels, list[tuple[int, float]]]], qi: int,
                                              start: int, nsteps: int) -> None:
    query = QUERIES[qi]
    store = _store(data)
    eng = Engine()
    step = 20 * S
    t0 = start * 10 * S
    t1 = t0 + (nsteps - 1) * step
    try:
        rng = eng.range(store, query, t0, t1, step)
    except QueryError as e:
        # Errors (duplicate label sets, many-to-many matches) are per step: some step must fail too.
        failed = False
        for t in range(t0, t1 + 1, step):
            try:
                eng.instant(store, query, t)
            except QueryError:
                failed = True
        assert failed, f"range query failed ({e}) but no instant query did"
        return
    by_step: dict[int, dict[Labels, float]] = {}
    for s in rng.series:
        for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True):
            by_step.setdefault(t, {})[s.labels] = v
    for t in range(t0, t1 + 1, step):
        inst = eng.instant(store, query, t)
        if inst.result_type == "scalar":
            got = {(): inst.scalar_value}
        else:
            got = {s.labels: float(s.values[0]) for s in inst.series}
        want = by_step.get(t, {})
        assert set(got) == set(want), f"{query} at {t}: labels differ"
        for k, v in got.items():
            assert _same(v, want[k]), f"{query} at {t}: {k} instant={v} range={want[k]}"


def test_dataset_strategy_produces_stale_markers() -> None:
    # Guard against the strategy silently losing its special values.
    vals = np.asarray([STALE_NAN], dtype=np.float64)
    assert vals.view(np.uint64)[0] == np.uint64(0x7FF0000000000002)
