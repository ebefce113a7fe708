"""Metrics about Clearsight itself, exposed at ``/metrics`` (Prometheus text format).

One registry per server instance (never the process-global one), so tests can run several servers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from clearsight.pipeline.decoded_bytes import DecodedBytes
from clearsight.store.embedded.schema import HEAD_LOG_DIR
from clearsight.store.interface import RollupProgress, StoreStats
from clearsight.store.logs_interface import LogStoreStats

# /metrics lists at most this many tenants by name (the first by name); the others are summed
# under tenant="__other__", so rotating tenant ids cannot grow the exposition without bound.
MAX_TENANT_LABELS = 100
OTHER_TENANTS = "__other__"


class SelfMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.samples_ingested = Counter(
            "clearsight_ingested_samples_total", "Samples accepted and committed, by protocol.",
            ["protocol"], registry=self.registry)
        self.series_ingested = Counter(
            "clearsight_ingested_series_total", "Series entries in accepted write requests, by protocol.",
            ["protocol"], registry=self.registry)
        self.requests = Counter(
            "clearsight_write_requests_total", "Write requests by protocol and HTTP status code.",
            ["protocol", "code"], registry=self.registry)
        self.rejected = Counter(
            "clearsight_rejected_requests_total", "Rejected write requests by protocol and reason.",
            ["protocol", "reason"], registry=self.registry)
        self.exemplars_dropped = Counter(
            "clearsight_dropped_exemplars_total",
            "Exemplars received and dropped before the exemplar store (unreadable, or a rejected write).",
            ["protocol"], registry=self.registry)
        self.exemplars = Counter(
            "clearsight_exemplars_total",
            "Exemplars offered to the exemplar store by outcome (appended, duplicate, out_of_order, invalid).",
            ["outcome"], registry=self.registry)
        self.histograms_dropped = Counter(
            "clearsight_dropped_native_histograms_total",
            "Native histogram samples dropped at ingest (OTLP exponential histograms with "
            "server.otlp_exponential_histograms: drop).", ["protocol"],
            registry=self.registry)
        self.log_lines_ingested = Counter(
            "clearsight_ingested_log_lines_total", "Log lines and events committed, by protocol.",
            ["protocol"], registry=self.registry)
        self.log_bytes_ingested = Counter(
            "clearsight_ingested_log_bytes_total", "UTF-8 bytes of committed log lines, by protocol.",
            ["protocol"], registry=self.registry)
        self.spans_ingested = Counter(
            "clearsight_ingested_spans_total", "Trace spans committed, by protocol.", ["protocol"],
            registry=self.registry)
        self.spans_rejected = Counter(
            "clearsight_rejected_spans_total",
            "Trace spans received and not stored (dropped for their time, or in a refused request), by protocol.",
            ["protocol"], registry=self.registry)
        self.request_seconds = Histogram(
            "clearsight_http_request_duration_seconds", "HTTP request latency by handler.", ["handler"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))

    def add_store(self, stats: Callable[[], StoreStats], data_dir: Path) -> None:
        self.registry.register(_StoreCollector(stats, data_dir))

    def add_decoded_bytes(self, cap: DecodedBytes) -> None:
        """The global cap on decompressed request bytes (``pipeline/decoded_bytes.py``)."""
        self.registry.register(_DecodedBytesCollector(cap))

    def add_log_store(self, stats: Callable[[], LogStoreStats]) -> None:
        """Per-tenant stream counts and the log store's totals (``store/logs_interface.py``)."""
        self.registry.register(_LogStoreCollector(stats))


class _DecodedBytesCollector(Collector):
    def __init__(self, cap: DecodedBytes) -> None:
        self.cap = cap

    def collect(self) -> Iterator[Metric]:
        cap = self.cap
        yield _gauge("clearsight_decoded_request_bytes", "Decompressed bytes held now by write requests being decoded.",
                     cap.held)
        yield _gauge("clearsight_decoded_request_bytes_peak",
                     "Most decompressed bytes held at once by write requests being decoded, since start.", cap.peak)
        yield _gauge("clearsight_decoded_request_bytes_limit",
                     "server.max_inflight_decoded_bytes (0: unbounded).", cap.limit)
        yield _counter("clearsight_decoded_request_bytes_refused_total",
                       "Write requests answered 503 because their decompressed bytes did not fit beside others'.",
                       cap.refused)


class _StoreCollector(Collector):
    def __init__(self, stats: Callable[[], StoreStats], data_dir: Path) -> None:
        self._stats = stats
        self._dir = data_dir

    def collect(self) -> Iterator[Metric]:
        s = self._stats()
        yield _per_tenant("clearsight_active_series", "Series in the store, per tenant.", s.active_series)
        yield _gauge("clearsight_store_series", "Series in the store (all tenants).", s.total_series)
        yield _gauge("clearsight_store_max_series_total",
                     "The series cap over all tenants (limits.max_series_total, auto: sized from memory; 0 = none).",
                     s.max_series_total)
        yield _counter("clearsight_store_samples_written_total", "Samples committed to the store.",
                       s.samples_written_total)
        yield _counter("clearsight_store_commits_total", "Group commits of the writer.", s.commits_total)
        yield _counter("clearsight_store_commit_seconds_total", "Time spent in group commits.",
                       s.commit_seconds_sum)
        yield _gauge("clearsight_store_last_commit_seconds", "Duration of the last group commit.",
                     s.last_commit_seconds)
        yield _gauge("clearsight_store_write_queue_depth", "Batches waiting for the writer.", s.queue_depth)
        yield _counter("clearsight_store_out_of_bounds_samples_total",
                       "Samples dropped: older than the out-of-order window.", s.out_of_bounds_total)
        yield _counter("clearsight_store_duplicate_samples_total",
                       "Samples at a timestamp their series already had (re-sends and overwrites).",
                       s.duplicates_total)
        yield _counter("clearsight_store_identical_samples_total",
                       "Duplicates with the stored value: acknowledged, nothing written.", s.identical_total)
        yield _counter("clearsight_store_out_of_order_samples_total",
                       "Samples written older than their series' newest sample.", s.out_of_order_total)
        yield _gauge("clearsight_store_writer_up", "1 when the writer thread is alive.", int(s.writer_alive))
        yield _gauge("clearsight_store_partitions", "Time partitions holding compacted samples.", s.partitions)
        yield _gauge("clearsight_store_partition_bytes",
                     "Compressed payload in the time partitions (what storage.retention_size bounds).",
                     s.partition_bytes)
        yield _counter("clearsight_store_partitions_dropped_total", "Time partitions dropped by retention.",
                       s.partitions_dropped_total)
        yield _counter("clearsight_store_partition_bytes_dropped_total",
                       "Compressed payload of the time partitions dropped by retention.",
                       s.partition_bytes_dropped_total)
        if s.rollups is not None:
            yield from _rollup_metrics(s.rollups)
        yield _gauge("clearsight_store_series_key_bytes",
                     "Bytes of the tables mapping series keys and label sets to series ids.", s.series_key_bytes)
        yield _gauge("clearsight_store_bytes", "Bytes used by the store's files on disk.",
                     _dir_bytes(self._dir) + _dir_bytes(self._dir / HEAD_LOG_DIR))


class _LogStoreCollector(Collector):
    def __init__(self, stats: Callable[[], LogStoreStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats()
        yield _per_tenant("clearsight_log_streams", "Log streams in the log store, per tenant.", s.streams)
        yield _counter("clearsight_log_store_entries_written_total", "Log entries committed to the log store.",
                       s.entries_written_total)
        yield _counter("clearsight_log_store_entries_removed_total", "Log entries removed by retention.",
                       s.entries_removed_total)
        yield _gauge("clearsight_log_store_partitions", "Day tables in the log store.", s.partitions)
        yield _gauge("clearsight_log_store_bytes", "Bytes of logs.duckdb and its WAL on disk.", s.bytes_on_disk)
        yield _gauge("clearsight_log_store_write_queue_depth", "Batches waiting for the log writer.",
                     s.queue_depth)


def _rollup_metrics(r: RollupProgress) -> Iterator[Metric]:
    """Rollup progress (store/embedded/rollups.py, docs/storage.md "Rollups")."""
    yield _counter("clearsight_rollup_passes_total", "Rollup passes run (writer commands).", r.passes_total)
    for name, doc, values in (
        ("clearsight_rollup_blocks_written_total", "Rollup rows written (one per series and block), by resolution.",
         r.blocks_written_total),
        ("clearsight_rollup_buckets_written_total", "Rollup buckets written, by resolution.", r.buckets_written_total),
    ):
        c = CounterMetricFamily(name.removesuffix("_total"), doc, labels=["resolution"])
        for res, v in sorted(values.items()):
            c.add_metric([res], v)
        yield c
    g = GaugeMetricFamily("clearsight_rollup_finalised_until_seconds",
                          "End of the rolled-up time range (Unix seconds), by resolution.", labels=["resolution"])
    for res, v in sorted(r.until_ms.items()):
        g.add_metric([res], v / 1000)
    yield g
    yield _gauge("clearsight_rollup_dirty_blocks", "Rolled-up (series, hour) blocks changed by late writes or "
                 "deletions, waiting to be recomputed (queries over them read raw samples).", r.dirty_blocks)
    yield _counter("clearsight_rollup_dirty_recomputed_total", "Dirty blocks recomputed.", r.dirty_recomputed_total)
    yield _counter("clearsight_rollup_reads_total", "Range-function reads answered from rollups.", r.reads_total)
    yield _counter("clearsight_rollup_fallbacks_total", "Rollup reads refused (dirty block, native histograms): "
                   "raw samples read instead.", r.fallbacks_total)
    yield _counter("clearsight_rollup_buckets_read_total", "Rollup buckets read by queries.", r.buckets_read_total)


def _per_tenant(name: str, doc: str, values: dict[str, int]) -> GaugeMetricFamily:
    """One gauge per tenant; past ``MAX_TENANT_LABELS`` tenants the rest are summed in ``__other__``."""
    g = GaugeMetricFamily(name, doc, labels=["tenant"])
    tenants = sorted(values.items())
    for tenant, n in tenants[:MAX_TENANT_LABELS]:
        g.add_metric([tenant], n)
    if len(tenants) > MAX_TENANT_LABELS:
        g.add_metric([OTHER_TENANTS], sum(n for _, n in tenants[MAX_TENANT_LABELS:]))
    return g


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> Metric:
    return CounterMetricFamily(name.removesuffix("_total"), doc, value=value)


def _dir_bytes(path: Path) -> int:
    total = 0
    try:
        with os.scandir(path) as it:
            for entry in it:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat().st_size
    except OSError:
        return 0
    return total
