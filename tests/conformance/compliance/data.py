"""A deterministic stand-in for the PromLabs demo service, scraped every 15 s.

The compliance query list was written against ``julius/prometheus-demo-service`` scraped by a
Prometheus with ``job="demo"`` and instances ``demo.promlabs.com:10000..10002``. This module
produces the same metric families with the same label dimensions and the same kind of behaviour,
as remote-write samples, so the reference Prometheus and the system under test are fed identical
data:

- ``demo_num_cpus``, ``demo_disk_total_bytes``: constant gauges;
- ``demo_memory_usage_bytes{type=used|cached|buffers|free}``: bounded random walks, free is the rest;
- ``demo_cpu_usage_seconds_total{mode=user|system|idle}``: counters (reset on a process restart);
- ``demo_disk_usage_bytes``: grows, wraps from 90 % back to 10 % of the disk;
- ``demo_batch_last_{success,run}_timestamp_seconds`` and friends: a batch job every few minutes,
  ~10 % failures, so ``changes()`` has something to count;
- ``demo_intermittent_metric``: present only in even minutes, with a stale marker at the first
  scrape that misses it (what Prometheus writes);
- ``demo_api_request_duration_seconds_{bucket,sum,count}{method,path,status}``: a classic
  histogram with cumulative buckets (the client_golang default buckets), error bursts (status
  500) and latency spikes during periodic outages;
- ``demo_api_http_requests_in_progress``: a small gauge.

Scrapes have a per-instance phase and a few ms of jitter, as real scrapes do. Instance 10001
restarts once with a failed scrape (stale markers for all its series, then counters from zero);
instance 10002 restarts once without a failed scrape (counters drop, no gap). Both restarts are
placed relative to the end of the data so that the compliance query window sees them.

Everything is a pure function of ``(end_ms, hours, interval_ms, seed, instances)``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from clearsight.ingest.prompb_encode import Metadata, TimeSeries, WriteRequest, encode_snappy

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]

JOB = "demo"
HOST = "demo.promlabs.com"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# (method, path): requests per second, base latency (s), error ratio, outage duration (s).
API_ROUTES: dict[tuple[str, str], tuple[float, float, float, float]] = {
    ("GET", "/api/foo"): (4.0, 0.010, 0.005, 23.0),
    ("POST", "/api/foo"): (1.0, 0.020, 0.02, 60.0),
    ("GET", "/api/bar"): (2.5, 0.015, 0.0025, 13.0),
    ("POST", "/api/bar"): (0.5, 0.050, 0.01, 47.0),
}

METADATA = (
    Metadata(2, "demo_num_cpus", "The number of CPUs."),
    Metadata(2, "demo_memory_usage_bytes", "The memory usage by type."),
    Metadata(1, "demo_cpu_usage_seconds_total", "The CPU usage in seconds split by mode."),
    Metadata(2, "demo_disk_usage_bytes", "Disk usage in bytes."),
    Metadata(2, "demo_disk_total_bytes", "Total disk space in bytes."),
    Metadata(2, "demo_batch_last_success_timestamp_seconds", "Time of the last successful batch run."),
    Metadata(2, "demo_batch_last_run_timestamp_seconds", "Time of the last batch run."),
    Metadata(2, "demo_batch_last_run_duration_seconds", "Duration of the last batch run."),
    Metadata(2, "demo_batch_last_run_processed_bytes", "Bytes processed by the last batch run."),
    Metadata(2, "demo_intermittent_metric", "A metric that is only present intermittently."),
    Metadata(3, "demo_api_request_duration_seconds", "A histogram of the API HTTP request durations."),
    Metadata(2, "demo_api_http_requests_in_progress", "API HTTP requests in progress."),
)


@dataclass
class Series:
    labels: tuple[tuple[str, str], ...]  # sorted by name, includes __name__
    ts: np.ndarray  # int64 milliseconds, strictly increasing
    values: np.ndarray  # float64; stale markers carry STALE_NAN_BITS

    @property
    def name(self) -> str:
        return dict(self.labels)["__name__"]


@dataclass
class Dataset:
    series: list[Series]
    start_ms: int  # first scrape slot (before per-instance phase)
    end_ms: int  # every sample is <= end_ms
    interval_ms: int
    events: dict[str, int] = field(default_factory=dict)  # description -> timestamp ms

    @property
    def samples(self) -> int:
        return sum(len(s.ts) for s in self.series)


def instance_name(i: int) -> str:
    return f"{HOST}:{10000 + i}"


def _le(b: float) -> str:
    # client_golang formats bucket bounds with Go's %g-like shortest form.
    return repr(b).removesuffix(".0") if b == int(b) else repr(b)


def _labels(name: str, instance: str, **extra: str) -> tuple[tuple[str, str], ...]:
    d = {"__name__": name, "instance": instance, "job": JOB, **extra}
    return tuple(sorted(d.items()))


@dataclass
class _Instance:
    index: int
    name: str
    ts: np.ndarray  # scrape timestamps (all slots)
    up: np.ndarray  # bool: scrape succeeded
    epoch: np.ndarray  # int: process generation per slot (counters restart when it changes)
    cpus: int
    rng: np.random.Generator


def _scrape_times(start_ms: int, n: int, interval_ms: int, i: int, rng: np.random.Generator) -> np.ndarray:
    phase = (1237 + 4801 * i) % interval_ms
    jitter = rng.integers(0, 4, size=n)
    return start_ms + np.arange(n, dtype=np.int64) * interval_ms + phase + jitter


def _restart_cumsum(inc: np.ndarray, epoch: np.ndarray) -> np.ndarray:
    """Cumulative sums that start over whenever ``epoch`` changes (a counter after a restart)."""
    total = np.cumsum(inc)
    starts = np.flatnonzero(np.diff(epoch)) + 1
    out = total.copy()
    for s in starts:
        out[s:] -= total[s - 1]
    return out


def _emit(
    inst: _Instance,
    labels: tuple[tuple[str, str], ...],
    values: np.ndarray,
    present: np.ndarray | None = None,
) -> Series:
    """Samples at successful scrapes where ``present``, plus a stale marker at the first scrape
    after each presence run that does not return the series (a failed scrape or a missing metric)."""
    ok = inst.up if present is None else inst.up & present
    prev = np.concatenate(([False], ok[:-1]))
    stale = ~ok & prev
    keep = ok | stale
    vals = np.where(stale, STALE_NAN, values.astype(np.float64))
    # np.where may canonicalize the NaN payload: restore the exact stale bits.
    bits = vals.view(np.uint64)
    bits[stale] = STALE_NAN_BITS
    return Series(labels, inst.ts[keep].copy(), vals[keep].copy())


def _gauges(inst: _Instance, interval_s: float) -> list[Series]:
    rng, n, name = inst.rng, len(inst.ts), inst.name
    out: list[Series] = []
    out.append(_emit(inst, _labels("demo_num_cpus", name), np.full(n, float(inst.cpus))))

    total = float(inst.cpus) * 2 * 1024**3
    bases = {"used": 0.35, "cached": 0.25, "buffers": 0.1}
    walks: dict[str, np.ndarray] = {}
    for typ, frac in bases.items():
        base = total * frac
        max_dev = base * 0.2
        steps = (rng.random(n) - 0.5) * 60 * 1024 * 1024
        cur = base
        walk = np.empty(n)
        for k in range(n):
            cur += steps[k]
            if abs(cur - base) > max_dev:
                cur = base
            walk[k] = cur
        walks[typ] = np.floor(walk)
    walks["free"] = total - walks["used"] - walks["cached"] - walks["buffers"]
    for typ in ("used", "cached", "buffers", "free"):
        out.append(_emit(inst, _labels("demo_memory_usage_bytes", name, type=typ), walks[typ]))

    disk_total = float(100 * 1024**3 * (inst.index + 1))
    inc = disk_total / 5000.0 * interval_s / 15.0
    usage = np.empty(n)
    cur = 0.1 * disk_total
    steps = inc * (1 - (rng.random(n) - 0.5))
    for k in range(n):
        cur += steps[k]
        if cur > 0.9 * disk_total:
            cur = 0.1 * disk_total
        usage[k] = np.floor(cur)
    out.append(_emit(inst, _labels("demo_disk_usage_bytes", name), usage))
    out.append(_emit(inst, _labels("demo_disk_total_bytes", name), np.full(n, disk_total)))

    in_progress = rng.poisson(1.5, n).astype(np.float64)
    out.append(_emit(inst, _labels("demo_api_http_requests_in_progress", name), in_progress))

    present = (inst.ts // 60_000) % 2 == 0
    out.append(_emit(inst, _labels("demo_intermittent_metric", name), np.ones(n), present))
    return out


def _batch(inst: _Instance) -> list[Series]:
    rng, n, name = inst.rng, len(inst.ts), inst.name
    period_ms = (4 + inst.index) * 60_000 + 7_000
    t0 = int(inst.ts[0]) - period_ms
    runs: list[tuple[int, float, bool, float]] = []  # (completion ms, duration s, success, bytes)
    t = t0
    while t <= int(inst.ts[-1]):
        dur_ms = 20_000 + int(rng.integers(0, 2000))
        done = t + dur_ms
        runs.append(
            (done, dur_ms / 1000.0, bool(rng.random() > 0.1), float(1_100_000 - rng.integers(0, 100_000)))
        )
        t += period_ms
    done_ms = np.array([r[0] for r in runs], dtype=np.int64)
    idx = np.searchsorted(done_ms, inst.ts, side="right") - 1  # last run completed by each scrape
    last_run = np.where(idx >= 0, done_ms[np.maximum(idx, 0)] / 1000.0, t0 / 1000.0)
    last_dur = np.array([runs[max(i, 0)][1] for i in idx])
    succ_time = np.empty(n)
    succ_bytes = np.empty(n)
    last_ok, last_bytes = t0 / 1000.0, 0.0
    j = 0
    for k in range(n):
        while j < len(runs) and runs[j][0] <= inst.ts[k]:
            if runs[j][2]:
                last_ok, last_bytes = runs[j][0] / 1000.0, runs[j][3]
            j += 1
        succ_time[k], succ_bytes[k] = last_ok, last_bytes
    return [
        _emit(inst, _labels("demo_batch_last_success_timestamp_seconds", name), succ_time),
        _emit(inst, _labels("demo_batch_last_run_timestamp_seconds", name), last_run),
        _emit(inst, _labels("demo_batch_last_run_duration_seconds", name), last_dur),
        _emit(inst, _labels("demo_batch_last_run_processed_bytes", name), succ_bytes),
    ]


def _cpu(inst: _Instance, interval_s: float) -> list[Series]:
    rng, n, name = inst.rng, len(inst.ts), inst.name
    factor = inst.cpus * interval_s
    user = (0.3 + (rng.random(n) - 0.5) / 5) * factor
    system = (0.1 + (rng.random(n) - 0.5) / 5) * factor
    idle = factor - user - system
    return [
        _emit(
            inst, _labels("demo_cpu_usage_seconds_total", name, mode=mode), _restart_cumsum(inc, inst.epoch)
        )
        for mode, inc in (("user", user), ("system", system), ("idle", idle))
    ]


def _api(inst: _Instance, interval_s: float) -> list[Series]:
    rng, n, name = inst.rng, len(inst.ts), inst.name
    bounds = np.array(BUCKETS)
    out: list[Series] = []
    t_rel = (inst.ts - inst.ts[0]) / 1000.0
    for (method, path), (rps, base_lat, err_ratio, outage_s) in API_ROUTES.items():
        outage = (t_rel % (10 * outage_s)) < outage_s
        reqs = rng.poisson(rps * interval_s, n)
        interval_of = np.repeat(np.arange(n), reqs)
        lat_factor = np.where(outage, 3.0, 1.0)[interval_of]
        lat = (base_lat + rng.normal(0.0, base_lat / 10, len(interval_of))) * lat_factor
        # A slow tail: a few requests take 10-200x longer, so the upper buckets fill too.
        slow = rng.random(len(interval_of)) < 0.01
        lat = np.where(slow, lat * rng.uniform(10, 200, len(interval_of)), lat)
        lat = np.maximum(lat, 0.0001)
        err_p = np.where(outage, err_ratio * 10, err_ratio)[interval_of]
        is_err = rng.random(len(interval_of)) < err_p
        bucket_of = np.searchsorted(bounds, lat, side="left")  # le is inclusive
        for status, mask in (("200", ~is_err), ("500", is_err)):
            cells = interval_of[mask] * (len(bounds) + 1) + bucket_of[mask]
            per = np.bincount(cells, minlength=n * (len(bounds) + 1)).reshape(n, len(bounds) + 1)
            cum_buckets = np.cumsum(per, axis=1)  # cumulative over le
            sums = np.bincount(interval_of[mask], weights=lat[mask], minlength=n)
            dims = {"method": method, "path": path, "status": status}
            for b, le in enumerate([*(_le(x) for x in BUCKETS), "+Inf"]):
                vals = _restart_cumsum(cum_buckets[:, b].astype(np.float64), inst.epoch)
                out.append(
                    _emit(
                        inst, _labels("demo_api_request_duration_seconds_bucket", name, le=le, **dims), vals
                    )
                )
            count = _restart_cumsum(cum_buckets[:, -1].astype(np.float64), inst.epoch)
            out.append(_emit(inst, _labels("demo_api_request_duration_seconds_count", name, **dims), count))
            out.append(
                _emit(
                    inst,
                    _labels("demo_api_request_duration_seconds_sum", name, **dims),
                    _restart_cumsum(sums, inst.epoch),
                )
            )
    return out


def generate(
    end_ms: int, *, hours: float = 3.0, interval_ms: int = 15_000, seed: int = 1, instances: int = 3
) -> Dataset:
    """The demo data for ``instances`` targets over ``hours`` ending at ``end_ms`` (inclusive)."""
    n = int(hours * 3600_000 // interval_ms)
    if n < 10:
        raise ValueError("need at least 10 scrapes")
    last_slot = (end_ms - interval_ms - 4) // interval_ms * interval_ms  # + phase + jitter <= end_ms
    start_ms = last_slot - (n - 1) * interval_ms
    interval_s = interval_ms / 1000.0
    series: list[Series] = []
    events: dict[str, int] = {}
    for i in range(instances):
        rng = np.random.default_rng([seed, zlib.crc32(instance_name(i).encode())])
        ts = _scrape_times(start_ms, n, interval_ms, i, rng)
        up = np.ones(n, dtype=bool)
        epoch = np.zeros(n, dtype=np.int64)
        if i % 3 == 1:  # restart with one failed scrape, 17 min before the end
            k = max(1, n - 1 - (17 * 60_000) // interval_ms)
            up[k] = False
            epoch[k:] += 1
            events[f"{instance_name(i)} failed scrape + restart"] = int(ts[k])
        elif i % 3 == 2:  # fast restart (no failed scrape), 50 min before the end
            k = max(1, n - 1 - (50 * 60_000) // interval_ms)
            epoch[k:] += 1
            events[f"{instance_name(i)} restart"] = int(ts[k])
        inst = _Instance(i, instance_name(i), ts, up, epoch, cpus=(4, 8, 2)[i % 3], rng=rng)
        series += _gauges(inst, interval_s)
        series += _batch(inst)
        series += _cpu(inst, interval_s)
        series += _api(inst, interval_s)
    return Dataset(series, start_ms, end_ms, interval_ms, events)


def write_requests(ds: Dataset, window_ms: int = 10 * 60_000, metadata: bool = True) -> Iterator[bytes]:
    """Snappy-compressed remote-write bodies in time order: each request carries every series'
    samples of one ``window_ms`` slice, so a receiver sees time advance like a live sender's."""
    t = ds.start_ms
    first = True
    while t <= ds.end_ms:
        hi = t + window_ms
        tss: list[TimeSeries] = []
        for s in ds.series:
            lo_i, hi_i = np.searchsorted(s.ts, [t, hi], side="left")
            if hi_i > lo_i:
                samples = list(zip(s.ts[lo_i:hi_i].tolist(), s.values[lo_i:hi_i].tolist(), strict=True))
                tss.append(TimeSeries(labels=s.labels, samples=samples))
        md = list(METADATA) if (metadata and first) else []
        if tss or md:
            yield encode_snappy(WriteRequest(timeseries=tss, metadata=md))
        first = False
        t = hi
