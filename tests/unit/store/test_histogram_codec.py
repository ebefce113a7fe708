"""The native histogram chunk codec (store/embedded/histogram_codec.py): random histograms (integer and
float counts, exponential and custom-bucket schemas, zero buckets, negative buckets, NaN and infinite
sums, counter-reset hints) round-trip exactly; a damaged chunk raises HistogramChunkError only."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.histogram import FloatHistogram
from clearsight.store.embedded import histogram_codec as hc
from tests.unit.ingest.test_prom_histogram import histograms

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same(a: FloatHistogram, b: FloatHistogram) -> bool:
    bits = np.array([a.sum, b.sum], dtype=np.float64).view(np.uint64)
    return (
        (a.equals(b) or math.isnan(a.sum))
        and bits[0] == bits[1]
        and a.counter_reset_hint == b.counter_reset_hint
        and a.schema == b.schema
        and a.zero_threshold == b.zero_threshold
        and a.count == b.count
        and np.array_equal(a.positive_index, b.positive_index)
        and np.array_equal(a.positive, b.positive)
        and np.array_equal(a.negative_index, b.negative_index)
        and np.array_equal(a.negative, b.negative)
    )


@FUZZ
@given(
    st.lists(histograms(), min_size=1, max_size=12),
    st.integers(-(2**40), 2**40),
    st.sampled_from([0.0, math.nan, math.inf, -0.0]),
)
def test_chunks_round_trip_exactly(hs: list[tuple[FloatHistogram, bool]], t0: int, odd_sum: float) -> None:
    items = [h for h, _ in hs]
    items[0] = FloatHistogram(
        **{
            **{
                f: getattr(items[0], f)
                for f in (
                    "schema",
                    "count",
                    "zero_threshold",
                    "zero_count",
                    "positive_index",
                    "positive",
                    "negative_index",
                    "negative",
                    "custom_values",
                    "counter_reset_hint",
                )
            },
            "sum": odd_sum,
        }
    )
    ts = np.cumsum(np.arange(1, len(items) + 1, dtype=np.int64) * 15_000) + t0
    got_ts, got = hc.decode(hc.encode(ts, items))
    assert got_ts.tolist() == ts.tolist()
    assert all(_same(a, b) for a, b in zip(got, items, strict=True))


@FUZZ
@given(st.binary(max_size=200))
def test_garbage_raises_only_chunk_errors(data: bytes) -> None:
    try:
        hc.decode(data)
    except hc.HistogramChunkError:
        pass


def test_truncated_chunk_is_an_error() -> None:
    h = FloatHistogram.build(schema=0, count=3, sum=1, positive={1: 3})
    data = hc.encode(np.array([1], dtype=np.int64), [h])
    with pytest.raises(hc.HistogramChunkError):
        hc.decode(data[: len(data) // 2])
