"""Samples -> OTLP ``ExportMetricsServiceRequest`` protobuf, encoded by hand (the agent does not load
protobuf), for ``shipper.protocol: grpc`` (the server's ``MetricsService/Export``).

The request is shaped so that the server's OTLP -> Prometheus mapping (ingest/otlp_metrics.py) gives
exactly the series remote-write would: node_exporter's names and labels, unchanged.

- One resource with **no attributes** and one scope with **no name**: so the server derives no
  ``job``/``instance`` from ``service.*``, writes no ``target_info`` and adds no ``otel_scope_*``
  labels. The series' labels (the sample's, plus the host labels ``instance``, ``job`` and tags,
  merged as the remote-write encoder merges them) are each point's attributes.
- A name ending in ``_total`` is a monotonic cumulative ``Sum`` (the server keeps the name: it ends
  in ``_total`` already); every other name a ``Gauge``. No unit, so no unit word is appended.
- One ``Metric`` per name per request, its points in the order the samples came.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Mapping, Sequence

from clearsight.agent.sample import LabelPairs, Sample, merged_labels
from clearsight.ingest.prompb_encode import len_field

_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
_SUM_HEADER = b"\x10\x02\x18\x01"  # aggregation_temporality = CUMULATIVE (2), is_monotonic = true
_EMPTY_RESOURCE = len_field(1, b"")  # ResourceMetrics.resource, no attributes


def _attribute(key: str, value: str) -> bytes:
    # KeyValue{key = 1, value = 2: AnyValue{string_value = 1}}, as NumberDataPoint.attributes (7)
    return len_field(7, len_field(1, key.encode()) + len_field(2, len_field(1, value.encode())))


class MetricsEncoder:
    """Caches each series' encoded attributes (a series' labels rarely change between collections)."""

    def __init__(self, host_labels: Mapping[str, str], max_samples: int = 2000, cache_size: int = 50_000,
                 compress_level: int = 1) -> None:
        self.host_labels = dict(host_labels)
        self.max_samples = max_samples
        self.cache_size = cache_size
        self.compress_level = compress_level
        self._cache: dict[tuple[LabelPairs, bool], bytes] = {}

    def _attributes(self, labels: LabelPairs, own_labels_win: bool) -> bytes:
        key = (labels, own_labels_win)
        b = self._cache.get(key)
        if b is None:
            merged = merged_labels(self.host_labels, labels, own_labels_win)
            b = b"".join(_attribute(k, v) for k, v in sorted(merged.items()) if v != "")
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[key] = b
        return b

    def encode(self, samples: Sequence[Sample], timestamp_ms: int,
               own_labels_win: bool = False) -> list[tuple[bytes, int]]:
        """gzip-compressed requests ``(payload, number of samples)``, at most ``max_samples`` each."""
        stamp = b"\x19" + _FIXED64.pack(timestamp_ms * 1_000_000)  # time_unix_nano = 3 (fixed64)
        out = []
        for start in range(0, len(samples), self.max_samples):
            points: dict[str, list[bytes]] = {}
            for s in samples[start:start + self.max_samples]:
                point = self._attributes(s.labels, own_labels_win) + stamp + b"\x21" + _DOUBLE.pack(s.value)
                points.setdefault(s.name, []).append(len_field(1, point))  # data_points = 1
            metrics = b"".join(len_field(2, self._metric(name, pts)) for name, pts in points.items())
            scope_metrics = len_field(1, b"") + metrics  # an empty scope, then ScopeMetrics.metrics (2)
            body = len_field(1, _EMPTY_RESOURCE + len_field(2, scope_metrics))
            out.append((gzip.compress(body, self.compress_level, mtime=0),
                        min(self.max_samples, len(samples) - start)))
        return out

    @staticmethod
    def _metric(name: str, points: list[bytes]) -> bytes:
        data = b"".join(points)
        if name.endswith("_total"):
            return len_field(1, name.encode()) + len_field(7, data + _SUM_HEADER)  # Metric.sum = 7
        return len_field(1, name.encode()) + len_field(5, data)  # Metric.gauge = 5
