"""An OTLP exponential histogram data point as a Prometheus native histogram (``FloatHistogram``).

The mapping is Prometheus' OTLP translator's (``prometheusremotewrite/histograms.go``):

- ``scale`` is the schema. Scales above 8 are reduced to 8 by merging adjacent buckets (the
  resolution Prometheus keeps); scales below -4 have no native histogram schema and are refused
  (400 naming the field).
- OTLP bucket ``offset + k`` holds ``(base^i, base^(i+1)]``; Prometheus bucket ``i + 1`` holds the
  same interval, so indices shift by one. Buckets with a zero count are left out.
- ``zero_count`` and ``zero_threshold`` carry over as they are (a zero threshold of 0 counts exact
  zeros only); ``count`` is the count; ``sum`` is the sum, 0 when the point has none (as Prometheus;
  ``histogram_sum`` then reads 0). ``min``/``max`` are not represented.
- The counter reset hint is "unknown" (cumulative points: the engine detects resets itself).

Refused (``OtlpInvalidInput``, 400): a scale outside [-4, 20], a zero threshold that is negative or
not finite, a count below the number of observations in the buckets.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from clearsight.ingest.otlp_common import OtlpInvalidInput
from clearsight.model.histogram import (
    EXPONENTIAL_SCHEMA_MAX,
    EXPONENTIAL_SCHEMA_MIN,
    F64,
    I64,
    CounterResetHint,
    FloatHistogram,
    reduce_buckets,
)

_OTLP_MAX_SCALE = 20


def _side(buckets: Any, scale: int) -> tuple[I64, F64]:
    counts = np.asarray(list(buckets.bucket_counts), dtype=np.uint64)
    nz = np.flatnonzero(counts)
    idx = (nz + int(buckets.offset) + 1).astype(np.int64)
    vals = counts[nz].astype(np.float64)
    if scale > EXPONENTIAL_SCHEMA_MAX:
        return reduce_buckets(idx, vals, scale, EXPONENTIAL_SCHEMA_MAX)
    return idx, vals


def native_histogram(p: Any, path: str) -> FloatHistogram:
    """The ``ExponentialHistogramDataPoint`` ``p`` (at field path ``path``) as a native histogram."""
    scale = int(p.scale)
    if scale < EXPONENTIAL_SCHEMA_MIN or scale > _OTLP_MAX_SCALE:
        raise OtlpInvalidInput(
            f"{path}.scale",
            f"scale {scale} cannot be stored as a native histogram: it must be in "
            f"[{EXPONENTIAL_SCHEMA_MIN}, {_OTLP_MAX_SCALE}] (scales above {EXPONENTIAL_SCHEMA_MAX} are reduced to "
            f"{EXPONENTIAL_SCHEMA_MAX})",
        )
    zt = float(p.zero_threshold)
    if not math.isfinite(zt) or zt < 0:
        raise OtlpInvalidInput(f"{path}.zeroThreshold", f"zero threshold {zt} is not a finite >= 0 number")
    pi, pc = _side(p.positive, scale)
    ni, nc = _side(p.negative, scale)
    count = float(p.count)
    zero_count = float(p.zero_count)
    in_buckets = float(pc.sum() + nc.sum()) + zero_count
    if in_buckets > count:
        raise OtlpInvalidInput(
            f"{path}.count",
            f"count {p.count} is less than the {in_buckets:.0f} observations in the buckets and zero bucket",
        )
    return FloatHistogram(
        schema=min(scale, EXPONENTIAL_SCHEMA_MAX),
        count=count,
        sum=float(p.sum) if p.HasField("sum") else 0.0,
        zero_threshold=zt,
        zero_count=zero_count,
        positive_index=pi,
        positive=pc,
        negative_index=ni,
        negative=nc,
        counter_reset_hint=CounterResetHint.UNKNOWN,
    )
