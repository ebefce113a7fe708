"""Typical dashboard panels over the demo-service data (tests/conformance/compliance/data.py), run as
range queries by bench/query.py.

Each entry: a short name, the PromQL, and the step in seconds; the range is the whole data span
unless ``range_h`` says otherwise (a Grafana panel over the last N hours).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Panel:
    name: str
    query: str
    step_s: int = 60
    range_h: float | None = None  # None: the whole data span


PANELS: tuple[Panel, ...] = (
    Panel("cpu rate by mode", "sum by (mode) (rate(demo_cpu_usage_seconds_total[5m]))"),
    Panel("req rate by instance", "sum by (instance) (rate(demo_api_request_duration_seconds_count[5m]))"),
    Panel(
        "p99 latency by path",
        "histogram_quantile(0.99, sum by (le, path) (rate(demo_api_request_duration_seconds_bucket[5m])))",
    ),
    Panel(
        "p50 latency by instance",
        "histogram_quantile(0.5, sum by (le, instance) (rate(demo_api_request_duration_seconds_bucket[5m])))",
    ),
    Panel(
        "error ratio",
        'sum(rate(demo_api_request_duration_seconds_count{status="500"}[5m]))'
        " / sum(rate(demo_api_request_duration_seconds_count[5m]))",
    ),
    Panel(
        "top5 error instances",
        'topk(5, sum by (instance) (rate(demo_api_request_duration_seconds_count{status="500"}[5m])))',
    ),
    Panel(
        "cpu per core (group_left)",
        'sum by (instance, job) (rate(demo_cpu_usage_seconds_total{mode!="idle"}[5m]))'
        " / on(instance, job) group_left demo_num_cpus",
    ),
    Panel("memory max 10m", "max by (instance) (max_over_time(demo_memory_usage_bytes[10m]))"),
    Panel("disk fill forecast", "predict_linear(demo_disk_usage_bytes[30m], 4 * 3600)", step_s=120),
    Panel("batch age", "time() - demo_batch_last_success_timestamp_seconds", step_s=30, range_h=1.0),
    Panel(
        "daily requests, 1h step",
        "sum by (path, status) (increase(demo_api_request_duration_seconds_count[1h]))",
        step_s=3600,
    ),
    Panel("raw gauges, 15s step", 'demo_memory_usage_bytes{type="used"}', step_s=15, range_h=1.0),
    Panel(
        "7d cpu by instance, 1h step",
        "sum by (instance) (rate(demo_cpu_usage_seconds_total[1h]))",
        step_s=3600,
        range_h=7 * 24,
    ),
)
