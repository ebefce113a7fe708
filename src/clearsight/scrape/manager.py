"""The scrape manager: one asyncio task per target, writing each scrape as one ``SampleBatch``.

Per scrape (Prometheus semantics, see docs/scraping.md):

- GET the target's URL with ``Accept`` negotiating OpenMetrics 1.0 then text 0.0.4, gzip, and
  ``X-Prometheus-Scrape-Timeout-Seconds``; the whole scrape is bounded by ``scrape_timeout``.
- parse (``ingest.prom_text``), attach the target labels (``honor_labels: false`` renames a
  conflicting scraped label to ``exported_<name>``), apply ``metric_relabel_configs``, enforce
  ``sample_limit``/``label_limit``/label length limits (exceeding one fails the scrape).
- write the samples, StaleNaN markers (at the scrape time) for series of the previous scrape that
  are gone, and the synthetic series ``up``, ``scrape_duration_seconds``,
  ``scrape_samples_scraped``, ``scrape_samples_post_metric_relabeling``, ``scrape_series_added``.
  A failed scrape writes ``up`` 0 and stale markers for every series of the previous scrape.
  Series with an exposition timestamp (when ``honor_timestamps``) are not tracked for staleness.

A target that disappears (reload or file_sd change) gets stale markers for all its series and its
synthetic series; ``stop()`` (shutdown) writes none, as Prometheus. Scrapes start at an offset
within the interval derived from a hash of the target (spread like Prometheus).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from clearsight import __version__
from clearsight.ingest.prom_text import ParsedScrape, SeriesCache, parse_prometheus_text, prune_series_cache
from clearsight.model.labels import METRIC_NAME, Labels
from clearsight.model.samples import STALE_NAN, MetricMetadata, SampleBatch, canonical_key
from clearsight.pipeline.errors import InvalidInput, LimitExceeded
from clearsight.scrape.config import ScrapeConfig, format_duration
from clearsight.scrape.discovery import FileDiscovery
from clearsight.scrape.relabel import process
from clearsight.scrape.target import Target, TargetGroup, TargetSet, static_groups, targets_from_groups
from clearsight.store.interface import AppendResult

log = logging.getLogger("clearsight.scrape")

Sink = Callable[[str, SampleBatch], Awaitable[AppendResult]]
Clock = Callable[[], float]  # seconds since the Unix epoch

ACCEPT_HEADER = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
USER_AGENT = f"Clearsight/{__version__}"
REPORT_SERIES = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
)
_REPORT_HELP = {
    "up": "Health of the scrape target: 1 if the last scrape succeeded, 0 otherwise.",
    "scrape_duration_seconds": "Duration of the scrape in seconds.",
    "scrape_samples_scraped": "Number of samples the target exposed.",
    "scrape_samples_post_metric_relabeling": "Number of samples left after metric relabeling.",
    "scrape_series_added": "Number of series in this scrape that were not in the previous one.",
}
_OFFLOAD_BYTES = 256 * 1024
_OFFLOAD_SAMPLES = 5000
REPORT_METADATA = [MetricMetadata(n, "gauge", h) for n, h in _REPORT_HELP.items()]


class ScrapeError(Exception):
    """A failed scrape (HTTP error, timeout, parse error, limit exceeded)."""


@dataclass
class TargetStatus:
    """What ``ScrapeManager.targets()`` reports per active target (for /api/v1/targets)."""

    job: str
    labels: Labels
    discovered_labels: Labels
    scrape_url: str
    scrape_interval: float
    scrape_timeout: float
    health: str = "unknown"  # "up", "down" or "unknown" (not scraped yet)
    last_error: str = ""
    last_scrape: float | None = None  # seconds since the epoch, start of the last scrape
    last_scrape_duration: float = 0.0  # seconds
    samples_scraped: int = 0
    samples_post_relabel: int = 0
    duplicates_dropped: int = 0  # series that metric relabeling collapsed onto another one
    write_error: str = ""  # the sink's last error, "" when the last write succeeded

    def api_dict(self) -> dict[str, Any]:
        """This target as an element of ``activeTargets`` in Prometheus' ``/api/v1/targets``."""
        return {
            "discoveredLabels": dict(self.discovered_labels),
            "labels": dict(self.labels),
            "scrapePool": self.job,
            "scrapeUrl": self.scrape_url,
            "globalUrl": self.scrape_url,
            "lastError": self.last_error,
            "lastScrape": _rfc3339(self.last_scrape),
            "lastScrapeDuration": self.last_scrape_duration,
            "health": self.health,
            "scrapeInterval": format_duration(self.scrape_interval),
            "scrapeTimeout": format_duration(self.scrape_timeout),
        }


def _rfc3339(t: float | None) -> str:
    """Go's time.Time JSON form; the zero time when never scraped (as Prometheus)."""
    if t is None:
        return "0001-01-01T00:00:00Z"
    whole = int(t // 1)
    nanos = round((t - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    frac = f".{nanos:09d}".rstrip("0").rstrip(".")
    return f"{base}{frac}Z"


@dataclass
class _Processed:
    series: list[tuple[Labels, int, float, bytes]]  # labels, ts_ms, value, canonical key
    tracked: dict[bytes, Labels]  # series subject to staleness (no exposition timestamp), by key
    scraped: int
    duplicates: int


def _fmt_seconds(s: float) -> str:
    return f"{s:.3f}".rstrip("0").rstrip(".")


def _fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def resolve_target_labels(scraped: Labels, target: Labels, honor: bool) -> dict[str, str]:
    """Prometheus' merge of a scraped series' labels with its target's labels."""
    lset = dict(scraped)
    if honor:
        for n, v in target:
            if n not in lset:
                lset[n] = v
        return lset
    conflicts: list[tuple[str, str]] = []
    for n, v in target:
        existing = lset.get(n, "")
        if existing != "":
            conflicts.append((n, existing))
        lset[n] = v
    if conflicts:
        scraped_names = {n for n, _ in scraped}
        target_names = {n for n, _ in target}
        conflicts.sort(key=lambda c: len(c[0]))
        taken: set[str] = set()
        renamed = []
        for n, v in conflicts:
            new = n
            while True:
                new = "exported_" + new
                if new not in scraped_names and new not in target_names and new not in taken:
                    break
            taken.add(new)
            renamed.append((new, v))
        for n, v in renamed:
            lset[n] = v
    return lset


class _Loop:
    """The scrape loop of one target."""

    def __init__(
        self,
        target: Target,
        cfg: ScrapeConfig,
        pool: _Pool,
        mgr: ScrapeManager,
        prev: dict[bytes, Labels] | None = None,
    ) -> None:
        self.target = target
        self.cfg = cfg
        self.pool = pool
        self.mgr = mgr
        # the series of the last scrape that are subject to staleness: canonical key -> labels
        self.prev: dict[bytes, Labels] = prev if prev is not None else {}
        self.reported = False  # whether report series were ever written (for end-of-run staleness)
        self.lock = asyncio.Lock()
        self.stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.label_cache: dict[int, tuple[Labels, tuple[Labels, bytes] | None]] = {}
        self.series_cache: SeriesCache = {}
        self.report_keys = [(lb, canonical_key(lb)) for lb in (self._report_labels(n) for n in REPORT_SERIES)]
        self.status = TargetStatus(
            target.job, target.labels, target.discovered_labels, target.url, target.interval, target.timeout
        )

    # ---------------------------------------------------------------- scheduling

    def initial_delay(self, now: float) -> float:
        """Seconds until this target's first scrape: a stable offset within the interval."""
        interval_ns = max(1, int(self.target.interval * 1e9))
        key = repr(self.target.key).encode()
        offset = (_fnv64a(key) ^ self.mgr.jitter_seed) % interval_ns
        now_ns = int(now * 1e9)
        base = interval_ns - now_ns % interval_ns
        nxt = base + offset
        if nxt > interval_ns:
            nxt -= interval_ns
        return nxt / 1e9

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.target.interval
        deadline = loop.time() + self.initial_delay(self.mgr.clock())
        while True:
            delay = deadline - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return
            await self.scrape_once()
            deadline += interval
            now = loop.time()
            if deadline <= now:  # overran: skip the missed ticks, keep the phase
                deadline += ((now - deadline) // interval + 1) * interval

    # ---------------------------------------------------------------- one scrape

    async def scrape_once(self) -> None:
        async with self.lock:
            if self.stopping.is_set():
                return
            await self._scrape()

    async def _scrape(self) -> None:
        start = self.mgr.clock()
        ts_ms = int(start * 1000)
        t0 = time.perf_counter()
        err = ""
        proc = _Processed([], {}, 0, 0)
        metadata: list[MetricMetadata] = []
        fetch = asyncio.ensure_future(self._fetch())
        stop_wait = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({fetch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
        if not fetch.done():  # stopping: abandon this scrape, write nothing
            fetch.cancel()
            with contextlib.suppress(BaseException):
                await fetch
            return
        scraped = 0
        try:
            body, ctype = fetch.result()
            if len(body) > _OFFLOAD_BYTES:
                # Large expositions are parsed off the event loop so it stays responsive.
                parsed = await asyncio.to_thread(self._parse, body, ctype, ts_ms)
            else:
                parsed = self._parse(body, ctype, ts_ms)
            scraped = len(parsed.samples)
            metadata = parsed.metadata
            if len(parsed.samples) > _OFFLOAD_SAMPLES:
                proc = await asyncio.to_thread(self._process, parsed.samples, ts_ms)
            else:
                proc = self._process(parsed.samples, ts_ms)
        except (ScrapeError, InvalidInput) as e:
            err = str(e)
            proc = _Processed([], {}, scraped, 0)
        except Exception as e:  # a bug must not kill the loop: report it as a failed scrape
            log.exception("scrape of %s failed unexpectedly", self.target.url)
            err = f"internal error: {type(e).__name__}: {e}"
            proc = _Processed([], {}, scraped, 0)
        duration = time.perf_counter() - t0
        batch = self._build(proc, err, metadata, ts_ms, duration)
        exc = await self._write(batch)
        if isinstance(exc, InvalidInput | LimitExceeded) and not err:
            # The write path refused the samples themselves (e.g. a label too long for the store):
            # the scrape counts as failed, as when Prometheus' append fails; write up=0 and the
            # stale markers instead.
            err = f"samples rejected by the write path: {exc}"
            proc = _Processed([], {}, proc.scraped, 0)
            await self._write(self._build(proc, err, [], ts_ms, duration))
        self.prev = proc.tracked
        self.reported = True
        st = self.status
        previous_error = st.last_error if st.last_scrape is not None else None
        st.health = "down" if err else "up"
        st.last_error = err
        st.last_scrape = start
        st.last_scrape_duration = duration
        st.samples_scraped = proc.scraped
        st.samples_post_relabel = len(proc.series)
        st.duplicates_dropped = proc.duplicates
        where = {"job": self.target.job, "target": self.target.url}
        if err:
            # WARN when the target goes down or fails for a new reason; the same failure again at DEBUG.
            level = logging.DEBUG if err == previous_error else logging.WARNING
            log.log(level, "scrape of %s failed: %s", self.target.url, err, extra=where)
        else:
            if previous_error:
                log.info("scrape of %s succeeded again", self.target.url, extra=where)
            log.debug("scrape of %s succeeded", self.target.url,
                      extra={**where, "samples": proc.scraped, "duration_seconds": round(duration, 6)})

    def _build(
        self, proc: _Processed, err: str, metadata: list[MetricMetadata], ts_ms: int, duration: float
    ) -> SampleBatch:
        """The batch of one scrape: samples, stale markers for vanished series, synthetic series."""
        stale = [self.prev[k] for k in self.prev.keys() - proc.tracked.keys()]
        added = len(proc.tracked.keys() - self.prev.keys())
        up = 0.0 if err else 1.0
        report = (up, duration, float(proc.scraped), float(len(proc.series)), float(added))
        n = len(proc.series) + len(stale) + len(REPORT_SERIES)
        keys: list[bytes] = []
        decode: dict[bytes, Labels] = {}
        ts = np.empty(n, dtype=np.int64)
        vals = np.empty(n, dtype=np.float64)
        i = 0
        for lb, t, v, key in proc.series:
            keys.append(key)
            decode[key] = lb
            ts[i] = t
            vals[i] = v
            i += 1
        for lb in sorted(stale):
            key = canonical_key(lb)
            keys.append(key)
            decode[key] = lb
            i += 1
        ts[len(proc.series) : i] = ts_ms
        vals[len(proc.series) : i] = STALE_NAN
        for (lb, key), v in zip(self.report_keys, report, strict=True):
            keys.append(key)
            decode[key] = lb
            ts[i] = ts_ms
            vals[i] = v
            i += 1
        return SampleBatch(
            keys=keys,
            key_kind="canon",
            decode_labels=decode.__getitem__,
            series_idx=np.arange(n, dtype=np.int32),
            timestamps=ts,
            values=vals,
            metadata=[*metadata, *REPORT_METADATA],
        )

    async def _write(self, batch: SampleBatch) -> Exception | None:
        """Writes through the sink; returns (and records) the error instead of raising."""
        try:
            await self.mgr.sink(self.mgr.tenant, batch)
            self.status.write_error = ""
            return None
        except Exception as e:
            self.status.write_error = f"{type(e).__name__}: {e}"
            log.warning("writing the scrape of %s failed: %s", self.target.url, e)
            return e

    def _report_labels(self, name: str) -> Labels:
        return tuple(sorted([(METRIC_NAME, name), *self.target.labels]))

    async def _fetch(self) -> tuple[bytes, str]:
        try:
            return await asyncio.wait_for(self._get(), self.target.timeout)
        except TimeoutError:
            raise ScrapeError(f"scrape timed out after {_fmt_seconds(self.target.timeout)}s") from None
        except httpx.HTTPError as e:
            raise ScrapeError(f"{type(e).__name__}: {e}".rstrip(": ")) from None
        except (OSError, ssl.SSLError) as e:
            raise ScrapeError(f"{type(e).__name__}: {e}") from None

    async def _get(self) -> tuple[bytes, str]:
        headers = {
            "Accept": ACCEPT_HEADER,
            "Accept-Encoding": "gzip",
            "User-Agent": USER_AGENT,
            "X-Prometheus-Scrape-Timeout-Seconds": _fmt_seconds(self.target.timeout),
        }
        auth = self.pool.auth_header()
        if auth:
            headers["Authorization"] = auth
        ext: dict[str, Any] = {}
        if self.cfg.tls_config.server_name:
            ext["sni_hostname"] = self.cfg.tls_config.server_name
        limit = self.cfg.body_size_limit
        req = self.pool.client.build_request(
            "GET", self.target.url, headers=headers, timeout=self.target.timeout, extensions=ext
        )
        resp = await self.pool.client.send(req, stream=True)
        try:
            if resp.status_code != 200:
                raise ScrapeError(
                    f"server returned HTTP status {resp.status_code} {resp.reason_phrase}".rstrip()
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if limit and size > limit:
                    raise ScrapeError(f"body size limit exceeded ({limit} bytes)")
                chunks.append(chunk)
            return b"".join(chunks), resp.headers.get("content-type", "")
        finally:
            await resp.aclose()

    def _parse(self, body: bytes, ctype: str, ts_ms: int) -> ParsedScrape:
        try:
            parsed = parse_prometheus_text(body, ctype, ts_ms, series_cache=self.series_cache)
        finally:
            # Bound the cache by what the target exposes (a churning target cannot grow it forever).
            prune_series_cache(self.series_cache, 2 * body.count(b"\n") + 1000)
        return parsed

    def _final_labels(self, labels: Labels) -> tuple[Labels, bytes] | None:
        """A scraped series' labels after target labels and metric relabeling (None: dropped)."""
        lset = resolve_target_labels(labels, self.target.labels, self.cfg.honor_labels)
        if self.cfg.metric_relabel_configs:
            res = process(lset, self.cfg.metric_relabel_configs)
            if res is None:
                return None
            lset = res
        final: Labels = tuple(sorted((k, v) for k, v in lset.items() if v != ""))
        if not final:
            return None
        if lset.get(METRIC_NAME, "") == "":
            raise ScrapeError("__name__ label is mandatory (removed by metric relabeling?)")
        self._check_label_limits(final)
        return final, canonical_key(final)

    def _process(self, samples: Sequence[tuple[Labels, float, int | None]], ts_ms: int) -> _Processed:
        cfg = self.cfg
        honor_ts = cfg.honor_timestamps
        # Keyed by the identity of the parsed label tuple: the parser's series cache hands out the
        # same tuple for the same series text, and the entry keeps it alive, so ids cannot be reused.
        cache = self.label_cache
        new_cache: dict[int, tuple[Labels, tuple[Labels, bytes] | None]] = {}
        out: list[tuple[Labels, int, float, bytes]] = []
        tracked: dict[bytes, Labels] = {}
        seen: set[tuple[bytes, int]] = set()
        dups = 0
        for labels, value, ts in samples:
            hit = cache.get(id(labels))
            if hit is not None and hit[0] is labels:
                ent = hit[1]
            else:
                ent = self._final_labels(labels)
            new_cache[id(labels)] = (labels, ent)
            if ent is None:
                continue
            final, key = ent
            t = ts_ms if ts is None or not honor_ts else ts
            if (key, t) in seen:
                dups += 1
                continue
            seen.add((key, t))
            out.append((final, t, value, key))
            if ts is None or not honor_ts:
                tracked[key] = final
        if cfg.sample_limit and len(out) > cfg.sample_limit:
            raise ScrapeError(f"sample limit exceeded ({len(out)} samples, limit {cfg.sample_limit})")
        self.label_cache = new_cache
        return _Processed(out, tracked, len(samples), dups)

    def _check_label_limits(self, final: Labels) -> None:
        cfg = self.cfg
        if cfg.label_limit and len(final) > cfg.label_limit:
            raise ScrapeError(
                f"label_limit exceeded (metric: {dict(final).get(METRIC_NAME, '')}, "
                f"number of labels: {len(final)}, limit: {cfg.label_limit})"
            )
        if cfg.label_name_length_limit or cfg.label_value_length_limit:
            for n, v in final:
                if cfg.label_name_length_limit and len(n) > cfg.label_name_length_limit:
                    raise ScrapeError(
                        f"label_name_length_limit exceeded (label name: {n[:64]}, "
                        f"limit: {cfg.label_name_length_limit})"
                    )
                if cfg.label_value_length_limit and len(v) > cfg.label_value_length_limit:
                    raise ScrapeError(
                        f"label_value_length_limit exceeded (label: {n}, "
                        f"limit: {cfg.label_value_length_limit})"
                    )

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"scrape {self.target.url}")

    async def halt(self) -> None:
        """Stops the loop; a scrape in flight is abandoned (its fetch cancelled, nothing written)."""
        self.stopping.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def write_end_of_run_staleness(self) -> None:
        """Stale markers for every series of the last scrape and for the synthetic series."""
        if not self.reported:
            return
        ts_ms = int(self.mgr.clock() * 1000)
        series: list[tuple[Labels, list[tuple[int, float]]]] = [
            (lb, [(ts_ms, STALE_NAN)]) for lb in sorted(self.prev.values())
        ]
        series.extend((self._report_labels(n), [(ts_ms, STALE_NAN)]) for n in REPORT_SERIES)
        self.prev = {}
        await self._write(SampleBatch.from_series(series))


class _Pool:
    """Per job: the HTTP client (TLS, redirects) and credentials."""

    def __init__(self, cfg: ScrapeConfig) -> None:
        self.cfg = cfg
        self.client = httpx.AsyncClient(
            verify=self._ssl_context(cfg),
            follow_redirects=cfg.follow_redirects,
            trust_env=False,
            timeout=cfg.scrape_timeout,
        )

    @staticmethod
    def _ssl_context(cfg: ScrapeConfig) -> ssl.SSLContext | bool:
        t = cfg.tls_config
        if cfg.scheme != "https" and not (t.ca_file or t.cert_file or t.insecure_skip_verify):
            return True
        ctx = ssl.create_default_context(cafile=t.ca_file or None)
        if t.cert_file:
            ctx.load_cert_chain(t.cert_file, t.key_file)
        if t.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def auth_header(self) -> str:
        cfg = self.cfg
        if cfg.basic_auth is not None:
            pw = cfg.basic_auth.password
            if cfg.basic_auth.password_file:
                pw = _read_secret(cfg.basic_auth.password_file)
            raw = f"{cfg.basic_auth.username}:{pw}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if cfg.authorization is not None:
            cred = cfg.authorization.credentials
            if cfg.authorization.credentials_file:
                cred = _read_secret(cfg.authorization.credentials_file)
            return f"{cfg.authorization.type} {cred}"
        return ""

    async def close(self) -> None:
        await self.client.aclose()


def _read_secret(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise ScrapeError(f"cannot read credentials file: {e}") from None


@dataclass
class _Job:
    cfg: ScrapeConfig
    pool: _Pool
    discoveries: list[FileDiscovery] = field(default_factory=list)
    file_groups: list[TargetGroup] = field(default_factory=list)
    loops: dict[tuple[str, Labels, str], _Loop] = field(default_factory=dict)
    targets: TargetSet = field(default_factory=lambda: TargetSet([], [], []))
    sd_task: asyncio.Task[None] | None = None


class ScrapeManager:
    """Runs the scrape loops of all jobs; ``apply`` reloads the configuration.

    ``sink(tenant, batch)`` receives one batch per scrape (samples, stale markers, synthetic
    series) and per removed target (stale markers). ``clock()`` gives the sample timestamps
    (seconds since the epoch). With ``run_loops=False`` nothing is scheduled and scrapes happen only
    through ``scrape_now()`` (tests, one-shot tools).
    """

    def __init__(
        self,
        configs: Sequence[ScrapeConfig],
        sink: Sink,
        tenant: str,
        clock: Clock = time.time,
        *,
        run_loops: bool = True,
        jitter_seed: int | None = None,
    ) -> None:
        self._configs = list(configs)
        self.sink = sink
        self.tenant = tenant
        self.clock = clock
        self.run_loops = run_loops
        # Like Prometheus (which hashes its hostname and external labels), scrapers on different
        # hosts get different phases for the same target.
        self.jitter_seed = jitter_seed if jitter_seed is not None else _fnv64a(socket.gethostname().encode())
        self._jobs: dict[str, _Job] = {}
        self._started = False
        self._apply_lock = asyncio.Lock()

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self._apply(self._configs)

    async def stop(self) -> None:
        """Stops every loop without writing stale markers (a restart continues the series)."""
        self._started = False
        for job in list(self._jobs.values()):
            await self._stop_job(job, staleness=False)
        self._jobs.clear()

    async def apply(self, configs: Sequence[ScrapeConfig]) -> None:
        """Reload: unchanged targets keep their loops; removed targets get stale markers."""
        self._configs = list(configs)
        if self._started:
            await self._apply(self._configs)

    async def refresh_discovery(self) -> None:
        """Re-reads every file_sd file now (normally done every refresh_interval)."""
        for job in list(self._jobs.values()):
            await self._refresh_job(job)

    async def scrape_now(self, job: str | None = None) -> None:
        """Scrapes every active target (of ``job``) once, now, and waits for the writes."""
        loops = [
            lp for name, j in self._jobs.items() if job is None or name == job for lp in j.loops.values()
        ]
        await asyncio.gather(*(lp.scrape_once() for lp in loops))

    def targets(self) -> list[TargetStatus]:
        """The active targets with their health, last error, last scrape time and duration."""
        out: list[TargetStatus] = []
        for job in self._jobs.values():
            out.extend(dataclasses.replace(lp.status) for lp in job.loops.values())
        return sorted(out, key=lambda s: (s.job, s.scrape_url, s.labels))

    def api_targets(self, state: str = "any", scrape_pool: str | None = None) -> dict[str, Any]:
        """The ``data`` of Prometheus' ``/api/v1/targets?state=...&scrapePool=...``."""
        if state not in ("any", "active", "dropped"):
            raise ValueError(f"invalid state {state!r} (any, active or dropped)")
        out: dict[str, Any] = {}
        if state in ("any", "active"):
            out["activeTargets"] = [
                t.api_dict() for t in self.targets() if scrape_pool is None or t.job == scrape_pool
            ]
        if state in ("any", "dropped"):
            out["droppedTargets"] = [
                {"discoveredLabels": dict(d)}
                for job, d in self.dropped_targets()
                if scrape_pool is None or job == scrape_pool
            ]
        return out

    def dropped_targets(self) -> list[tuple[str, Labels]]:
        """(job, discovered labels) of targets dropped by relabeling."""
        return [(name, d) for name, j in self._jobs.items() for d in j.targets.dropped]

    def target_errors(self) -> list[tuple[str, Labels, str]]:
        """(job, discovered labels, reason) of targets that cannot be scraped (e.g. no address)."""
        return [(name, d, e) for name, j in self._jobs.items() for d, e in j.targets.errors]

    def discovery_errors(self) -> dict[str, str]:
        """file_sd files that failed to read or parse on the last refresh: path -> error."""
        out: dict[str, str] = {}
        for j in self._jobs.values():
            for d in j.discoveries:
                out.update(d.last_errors)
        return out

    # ---------------------------------------------------------------- internals

    async def _apply(self, configs: Sequence[ScrapeConfig]) -> None:
        async with self._apply_lock:
            wanted = {c.job_name: c for c in configs}
            for name in [n for n in self._jobs if n not in wanted]:
                await self._stop_job(self._jobs.pop(name), staleness=True)
            for name, cfg in wanted.items():
                old = self._jobs.get(name)
                if old is not None and old.cfg == cfg:
                    continue
                job = _Job(cfg, _Pool(cfg), [FileDiscovery(f) for f in cfg.file_sd_configs])
                self._jobs[name] = job
                await self._sync_targets(job, old)
                if old is not None:
                    await self._stop_job(old, staleness=True, keep=set(job.loops))
                if job.discoveries and self.run_loops:
                    job.sd_task = asyncio.create_task(self._sd_loop(job), name=f"file_sd {name}")

    async def _sync_targets(self, job: _Job, previous: _Job | None = None) -> None:
        """Reconciles a job's loops with its current target groups."""
        if job.discoveries:
            groups: list[TargetGroup] = []
            for d in job.discoveries:
                groups.extend(d.refresh())
            job.file_groups = groups
        job.targets = targets_from_groups(job.cfg, static_groups(job.cfg) + job.file_groups)
        wanted = {t.key: t for t in job.targets.active}
        # Loops of the same target in the previous config hand their series over (no staleness).
        donors = previous.loops if previous is not None else {}
        gone = [job.loops.pop(k) for k in [k for k in job.loops if k not in wanted]]
        for lp in gone:
            lp.stopping.set()
        await asyncio.gather(*(lp.halt() for lp in gone))
        await asyncio.gather(*(lp.write_end_of_run_staleness() for lp in gone))
        for key, target in wanted.items():
            if key in job.loops:
                continue
            donor = donors.get(key)
            prev = None
            if donor is not None:
                await donor.halt()
                prev = donor.prev
            lp = _Loop(target, job.cfg, job.pool, self, prev)
            if donor is not None:
                lp.reported = donor.reported
            job.loops[key] = lp
            if self.run_loops:
                lp.start()

    async def _stop_job(
        self, job: _Job, staleness: bool, keep: set[tuple[str, Labels, str]] | None = None
    ) -> None:
        if job.sd_task is not None:
            job.sd_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job.sd_task
            job.sd_task = None
        loops = list(job.loops.items())
        for _, lp in loops:
            lp.stopping.set()  # all loops stop together; halt() then only waits
        await asyncio.gather(*(lp.halt() for _, lp in loops))
        if staleness:
            await asyncio.gather(
                *(lp.write_end_of_run_staleness() for key, lp in loops if not (keep and key in keep))
            )
        job.loops.clear()
        await job.pool.close()

    async def _refresh_job(self, job: _Job) -> None:
        async with self._apply_lock:
            if self._jobs.get(job.cfg.job_name) is job:
                await self._sync_targets(job)

    async def _sd_loop(self, job: _Job) -> None:
        interval = min(d.cfg.refresh_interval for d in job.discoveries)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._refresh_job(job)
            except Exception:  # keep discovering; the error is logged
                log.exception("file_sd refresh of job %s failed", job.cfg.job_name)
