"""Columnar sample batches: what decoders produce and what the store appends and returns.

Timestamps are int64 milliseconds since the Unix epoch; values are float64. A Prometheus stale
marker is the NaN with bit pattern ``0x7ff0000000000002`` and is kept bit-exact end to end.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from clearsight.model.exemplars import Exemplar
from clearsight.model.fingerprint_table import Fingerprints, fingerprints
from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import Labels, canonical_bytes

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]

I64Array = npt.NDArray[np.int64]
F64Array = npt.NDArray[np.float64]
I32Array = npt.NDArray[np.int32]
ObjArray = npt.NDArray[Any]


def is_stale_nan(v: float) -> bool:
    return struct.pack("<d", v) == struct.pack("<Q", STALE_NAN_BITS)


def stale_mask(values: F64Array) -> npt.NDArray[np.bool_]:
    """Vectorized: which values are stale markers."""
    return values.view(np.uint64) == np.uint64(STALE_NAN_BITS)


def canonical_key(labels: Labels) -> bytes:
    return canonical_bytes(labels)


def _labels_from_canonical(key: bytes) -> Labels:
    if not key:
        return ()
    out = []
    for part in key.split(b"\xff"):
        n, _, v = part.partition(b"\xfe")
        out.append((n.decode(), v.decode()))
    return tuple(out)


@dataclass
class MetricMetadata:
    """Per metric-family metadata (Prometheus ``/api/v1/metadata``)."""

    metric: str
    type: str  # counter, gauge, histogram, gaugehistogram, summary, info, stateset, unknown
    help: str = ""
    unit: str = ""


@dataclass
class HistogramSamples:
    """Native histogram samples of a batch: sample ``j`` is ``histograms[j]`` at ``timestamps[j]``
    (ms) of the batch's series ``series_idx[j]``. Integer histograms arrive converted to float
    counts (as Prometheus' engine sees them); histogram stale markers travel as float samples
    (``STALE_NAN``) in the batch's float columns, never here."""

    series_idx: I32Array
    timestamps: I64Array
    histograms: list[FloatHistogram]

    def __len__(self) -> int:
        return len(self.histograms)


@dataclass
class SampleBatch:
    """A decoded write: ``n`` series and their samples as columns.

    ``keys[i]`` identifies series ``i`` within ``key_kind``: equal keys are the same series, so the
    store can cache a key's series id and skip label parsing (remote-write uses the raw protobuf
    bytes of a series' labels). ``decode_labels(key)`` returns the label set of a key; it is only
    called for keys the store has not seen. Labels it returns may be unsorted and unvalidated:
    the pipeline validates and canonicalizes them.

    ``series_idx[j]``, ``timestamps[j]``, ``values[j]`` describe sample ``j``.

    ``histograms``: the batch's native histogram samples (None when it has none); their series
    indices refer to ``keys`` like the float samples'. ``num_samples`` counts float samples only.
    """

    keys: list[bytes]
    key_kind: str
    decode_labels: Callable[[bytes], Labels]
    series_idx: I32Array
    timestamps: I64Array
    values: F64Array
    metadata: list[MetricMetadata] = field(default_factory=list)
    exemplars_dropped: int = 0
    histograms_dropped: int = 0
    # Exemplars of this write (series labels decoded), kept by the exemplar store once the samples
    # are committed; a batch rejected as a whole keeps none.
    exemplars: list[Exemplar] = field(default_factory=list)
    histograms: HistogramSamples | None = None
    # The keys' fingerprints (fingerprint_table.py), computed by the first step that needs them.
    key_fps: Fingerprints | None = None

    def fingerprints(self) -> Fingerprints:
        """The fingerprints of ``keys`` (computed once per batch)."""
        fps = self.key_fps
        if fps is None:
            fps = self.key_fps = fingerprints(self.keys)
        return fps

    @property
    def num_histograms(self) -> int:
        return 0 if self.histograms is None else len(self.histograms)

    @property
    def num_samples(self) -> int:
        return int(self.values.shape[0])

    @property
    def num_series(self) -> int:
        return len(self.keys)

    @staticmethod
    def from_series(series: list[tuple[Labels, list[tuple[int, float]]]],
                    metadata: list[MetricMetadata] | None = None) -> SampleBatch:
        """Builds a batch from Python objects (tests, scrapes, small writers)."""
        keys: list[bytes] = []
        idx: list[int] = []
        ts: list[int] = []
        vals: list[float] = []
        for i, (labels, samples) in enumerate(series):
            keys.append(canonical_key(tuple(sorted(labels))))
            for t, v in samples:
                idx.append(i)
                ts.append(t)
                vals.append(v)
        return SampleBatch(
            keys=keys,
            key_kind="canon",
            decode_labels=_labels_from_canonical,
            series_idx=np.asarray(idx, dtype=np.int32),
            timestamps=np.asarray(ts, dtype=np.int64),
            values=np.asarray(vals, dtype=np.float64),
            metadata=list(metadata or []),
        )

    @staticmethod
    def empty() -> SampleBatch:
        return SampleBatch.from_series([])


@dataclass
class SeriesData:
    """Query result of a select: ``n`` series, samples as columns.

    Samples of series ``i`` are ``timestamps[offsets[i]:offsets[i+1]]`` (ascending, unique) and the
    matching ``values`` slice. Stale markers are included as STALE_NAN.

    Two optional columns, aligned with ``timestamps`` when present:

    - ``histograms``: an object array holding a ``model.histogram.FloatHistogram`` where the sample
      is a native histogram (its ``values`` entry is then NaN) and None where it is a float or a
      stale marker. ``None`` (the default) when the data has no native histogram samples; an array
      of only None entries means the same.
    - ``start_timestamps``: int64 start (created) timestamps in ms, 0 where unknown. ``None`` (the
      default) when unknown for every sample.
    """

    labels: list[Labels]
    offsets: I64Array
    timestamps: I64Array
    values: F64Array
    histograms: ObjArray | None = None
    start_timestamps: I64Array | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def series(self, i: int) -> tuple[Labels, I64Array, F64Array]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.labels[i], self.timestamps[a:b], self.values[a:b]

    @staticmethod
    def empty() -> SeriesData:
        """No series; both optional columns None."""
        return SeriesData([], np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64),
                          np.zeros(0, dtype=np.float64))

    @staticmethod
    def from_lists(items: list[tuple[Labels, list[tuple[int, float]]]]) -> SeriesData:
        labels = [lbl for lbl, _ in items]
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        ts: list[int] = []
        vs: list[float] = []
        for i, (_, samples) in enumerate(items):
            for t, v in sorted(samples, key=lambda s: s[0]):
                ts.append(t)
                vs.append(v)
            offsets[i + 1] = len(ts)
        return SeriesData(labels, offsets, np.asarray(ts, dtype=np.int64), np.asarray(vs, dtype=np.float64))
