"""Streamed aggregations (query/promql/streamed.py) against the materialised evaluation: the same
query over the same series, folded batch by batch or evaluated at once, answers bit for bit the
same; the batches are read one at a time; shapes that cannot stream are evaluated as before."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.labels import Labels, make_labels
from clearsight.model.matchers import Matcher
from clearsight.model.samples import SeriesData
from clearsight.query.promql.engine import Engine
from clearsight.query.promql.result import QueryResult
from clearsight.query.promql.values import QueryLimitExceeded
from clearsight.query.shared_select import slice_range

T0 = 1_700_000_000_000
STEP = 15_000


class BatchedData:
    """A ``BatchedSeriesSelector`` over fixed series (in label order), ignoring the matchers: a
    select answers the series' samples in the range, ``select_batches`` the same cut into runs of
    at most ``max_batch_samples`` samples (or one series), as the embedded store cuts them."""

    def __init__(self, data: SeriesData) -> None:
        self.data = data
        self.batch_reads = 0
        self.selects = 0

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> SeriesData:
        self.selects += 1
        return slice_range(self.data, start_ms, end_ms)

    def select_batches(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int,
                       max_batch_samples: int) -> list[Callable[[], SeriesData]]:
        whole = slice_range(self.data, start_ms, end_ms)
        counts = np.diff(whole.offsets).tolist()
        runs: list[list[int]] = []
        acc = 0
        for i, n in enumerate(counts):
            if not runs or (acc and acc + n > max_batch_samples):
                runs.append([])
                acc = 0
            runs[-1].append(i)
            acc += n
        return [self._reader(whole, run) for run in runs]

    def _reader(self, whole: SeriesData, run: list[int]) -> Callable[[], SeriesData]:
        def read() -> SeriesData:
            self.batch_reads += 1
            a, b = int(whole.offsets[run[0]]), int(whole.offsets[run[-1] + 1])
            return SeriesData([whole.labels[i] for i in run], whole.offsets[run[0]:run[-1] + 2] - a,
                              whole.timestamps[a:b].copy(), whole.values[a:b].copy())
        return read


def series_data(rows: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> SeriesData:
    items = sorted(((make_labels(lbl), samples) for lbl, samples in rows), key=lambda x: x[0])
    return SeriesData.from_lists(items)


def bits(res: QueryResult) -> list[tuple[Labels, list[int], list[int]]]:
    return [(s.labels, np.asarray(s.timestamps).tolist(), np.asarray(s.values, dtype=np.float64).view(np.int64).tolist())
            for s in res.series]


def both(sel: BatchedData, query: str, batch: int, instant: bool) -> tuple[QueryResult, QueryResult]:
    """(materialised, streamed with batches of ``batch`` samples) answers of ``query``."""
    end = T0 + 40 * STEP
    out = []
    for bs in (0, batch):
        eng = Engine(stream_batch_samples=bs)
        out.append(eng.instant(sel, query, end) if instant else eng.range(sel, query, end - 20 * STEP, end, STEP))
    return out[0], out[1]


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e6, 1e6),
    st.sampled_from([1e308, -1e308, 1e16, 1.0, -1.0, 0.1, 0.0, -0.0]),
)
a_values = st.sampled_from(["x", "y", "z"])
one_series = st.tuples(a_values, st.lists(st.tuples(st.integers(0, 40), values), max_size=30))

SHAPES = ["{op} (m)", "{op} (rate(m[2m]))", "{op} (sum_over_time(m[1m]))", "{op} ((max_over_time(m[3m])))"]
GROUPINGS = ["", " by (a)", " without (b)", " by (b)"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(one_series, min_size=1, max_size=40),
    st.sampled_from(["sum", "avg", "count", "group", "min", "max"]),
    st.sampled_from(SHAPES),
    st.sampled_from(GROUPINGS),
    st.integers(1, 120),
    st.booleans(),
)
def test_streamed_equals_materialised(series: list[tuple[str, list[tuple[int, float]]]], op: str, shape: str,
                                      grouping: str, batch: int, instant: bool) -> None:
    rows = [({"__name__": "m", "a": a, "b": str(i)}, sorted({T0 + s * STEP: v for s, v in samples}.items()))
            for i, (a, samples) in enumerate(series)]
    sel = BatchedData(series_data(rows))
    query = shape.format(op=op + grouping)
    materialised, streamed = both(sel, query, batch, instant)
    assert bits(streamed) == bits(materialised)
    assert streamed.annotations == materialised.annotations


def _wide(n: int, groups: int, value: Callable[[int, int], float]) -> BatchedData:
    return BatchedData(series_data([
        ({"__name__": "m", "a": f"g{i % groups}", "b": str(i)}, [(T0 + s * STEP, value(i, s)) for s in range(41)])
        for i in range(n)]))


@pytest.mark.parametrize("query", ["sum(m)", "avg(m)", "sum by (a) (rate(m[2m]))", "avg by (a) (m)",
                                   "count without (b) (m)", "max(m)"])
@pytest.mark.parametrize("instant", [True, False])
def test_large_groups_sum_in_lanes_as_materialised(query: str, instant: bool) -> None:
    # 300 series in 1 or 2 groups: the materialised sum uses lanes (groups > 64 members); the fold
    # notices at its first large batch and folds again keeping the lanes.
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 1e6, size=(300, 41))
    sel = _wide(300, 2 if "by" in query else 1, lambda i, s: float(noise[i, s]) + i * s * 1e-3)
    materialised, streamed = both(sel, query, 500, instant)
    assert bits(streamed) == bits(materialised)
    assert sel.batch_reads > 2  # read batch by batch


def test_avg_whose_lanes_overflow_falls_back_as_materialised() -> None:
    sel = _wide(200, 1, lambda i, s: 1e308 if i % 3 else -1e307)
    materialised, streamed = both(sel, "avg(m)", 400, instant=False)
    assert bits(streamed) == bits(materialised)
    assert np.isfinite(materialised.series[0].values).all()


def test_only_one_batch_is_held() -> None:
    # 400 series x 41 samples; batches of ~2,000 samples: the query's own accounting (the points
    # it holds at once) stays near a batch, where the materialised query holds the selection.
    sel = _wide(400, 4, lambda i, s: float(i + s))
    query = "sum by (a) (rate(m[5m]))"
    materialised, streamed = both(sel, query, 2_000, instant=False)
    assert bits(streamed) == bits(materialised)
    selection = 400 * 41
    assert materialised.stats.peak_points >= selection
    k = 21
    # one batch (<= 2,000 samples), its rate rows (<= 49 series x k steps) and the state (4 groups x k)
    assert streamed.stats.peak_points <= 2_000 + 49 * k * 2 + 4 * k
    assert streamed.stats.samples_loaded == materialised.stats.samples_loaded
    assert streamed.stats.series_fetched == materialised.stats.series_fetched


def test_max_samples_still_applies_per_batch_and_is_named() -> None:
    sel = _wide(50, 1, lambda i, s: float(i))
    end = T0 + 40 * STEP
    with pytest.raises(QueryLimitExceeded, match=r"query\.max_samples=30"):
        Engine(max_samples=30, stream_batch_samples=20).instant(sel, "sum(rate(m[10m]))", end)


def test_max_series_counts_all_batches() -> None:
    sel = _wide(50, 1, lambda i, s: float(i))
    end = T0 + 40 * STEP
    with pytest.raises(QueryLimitExceeded, match=r"query selects 5\d series, more than the limit max_series=49"):
        Engine(max_series=49, stream_batch_samples=100).instant(sel, "sum(m)", end)
    ok = Engine(max_series=50, stream_batch_samples=100).instant(sel, "sum(m)", end)
    assert ok.series[0].values.tolist() == [float(sum(range(50)))]


@pytest.mark.parametrize("query", ["topk(2, m)", "quantile(0.5, m)", "sum(m * 2)", "sum(label_replace(m, 'c', '1', '', ''))",
                                   "stddev(m)"])
def test_other_shapes_are_materialised(query: str) -> None:
    sel = _wide(60, 3, lambda i, s: float(i * s))
    materialised, streamed = both(sel, query, 100, instant=True)
    assert bits(streamed) == bits(materialised)
    assert sel.batch_reads == 0 and sel.selects == 2


def test_stddev_over_time_is_not_split_by_series() -> None:
    """``stddev_over_time`` picks its method over every series' windows together: split into
    batches its sums differed in the last bits (up to 9.5e-13 relative), so it is materialised."""
    rng = np.random.default_rng(5)
    items = []
    for i in range(300):
        ts = np.arange(T0, T0 + 3_600_000, STEP)
        vals = rng.normal(1e6, 1.0, ts.size) * (1 + i)
        items.append((make_labels({"__name__": "m", "i": f"{i:03d}"}), list(zip(ts.tolist(), vals.tolist(), strict=True))))
    items.sort(key=lambda x: x[0])
    sel = BatchedData(SeriesData.from_lists(items))
    end = T0 + 3_600_000
    for q in ("sum(stddev_over_time(m[10m]))", "sum(stdvar_over_time(m[10m]))"):
        a = Engine(stream_batch_samples=0).range(sel, q, end - 1_800_000, end, STEP)
        b = Engine(stream_batch_samples=2_000).range(sel, q, end - 1_800_000, end, STEP)
        assert bits(a) == bits(b), q
    assert sel.batch_reads == 0
