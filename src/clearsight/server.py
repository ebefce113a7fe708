"""The one place where the concrete graph is wired: config -> store -> pipeline -> API surfaces.

``run_server(config)`` starts the HTTP API (main port), the OTLP/HTTP listener, the OTLP/gRPC
server, the scrape manager and the retention loop; SIGTERM/SIGINT stop them in order and the store
commits what was acknowledged before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from clearsight import gc_policy
from clearsight.api import mtls
from clearsight.api.admission import AdmissionMiddleware, served_hosts
from clearsight.api.alertmanager import make_alertmanager_routes
from clearsight.api.app import Services, create_app
from clearsight.api.audit_routes import CrossOrgAuditMiddleware, audit_routes, make_audit_api
from clearsight.api.auth_admin import make_admin_routes
from clearsight.api.auth_routes import make_auth_routes
from clearsight.api.common import TenantOf
from clearsight.api.correlations import CorrelationApi
from clearsight.api.dashboards import make_dashboard_routes
from clearsight.api.events_grpc import EventService
from clearsight.api.fast_lane import FastLane, FastLaneCollector
from clearsight.api.health import HealthApi
from clearsight.api.http_limits import BodyLimitMiddleware, header_deadline_protocol
from clearsight.api.idle_spin import IdleSpin, IdleSpinCollector
from clearsight.api.logs_ingest import LogIngestSurfaces
from clearsight.api.logs_native import NativeLogsApi
from clearsight.api.logs_query import LogQueryApi
from clearsight.api.mfa_routes import MfaApi
from clearsight.api.mtls import SCOPE_ORG
from clearsight.api.otlp_grpc import TenantOfMetadata, start_otlp_grpc_server
from clearsight.api.otlp_http import ExportOutcome, make_otlp_metrics_route
from clearsight.api.prometheus_rules import make_reload_route, make_rule_config_routes, make_rules_routes
from clearsight.api.prometheus_status import make_admin_tsdb_routes
from clearsight.api.query_admission import make_governor, query_concurrency
from clearsight.api.query_metrics import GovernorCollector
from clearsight.api.read_lane import ReadLane
from clearsight.api.resources import ResourceApi
from clearsight.api.security_headers import SecurityHeadersMiddleware
from clearsight.api.signing_routes import make_signing_routes
from clearsight.api.silence_schedules import make_silence_schedule_routes
from clearsight.api.simple_ingest import make_simple_ingest_routes
from clearsight.api.syslog_listener import SyslogListener
from clearsight.api.trace_context import TraceMiddleware, install_log_filter
from clearsight.api.traces import TraceSurfaces
from clearsight.api.ui import make_ui_routes
from clearsight.api.usage_routes import make_usage_routes
from clearsight.api.writes_first import WRITE_PATHS, WritesFirstMiddleware
from clearsight.api.ws_metrics import make_ws_metrics_route
from clearsight.auth.audit import AuditLog
from clearsight.auth.csrf import CsrfMiddleware
from clearsight.auth.idempotency import IdempotencyMiddleware, IdempotencyStore
from clearsight.auth.label_scope import exact_matchers
from clearsight.auth.middleware import AuthMiddleware
from clearsight.auth.principal import principal_of_scope
from clearsight.auth.ratelimit import IpRateLimitMiddleware, PrincipalRateLimitMiddleware, TokenBuckets
from clearsight.auth.signing import SignatureVerifier, SignedIngestMiddleware, SigningSecrets, Verifier
from clearsight.auth.system import AuthSystem, open_auth
from clearsight.auth.totp import Mfa
from clearsight.auth.usage import Prices, QueryCountMiddleware, Usage
from clearsight.cli.rules import check_expr, vector_of
from clearsight.config import Config, ConfigError, parse_duration_ms, parse_listen
from clearsight.correlation.correlator import CorrelationSettings, Correlator, RangeQueryFunc
from clearsight.dashboards.store import DashboardStore
from clearsight.health.history import HealthHistory
from clearsight.health.metrics import HealthCollector
from clearsight.health.monitor import HealthMonitor
from clearsight.health.rules import HealthRuleError, load_rules
from clearsight.heap import release_free_memory
from clearsight.ingest.otlp_metrics import OtlpOptions, exponential_mode
from clearsight.model.labels import Labels
from clearsight.model.logs import Event
from clearsight.model.matchers import Matcher
from clearsight.model.rollups import FIVE_MINUTES_MS, ONE_HOUR_MS
from clearsight.model.samples import SampleBatch
from clearsight.notify.config import NotifyConfigError, default_config
from clearsight.notify.config import load_config_file as load_notify_config
from clearsight.notify.metrics import NotifyMetrics
from clearsight.notify.notifier import Notifier
from clearsight.notify.schedule_store import ScheduleStore
from clearsight.pipeline.decoded_bytes import DecodedBytes, HoldingPool
from clearsight.pipeline.event_entries import events_batch
from clearsight.pipeline.ingestor import MetricsIngestor
from clearsight.pipeline.log_enrich import host_attributes
from clearsight.pipeline.log_ingestor import LogIngestor
from clearsight.pipeline.log_settings import parse_log_pipeline
from clearsight.pipeline.log_steps import build_log_steps
from clearsight.pipeline.pii import load_or_create_secret
from clearsight.pipeline.series_budget import BYTES_PER_SERIES, RAM_SHARE, resolve_series_total
from clearsight.pipeline.span_ingestor import SpanIngestor
from clearsight.pipeline.tenant import validate_tenant
from clearsight.pipeline.validate import make_validator
from clearsight.query.budget import QueryBudget, running
from clearsight.query.governor import make_query_executor
from clearsight.query.logql.ast import LogSelector
from clearsight.query.logql.evaluator import LogQLEvaluator, LogQLLimits
from clearsight.query.logql.parser import parse_expr as parse_logql_expr
from clearsight.query.promql.engine import Engine, parse_with_positions
from clearsight.query.promql.values import ScalarSteps
from clearsight.query.shared_select import SharedSelects
from clearsight.query.write_priority import WritePriority
from clearsight.resources.discovery import PassiveDiscovery
from clearsight.resources.events import LogStoreEvents
from clearsight.resources.model import Liveness, make_id
from clearsight.resources.periodic import PeriodicTask
from clearsight.resources.registry import ResourceRegistry
from clearsight.resources.state import JsonStateFile
from clearsight.rules.group import EvalOptions
from clearsight.rules.manager import RuleManager
from clearsight.rules.metrics import RulesCollector
from clearsight.rules.model import RuleFileError
from clearsight.rules.tenants import TenantRuleSets
from clearsight.rules.types import QueryFailed
from clearsight.rules.types import Sample as RuleSample
from clearsight.scrape.config import ScrapeConfig, parse_scrape_configs
from clearsight.scrape.manager import ScrapeManager
from clearsight.selfmetrics import SelfMetrics
from clearsight.store.embedded import EmbeddedMetricsStore
from clearsight.store.embedded.exemplar_store import EmbeddedExemplarStore
from clearsight.store.embedded.logs_store import EmbeddedLogStore
from clearsight.store.embedded.span_store import EmbeddedSpanStore
from clearsight.store.exemplars_interface import ExemplarAppendResult
from clearsight.store.interface import MetricsStore

log = logging.getLogger("clearsight.server")


def make_tenant_of_metadata(cfg: Config) -> TenantOfMetadata:
    """Tenant of a gRPC call: the organisation of the principal the auth interceptor resolved
    (without one, as the anonymous principal: the default tenant, or the trusted tenant header)."""
    default = cfg.tenancy.default_tenant
    header = cfg.tenancy.tenant_header.lower()
    trust = cfg.tenancy.trust_tenant_header

    def tenant_of(metadata: Any) -> str:
        from clearsight.auth.grpc_interceptor import current_principal  # loads grpcio: gRPC calls only

        principal = current_principal()
        tls_org = mtls.current_grpc_tls_org()  # O of a verified client certificate (api/mtls.py)
        if tls_org and (principal is None or principal.anonymous):
            return validate_tenant(tls_org)
        if principal is not None:
            return principal.org
        if trust:
            for k, v in metadata or ():
                if k.lower() == header and v:
                    return validate_tenant(v.decode("latin-1") if isinstance(v, bytes) else str(v))
        return default

    return tenant_of


def make_tenant_of(cfg: Config) -> TenantOf:
    default = cfg.tenancy.default_tenant
    header = cfg.tenancy.tenant_header.lower()
    trust = cfg.tenancy.trust_tenant_header

    def tenant_of(request: HTTPConnection) -> str:
        principal = principal_of_scope(request.scope)  # the auth middleware decided (auth/middleware.py)
        tls_org = request.scope.get(SCOPE_ORG)  # O of a verified client certificate (api/mtls.py)
        if tls_org and (principal is None or principal.anonymous):
            return validate_tenant(tls_org)
        if principal is not None:
            return principal.org
        if trust:
            value = request.headers.get(header)
            if value:
                return validate_tenant(value)
        return default

    return tenant_of


@dataclass
class Built:
    services: Services
    store: MetricsStore
    otlp_route_app: Starlette
    scraper: ScrapeManager
    rules: RuleManager | None = None
    tenant_rules: TenantRuleSets | None = None
    notifier: Notifier | None = None
    log_store: EmbeddedLogStore | None = None
    auth: AuthSystem | None = None
    health: HealthParts | None = None
    log_surfaces: LogIngestSurfaces | None = None
    syslog: SyslogListener | None = None
    signing: Verifier | None = None  # signed ingestion, shared by the HTTP listeners (auth/signing.py)
    usage: Usage | None = None  # usage counts and quotas per organisation (auth/usage.py)
    events_grpc: EventService | None = None  # served on the OTLP/gRPC listener (api/events_grpc.py)
    span_store: EmbeddedSpanStore | None = None  # spans, in the log store's file (store/embedded/span_store.py)
    trace_surfaces: TraceSurfaces | None = None
    writes: WritePriority | None = None  # write requests in flight, for the query threads (query/write_priority.py)

    def close_stores(self) -> None:
        """Closes the metrics store, the log store and the auth database (what a caller of ``build``
        that serves nothing, e.g. a test of the HTTP stack, has to close)."""
        self.store.close()
        if self.log_store is not None:
            self.log_store.close()
        if self.auth is not None:
            self.auth.close()


def _log_notify(alerts: list[dict[str, Any]]) -> None:
    """Until the notifier is wired: alerts due for sending are logged."""
    for a in alerts:
        log.info("alert", extra={"labels": a["labels"], "startsAt": a["startsAt"], "endsAt": a["endsAt"]})


def _notify_config_path(cfg: Config) -> Path:
    path = Path(cfg.alerting.config_file)
    if not path.is_absolute() and cfg.source != "<defaults>":
        path = Path(cfg.source).parent / path
    return path


async def _reload_on_sighup(rules: RuleManager, notifier: Notifier | None, cfg: Config) -> None:
    """SIGHUP: the rule files, then the notification config (a bad file keeps the previous one)."""
    await rules.reload()
    if notifier is not None and cfg.alerting.config_file:
        await notifier.reload_file(_notify_config_path(cfg))


def build_notifier(cfg: Config, metrics: SelfMetrics) -> Notifier:
    """The notifier (notify/) from ``alerting.config_file`` (Alertmanager format); raises ConfigError."""
    notify_cfg = default_config()
    if cfg.alerting.config_file:
        path = _notify_config_path(cfg)
        try:
            notify_cfg = load_notify_config(path)
        except NotifyConfigError as e:
            raise ConfigError(f"alerting.config_file: {e}") from None
    return Notifier(notify_cfg, data_dir=Path(cfg.storage.data_dir) / "alerting",
                    metrics=NotifyMetrics(metrics.registry),
                    external_url=cfg.rules.external_url or f"http://{cfg.server.listen}")


def _log_write_failure(fut: Any) -> None:
    if fut.exception() is not None:
        log.warning("writing rule results failed", extra={"error": str(fut.exception())})


def _rule_io(cfg: Config, store: MetricsStore, ingestor: MetricsIngestor,
             log_store: EmbeddedLogStore | None = None) -> Any:
    """``io(tenant) -> (query, write, log_query)``: the tenant's queries through the PromQL engine on
    the store (LogQL ones on the log store), its results through the ingestor (validated like any
    write)."""
    engine = Engine(lookback_delta_ms=parse_duration_ms(cfg.query.lookback_delta),
                    timeout_s=parse_duration_ms(cfg.query.timeout) / 1000, max_samples=cfg.query.max_samples,
                    stream_batch_samples=cfg.query.stream_batch_samples)
    parsed = functools.lru_cache(maxsize=4096)(parse_with_positions)  # rules parse once, not per evaluation
    parse_logql = functools.lru_cache(maxsize=1024)(parse_logql_expr)
    timeout_s = parse_duration_ms(cfg.query.timeout) / 1000
    log_limits = LogQLLimits(max_lines=cfg.logs.max_query_lines, max_bytes=cfg.logs.max_query_bytes,
                             max_series=cfg.logs.max_query_series, max_samples=cfg.query.max_samples)

    def io(tenant: str) -> tuple[Any, Any, Any, Any]:
        def query(expr: str, time_ms: int, selector: Any = None) -> Any:
            tree, positions = parsed(expr)
            return vector_of(engine.instant(selector or store.querier(tenant), tree, time_ms, positions=positions,
                                            query_text=expr))

        def scope(at_ms: int, memo: dict[Any, Any]) -> Any:
            """The PromQL queries of one group evaluation: one store read per selector (shared_select)."""
            shared = SharedSelects(store.querier(tenant), at_ms, memo.setdefault("widths", {}))
            return lambda expr, time_ms: query(expr, time_ms, shared if time_ms == at_ms else None)

        def log_query(expr: str, time_ms: int) -> Any:
            assert log_store is not None
            budget = QueryBudget(cfg.query.max_samples, time.monotonic() + timeout_s)
            tree = parse_logql(expr)
            if isinstance(tree, LogSelector):
                raise QueryFailed("a LogQL rule needs a metric query, not a log query")
            with running(budget):
                out = LogQLEvaluator(log_store, tenant, log_limits, budget).metric(
                    tree, np.array([time_ms * 1_000_000], dtype=np.int64))
            if isinstance(out, ScalarSteps):
                return [RuleSample((), float(out.values[0]))]
            return [RuleSample(lbls, float(out.values[i, 0])) for i, lbls in enumerate(out.labels)
                    if out.present[i, 0]]

        def write(samples: Any, sync: bool) -> None:
            by_series: dict[Labels, list[tuple[int, float]]] = {}
            for lbls, t, v in samples:
                by_series.setdefault(lbls, []).append((t, v))
            batch = SampleBatch.from_series(list(by_series.items()))
            if sync:
                ingestor.ingest_blocking(tenant, batch)
                return
            ingestor.submit(tenant, batch).add_done_callback(_log_write_failure)

        return query, write, (log_query if log_store is not None else None), scope

    return io


def build_rules(cfg: Config, store: MetricsStore, ingestor: MetricsIngestor,
                notify: Any = _log_notify, log_store: EmbeddedLogStore | None = None
                ) -> tuple[RuleManager, TenantRuleSets]:
    """The rule manager of ``rules.files`` (default tenant) and the per-tenant rule groups managed
    through the API (``<data_dir>/rules/api/<tenant>/``). Raises ConfigError for bad rule files."""
    io = _rule_io(cfg, store, ingestor, log_store)
    base_dir = str(Path(cfg.source).parent) if cfg.source != "<defaults>" else None
    external_url = cfg.rules.external_url or f"http://{cfg.server.listen}"
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rules")
    state_dir = Path(cfg.storage.data_dir) / "rules"

    def manager_for(tenant: str, patterns: list[str], base: str | None = None) -> RuleManager:
        query, write, log_query, scope = io(tenant)
        return RuleManager(
            patterns, query=query, write=write, notify=notify,
            default_interval_ms=parse_duration_ms(cfg.rules.evaluation_interval), check_expr=check_expr,
            base_dir=base, state_dir=state_dir,
            opts=EvalOptions(resend_delay_ms=parse_duration_ms(cfg.rules.resend_delay), external_url=external_url),
            executor=executor, log_query=log_query, query_scope=scope)

    manager = manager_for(cfg.tenancy.default_tenant,
                          [p.strip() for p in cfg.rules.files.split(",") if p.strip()], base_dir)
    try:
        manager.load()
    except RuleFileError as e:
        raise ConfigError("rules.files: invalid rule files:\n" + "\n".join(e.errors)) from None
    tenant_sets = TenantRuleSets(state_dir / "api", manager_for, check_expr)
    tenant_sets.load()
    return manager, tenant_sets


@dataclass
class HealthParts:
    """The registry, health and correlation: their routes, periodic tasks and state to save."""

    registry: ResourceRegistry
    history: HealthHistory
    routes: list[Any]
    tasks: list[PeriodicTask]


def _range_query_for(cfg: Config, store: MetricsStore) -> Any:
    engine = Engine(lookback_delta_ms=parse_duration_ms(cfg.query.lookback_delta),
                    timeout_s=parse_duration_ms(cfg.query.timeout) / 1000, max_samples=cfg.query.max_samples,
                    stream_batch_samples=cfg.query.stream_batch_samples)

    def for_tenant(tenant: str) -> RangeQueryFunc:
        def query(expr: str, start_ms: int, end_ms: int, step_ms: int) -> Any:
            res = engine.range(store.querier(tenant), expr, start_ms, end_ms, step_ms)
            return [(s.labels, s.timestamps, s.values) for s in res.series]
        return query

    return for_tenant


def build_health(cfg: Config, store: MetricsStore, ingestor: MetricsIngestor, log_store: EmbeddedLogStore,
                 log_ingestor: LogIngestor, tenant_of: TenantOf, metrics: SelfMetrics) -> HealthParts:
    """Registry (heartbeats + passive discovery), health monitor and correlator; raises ConfigError
    for a bad ``health.rules_file``."""
    rules_path = None
    if cfg.health.rules_file:
        rules_path = Path(cfg.health.rules_file)
        if not rules_path.is_absolute() and cfg.source != "<defaults>":
            rules_path = Path(cfg.source).parent / rules_path
    try:
        rules = load_rules(rules_path, check_expr)
    except HealthRuleError as e:
        raise ConfigError(f"health.rules_file: {e}") from None
    state_dir = Path(cfg.storage.data_dir) / "resources"
    r = cfg.resources
    registry = ResourceRegistry(JsonStateFile(state_dir / "registry.json"),
                                liveness=Liveness(r.stale_after_missed, r.down_after_missed),
                                max_per_tenant=r.max_per_tenant, forget_after_ms=parse_duration_ms(r.forget_after))
    registry.load()
    history = HealthHistory(JsonStateFile(state_dir / "health_history.json"), cfg.health.history_max_entries)
    history.load()
    io = _rule_io(cfg, store, ingestor)
    events = LogStoreEvents(log_store)

    def query_for(tenant: str) -> Any:
        return io(tenant)[0]

    def write_events(tenant: str, evs: list[Event]) -> None:
        log_ingestor.submit(tenant, events_batch(evs)).result()

    monitor = HealthMonitor(registry, rules, query_for, events, history,
                            security_window_ms=parse_duration_ms(cfg.health.security_window))
    discovery = PassiveDiscovery(registry, query_for, cfg.tenancy.default_tenant,
                                 parse_duration_ms(r.metrics_interval))
    c = cfg.correlation
    correlator = Correlator(registry, rules, _range_query_for(cfg, store), events, write_events, CorrelationSettings(
        window_ms=parse_duration_ms(c.window), baseline_ms=parse_duration_ms(c.baseline),
        step_ms=parse_duration_ms(c.step), threshold=float(c.anomaly_threshold), lookback_ms=parse_duration_ms(c.lookback),
        season_ms=parse_duration_ms(c.seasonality) if c.seasonality else 0))
    tasks = [PeriodicTask("resource discovery", parse_duration_ms(r.discovery_interval) / 1000, discovery.run_once),
             PeriodicTask("health evaluation", parse_duration_ms(cfg.health.evaluation_interval) / 1000, monitor.run_once)]
    if c.enabled:
        tasks.append(PeriodicTask("correlation", parse_duration_ms(c.interval) / 1000, correlator.run_once))
    metrics.registry.register(HealthCollector(registry, monitor, correlator))
    routes = [*ResourceApi(registry, tenant_of, heartbeat_interval_ms=parse_duration_ms(r.heartbeat_interval)).routes(),
              *HealthApi(registry, monitor, history, tenant_of).routes(), *CorrelationApi(events, tenant_of).routes()]
    return HealthParts(registry, history, routes, tasks)


def load_scrape_configs(cfg: Config) -> list[ScrapeConfig]:
    """Parses ``scrape_configs`` of the config (raises ConfigError naming the file and key)."""
    base_dir = str(Path(cfg.source).parent) if cfg.source != "<defaults>" else None
    return parse_scrape_configs(
        cfg.scrape_configs, cfg.source,
        global_scrape_interval=parse_duration_ms(cfg.global_.scrape_interval) / 1000,
        global_scrape_timeout=parse_duration_ms(cfg.global_.scrape_timeout) / 1000,
        base_dir=base_dir)


def _export_recorder(metrics: SelfMetrics) -> Any:
    def on_export(o: ExportOutcome) -> None:
        metrics.requests.labels(o.protocol, str(o.status)).inc()
        if o.reason:
            metrics.rejected.labels(o.protocol, o.reason).inc()
        if o.samples_written:
            metrics.samples_ingested.labels(o.protocol).inc(o.samples_written)
        if o.series:
            metrics.series_ingested.labels(o.protocol).inc(o.series)
        if o.exemplars_dropped:
            metrics.exemplars_dropped.labels(o.protocol).inc(o.exemplars_dropped)
        if o.histograms_dropped:
            metrics.histograms_dropped.labels(o.protocol).inc(o.histograms_dropped)

    return on_export


def _count_exemplars(metrics: SelfMetrics, r: ExemplarAppendResult) -> None:
    for outcome, n in (("appended", r.appended), ("duplicate", r.duplicates), ("out_of_order", r.out_of_order),
                       ("invalid", r.invalid)):
        if n:
            metrics.exemplars.labels(outcome).inc(n)


def _syslog_listener(cfg: Config, log_ingestor: LogIngestor, metrics: SelfMetrics,
                     executor: Executor) -> SyslogListener | None:
    sc = cfg.server
    if not (sc.syslog_udp_listen or sc.syslog_tcp_listen or sc.syslog_tls_listen):
        return None
    tls = None
    if sc.syslog_tls_listen:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(sc.tls_cert_file, sc.tls_key_file)
    return SyslogListener(log_ingestor, cfg.logs.syslog_tenant or cfg.tenancy.default_tenant, metrics,
                          udp_listen=sc.syslog_udp_listen, tcp_listen=sc.syslog_tcp_listen,
                          tls_listen=sc.syslog_tls_listen, tls=tls, executor=executor)


def build(cfg: Config) -> Built:
    """Creates the store, pipeline and HTTP services for ``cfg`` (no listeners yet)."""
    scrape_configs = load_scrape_configs(cfg)
    data_dir = Path(cfg.storage.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    series_total, sized_from = resolve_series_total(cfg.limits.max_series_total)
    if sized_from is not None:
        log.info("limits.max_series_total: auto = %d series (%.0f%% of %d MiB of memory at %d bytes per series)",
                 series_total, RAM_SHARE * 100, sized_from >> 20, BYTES_PER_SERIES,
                 extra={"max_series_total": series_total, "memory_bytes": sized_from})
    store = EmbeddedMetricsStore(
        data_dir,
        retention_ms=cfg.retention_ms,
        retention_size_bytes=cfg.retention_size_bytes,
        out_of_order_window_ms=cfg.out_of_order_window_ms,
        max_active_series_per_tenant=cfg.limits.max_active_series_per_tenant,
        max_series_total=series_total,
        queue_max_batches=cfg.storage.write_queue_batches,
        duckdb_memory_limit=cfg.storage.duckdb_memory_limit,
        duckdb_threads=cfg.storage.duckdb_threads,
        chunk_cache_samples=cfg.storage.decoded_chunk_cache_samples,
        chunk_blob_cache_bytes=cfg.storage.chunk_bytes_cache_bytes,
        selection_cache_ids=cfg.storage.selection_cache_ids,
        label_order_ids=cfg.storage.label_order_cache_ids,
        window_max_samples=cfg.storage.overwrite_window_samples,
        head_log_segment_bytes=cfg.storage.head_log_segment_bytes,
        rollups=cfg.storage.rollups,
        rollup_retention_ms={FIVE_MINUTES_MS: parse_duration_ms(cfg.storage.rollup_retention_5m),
                             ONE_HOUR_MS: parse_duration_ms(cfg.storage.rollup_retention_1h)},
    )
    # The newest chunks decoded now, not by the first queries after a restart (docs/storage.md
    # "Cold start and cold caches"); bounded by storage.decoded_chunk_cache_samples. A chunk that
    # cannot be read (a damaged block) fails the queries that touch it, as before, not the start.
    try:
        warmed = store.warm_caches()
        log.debug("decoded-chunk cache warmed", extra={"samples": warmed})
    except Exception:
        log.warning("warming the decoded-chunk cache failed; queries decode their chunks on demand",
                    exc_info=True)
    metrics = SelfMetrics()
    metrics.add_store(store.stats, data_dir)
    exemplar_store = EmbeddedExemplarStore(data_dir / "exemplars", cfg.storage.max_exemplars)
    usage = make_usage(cfg)  # counts and quotas as pipeline steps; its database is bound with auth below
    validate = make_validator(cfg.limits, time.time, known_keys=store.known_keys)  # one table of known keys
    ingestor = MetricsIngestor(store, [validate, usage.metrics_step], exemplars=exemplar_store,
                               on_exemplars=functools.partial(_count_exemplars, metrics),
                               on_committed=usage.metrics_committed)
    try:
        log_store = EmbeddedLogStore(
            data_dir, retention_ns=parse_duration_ms(cfg.logs.retention) * 1_000_000,
            tenant_retention_ns=parse_log_pipeline(cfg.logs.pipeline, cfg.logs.tenants).retention_overrides(),
            max_streams_per_tenant=cfg.logs.max_streams_per_tenant,
            queue_max_batches=cfg.logs.write_queue_batches, duckdb_memory_limit=cfg.logs.duckdb_memory_limit,
            duckdb_threads=cfg.storage.duckdb_threads)
    except BaseException:
        store.close()
        raise
    metrics.add_log_store(log_store.stats)  # per-tenant stream counts
    hosts: list[ResourceRegistry] = []  # enrich.hosts reads the registry build_health makes below
    try:  # PII scrubbing, dedup, per-tenant rate limits, enrichment (pipeline/log_steps.py)
        log_steps = build_log_steps(parse_log_pipeline(cfg.logs.pipeline, cfg.logs.tenants),
                                    functools.partial(load_or_create_secret, cfg.logs.pii_secret, data_dir),
                                    metrics.registry,
                                    lambda t, h: host_attributes(hosts[0].get(t, make_id("host", h))) if hosts else {})
    except (ValueError, OSError) as e:
        store.close()
        log_store.close()
        raise ConfigError(f"logs.pipeline: {e}") from None
    log_ingestor = LogIngestor(log_store, reject_older_than_ns=parse_duration_ms(cfg.logs.reject_older_than) * 1_000_000,
                               creation_grace_ns=parse_duration_ms(cfg.logs.creation_grace_period) * 1_000_000,
                               steps=[*log_steps, usage.logs_step])
    span_store = EmbeddedSpanStore(log_store, retention_ns=log_store.retention_ns,
                                   tenant_retention_ns=log_store.tenant_retention_ns,
                                   queue_max_batches=cfg.logs.write_queue_batches)
    span_ingestor = SpanIngestor(span_store, reject_older_than_ns=log_ingestor.reject_older_than_ns,
                                 creation_grace_ns=log_ingestor.creation_grace_ns, steps=[usage.spans_step])

    def readiness() -> tuple[bool, str]:
        st = store.stats()
        if not st.writer_alive:
            return False, "store writer is not running"
        if not log_store.stats().writer_alive:
            return False, "log store writer is not running"
        return True, ""

    tenant_of = make_tenant_of(cfg)
    # Write decoding gets its own bounded pool: queries (default executor) cannot delay it.
    # Its calls hold the bytes they decompress against one global cap (pipeline/decoded_bytes.py).
    decoded_bytes = DecodedBytes(cfg.server.max_inflight_decoded_bytes)
    metrics.add_decoded_bytes(decoded_bytes)
    ingest_executor = HoldingPool(ThreadPoolExecutor(max_workers=max(1, cfg.server.ingest_workers),
                                                     thread_name_prefix="ingest-decode"), decoded_bytes)
    otlp_options = OtlpOptions(exponential_histograms=exponential_mode(cfg.server.otlp_exponential_histograms))
    otlp_route = make_otlp_metrics_route(ingestor.ingest, cfg.limits, tenant_of, on_export=_export_recorder(metrics),
                                         executor=ingest_executor, options=otlp_options)
    log_surfaces = LogIngestSurfaces(log_ingestor, tenant_of, metrics, executor=ingest_executor)
    syslog = _syslog_listener(cfg, log_ingestor, metrics, ingest_executor)
    # Prometheus' OTLP path (same handler).
    prom_otlp_route = make_otlp_metrics_route(ingestor.ingest, cfg.limits, tenant_of, path="/api/v1/otlp/v1/metrics",
                                              on_export=_export_recorder(metrics), executor=ingest_executor,
                                              options=otlp_options)
    scraper = ScrapeManager(scrape_configs, ingestor.ingest, cfg.tenancy.default_tenant)
    # Queries and heavy reads: their own bounded pool behind admission control (query.max_concurrency).
    writes = WritePriority(parse_duration_ms(cfg.query.write_pause_max) / 1000, preempt=cfg.query.write_preempt)
    query_governor = make_governor(cfg.query, make_query_executor(query_concurrency(cfg.query), writes))
    metrics.registry.register(GovernorCollector(query_governor))
    trace_surfaces = TraceSurfaces(span_ingestor, span_store, tenant_of, metrics, executor=ingest_executor,
                                   governor=query_governor)
    log_query = LogQueryApi(log_store, tenant_of, max_entries=cfg.logs.max_entries_limit_per_query,
                            max_query_length_ns=parse_duration_ms(cfg.logs.max_query_length) * 1_000_000,
                            governor=query_governor, timeout_s=parse_duration_ms(cfg.query.timeout) / 1000,
                            limits=LogQLLimits(max_lines=cfg.logs.max_query_lines, max_bytes=cfg.logs.max_query_bytes,
                                               max_series=cfg.logs.max_query_series,
                                               max_points=cfg.query.max_points_per_series,
                                               max_samples=cfg.query.max_samples),
                            served=served_hosts([parse_listen(x)[0] for x in (cfg.server.listen,
                                                                               cfg.server.otlp_http_listen) if x]
                                                + [socket.gethostname()], cfg.server.allowed_hosts))
    try:
        notifier = build_notifier(cfg, metrics)
        rules, tenant_rules = build_rules(cfg, store, ingestor, notifier.notify, log_store)
    except ConfigError:
        store.close()
        log_store.close()
        raise
    metrics.registry.register(RulesCollector(lambda: [rules, *tenant_rules.all_managers()]))
    services = Services(config=cfg, store=store, ingestor=ingestor, metrics=metrics,
                        tenant_of=tenant_of, readiness=readiness, extra_routes=[otlp_route, prom_otlp_route, *trace_surfaces.routes(), *make_rules_routes(rules, tenant_of, cfg.tenancy.default_tenant, tenant_rules), *make_rule_config_routes(tenant_rules, tenant_of),
                                                                                     *make_alertmanager_routes(notifier),
                                                                                     *make_admin_tsdb_routes(cfg, store, tenant_of),
                                                                                     *make_ui_routes(log_surfaces.es_root),
                                                                                     make_ws_metrics_route(store, cfg, tenant_of, query_governor),
                                                                                     *log_surfaces.routes(), *log_query.routes(),
                                                                                     *make_simple_ingest_routes(log_ingestor, ingestor.ingest, tenant_of, trace_surfaces),
                                                                                     *NativeLogsApi(log_query).routes()],
                        targets=scraper.api_targets, ingest_executor=ingest_executor,
                        query_governor=query_governor, exemplars=exemplar_store)
    try:
        health = build_health(cfg, store, ingestor, log_store, log_ingestor, tenant_of, metrics)
        hosts.append(health.registry)
    except ConfigError:
        store.close()
        log_store.close()
        raise
    services.extra_routes[:0] = health.routes  # ahead of catch-all routes
    try:
        auth = open_auth(cfg)
    except ConfigError:
        store.close()
        log_store.close()
        raise
    audit = AuditLog(auth.db)
    schedules = ScheduleStore(auth.db)
    notifier.schedule_source = schedules.all  # recurring silences, materialised by the notifier
    usage.bind(auth.db)
    usage.series_source = lambda: store.stats().active_series  # the day's peak, sampled at each usage flush
    signing = signing_verifier(cfg, auth)
    mfa_api = MfaApi(Mfa(auth.db), auth.sessions)
    auth.authenticator.needs_second_factor = mfa_api.needs_second_factor  # no basic-auth password alone
    services.extra_routes[:0] = [*make_auth_routes(auth.directory, auth.sessions, auth.authenticator,
                                                   second_factor=mfa_api.second_factor, sso=auth.oidc),
                                 *mfa_api.routes(),
                                 *make_admin_routes(auth.directory, auth.keys, auth.authenticator),
                                 *make_audit_api(audit), *make_signing_routes(signing.secrets, [signing]),
                                 *make_usage_routes(usage), *make_dashboard_routes(DashboardStore(auth.db)),
                                 *make_silence_schedule_routes(schedules, notifier)]
    audit_routes(services.extra_routes, audit, cfg.tenancy.default_tenant)  # api/audit_routes.py ACTIONS
    return Built(services=services, store=store, health=health, auth=auth,
                 otlp_route_app=Starlette(routes=[otlp_route, log_surfaces.otlp_route(), trace_surfaces.otlp_route()]),
                 scraper=scraper, rules=rules, notifier=notifier, tenant_rules=tenant_rules, log_store=log_store,
                 log_surfaces=log_surfaces, syslog=syslog, signing=signing, usage=usage,
                 span_store=span_store, trace_surfaces=trace_surfaces, writes=writes,
                 events_grpc=EventService(log_surfaces.events_grpc, log_query.query_events_grpc,
                                          make_tenant_of_metadata(cfg), log_surfaces.limits,
                                          narrow_of_call=_grpc_call_selector))


def _grpc_call_selector() -> tuple[Matcher, ...]:
    """The label selector of the gRPC call's principal (``auth/grpc_interceptor.py``, which loads
    grpcio: imported here, in a gRPC call, so a server without a gRPC listener never loads it)."""
    from clearsight.auth.grpc_interceptor import current_selector

    return exact_matchers(current_selector())


class _Server(uvicorn.Server):
    """uvicorn server whose signals are handled by ``run_server`` (several servers, one process)."""

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        return None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
        yield


def signing_verifier(cfg: Config, auth: AuthSystem) -> Verifier:
    return Verifier(SigningSecrets(auth.db), parse_duration_ms(cfg.auth.signature_window) / 1000)


def make_usage(cfg: Config) -> Usage:
    u = cfg.usage
    return Usage(None, quota_samples_per_day=u.quota_samples_per_day, quota_log_bytes_per_day=u.quota_log_bytes_per_day,
                 quota_spans_per_day=u.quota_spans_per_day,
                 prices=Prices(float(u.price_per_million_samples), float(u.price_per_gib_logs),
                               float(u.price_per_thousand_queries), float(u.price_per_million_spans)))


def rate_buckets(cfg: Config) -> tuple[TokenBuckets, TokenBuckets, TokenBuckets]:
    """Per client address, per credential, per organisation (auth/ratelimit.py)."""
    a = cfg.auth
    return (TokenBuckets(a.rate_limit_ip, a.rate_limit_ip_burst), TokenBuckets(a.rate_limit_key, a.rate_limit_key_burst),
            TokenBuckets(a.rate_limit_org, a.rate_limit_org_burst))


def _guarded(app: Any, cfg: Config, auth: AuthSystem | None = None, signing: Verifier | None = None,
             buckets: tuple[TokenBuckets, TokenBuckets, TokenBuckets] | None = None,
             usage: Usage | None = None, writes: WritePriority | None = None) -> Any:
    """``app`` behind the admission checks every listener applies (api/admission.py), then
    authentication and authorization (auth/middleware.py), then the body limits; with ``writes``,
    metrics writes in flight are counted for the query threads (api/writes_first.py). Plain reads
    take the same chain without the layers that act only on writes (api/read_lane.py)."""
    tenant_header = cfg.tenancy.tenant_header if cfg.tenancy.trust_tenant_header else None
    listens = [cfg.server.listen, cfg.server.otlp_http_listen]
    served = served_hosts([parse_listen(x)[0] for x in listens if x] + [socket.gethostname()],
                          cfg.server.allowed_hosts)
    bounded = BodyLimitMiddleware(app, max_request_bytes=cfg.limits.max_body_bytes,
                                  max_inflight_bytes=cfg.server.max_inflight_body_bytes,
                                  body_timeout=parse_duration_ms(cfg.server.body_read_timeout) / 1000)
    per_ip, per_key, per_org = buckets or rate_buckets(cfg)
    verifier = audit = None
    full_app = app
    if auth is not None:  # signature of signed ingestion (after the body limits), then idempotency keys
        verifier = signing or signing_verifier(cfg, auth)
        audit = AuditLog(auth.db)
        full_app = SignatureVerifier(IdempotencyMiddleware(
            app, IdempotencyStore(auth.db, parse_duration_ms(cfg.auth.idempotency_window))), verifier)

    def chain(limited: Any, reads: bool) -> Any:
        """The guard chain over ``limited`` (a body-limit layer); without the write-only layers
        when ``reads``."""
        inner: Any = limited
        if auth is not None and verifier is not None and audit is not None:
            audited = CrossOrgAuditMiddleware(limited, audit)
            checked = _counting(audited if reads else CsrfMiddleware(audited), usage)
            authed: Any = AuthMiddleware(PrincipalRateLimitMiddleware(checked, per_key, per_org),
                                         auth.authenticator, tenant_header=cfg.tenancy.tenant_header)
            inner = IpRateLimitMiddleware(authed if reads else SignedIngestMiddleware(authed, verifier), per_ip)
        return TraceMiddleware(SecurityHeadersMiddleware(
            AdmissionMiddleware(inner, tenant_header=tenant_header, served=served)))

    full: Any = chain(bounded.sibling(full_app), reads=False)
    if writes is not None:
        full = WritesFirstMiddleware(full, writes, WRITE_PATHS)
    return ReadLane(full, chain(bounded, reads=True))


def _counting(app: Any, usage: Usage | None) -> Any:
    return app if usage is None else QueryCountMiddleware(app, usage)


def _http_protocol(cfg: Config, lane: FastLane | None = None, spin: IdleSpin | None = None) -> type[Any]:
    base = header_deadline_protocol(parse_duration_ms(cfg.server.header_read_timeout) / 1000, lane, spin)
    if not cfg.server.tls_cert_file:
        return base
    ctx = mtls.server_context(cfg.server.tls_cert_file, cfg.server.tls_key_file, cfg.server.tls_client_ca_file)
    return mtls.tls_protocol(base, ctx, mtls.RevocationList(cfg.server.tls_crl_file) if cfg.server.tls_crl_file
                             else None)


def _uvicorn(app: Any, listen: str, cfg: Config, auth: AuthSystem | None = None,
             signing: Verifier | None = None,
             buckets: tuple[TokenBuckets, TokenBuckets, TokenBuckets] | None = None,
             usage: Usage | None = None, writes: WritePriority | None = None,
             metrics: SelfMetrics | None = None) -> _Server:
    host, port = parse_listen(listen)
    app = _guarded(app, cfg, auth, signing, buckets, usage, writes)
    # Small queries answered from the protocol's callbacks by the same guard objects (api/fast_lane.py)
    lane = FastLane.of(app) if cfg.server.fast_lane else None
    # After the lane's answers the loop polls a moment for the next request (api/idle_spin.py)
    spin = IdleSpin(cfg.server.idle_spin_us) if lane is not None and cfg.server.idle_spin_us > 0 else None
    if lane is not None and metrics is not None:
        metrics.registry.register(FastLaneCollector(lane))
        if spin is not None:
            metrics.registry.register(IdleSpinCollector(spin))
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=max(1, parse_duration_ms(cfg.server.shutdown_timeout) // 1000),
                            lifespan="off", server_header=False,
                            http=_http_protocol(cfg, lane, spin),
                            timeout_keep_alive=max(1, parse_duration_ms(cfg.server.keep_alive_timeout) // 1000),
                            limit_concurrency=cfg.server.max_connections or None)
    return _Server(config)


def _listen_free(listen: str, what: str, flag: str) -> bool:
    """False (with a warning) when ``listen`` cannot be bound, e.g. a local OTel Collector holds it."""
    import socket

    host, port = parse_listen(listen)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            sock.bind(infos[0][4])
    except OSError as e:
        log.warning("%s listener not started: cannot listen on %s: %s; the server runs without it (move it "
                    'with %s host:port, or "" to disable)', what, listen, e.strerror or e, flag,
                    extra={"listen": listen})
        return False
    return True


async def serve(cfg: Config, on_ready: Any = None) -> None:
    install_log_filter()  # request log lines carry the trace id (api/trace_context.py)
    if cfg.server.switch_interval_us:  # GIL hand-offs of the write path beside query threads
        sys.setswitchinterval(cfg.server.switch_interval_us / 1e6)
    built = build(cfg)
    release_free_memory()  # what opening the stores and the auth bootstrap freed (clearsight/heap.py)
    frozen = gc_policy.settle()  # start-up objects out of every later collection's walk (clearsight/gc_policy.py)
    log.debug("start-up objects frozen for the garbage collector", extra={"objects": frozen})
    if built.usage is not None:
        built.usage.start(parse_duration_ms(cfg.usage.flush_interval) / 1000)
    s = built.services
    app = create_app(s)
    if cfg.server.enable_lifecycle and built.rules is not None:  # ahead of the 403 stub of prometheus_status
        app.router.routes.insert(0, make_reload_route(built.rules))
    buckets = rate_buckets(cfg)  # shared by the HTTP listeners
    servers = [_uvicorn(app, cfg.server.listen, cfg, built.auth, built.signing, buckets, built.usage, built.writes,
                        s.metrics)]
    if cfg.server.otlp_http_listen and _listen_free(cfg.server.otlp_http_listen, "OTLP/HTTP", "--otlp-http-listen"):
        servers.append(_uvicorn(built.otlp_route_app, cfg.server.otlp_http_listen, cfg, built.auth, built.signing,
                                buckets, built.usage, built.writes))
    grpc_server = None
    if cfg.server.otlp_grpc_listen:
        # grpcio (~12 MiB of RSS) is loaded only here: with a gRPC listener configured.
        from clearsight.auth.grpc_idempotency import IdempotencyInterceptor
        from clearsight.auth.grpc_interceptor import AuthInterceptor

        try:
            grpc_server = start_otlp_grpc_server(
                s.ingestor.ingest_blocking, cfg.limits, cfg.server.otlp_grpc_listen, make_tenant_of_metadata(cfg),
                options=OtlpOptions(exponential_histograms=exponential_mode(cfg.server.otlp_exponential_histograms)),
                on_export=_export_recorder(s.metrics),
                credentials=mtls.grpc_credentials(cfg.server.tls_cert_file, cfg.server.tls_key_file,
                                                  cfg.server.tls_client_ca_file) if cfg.server.tls_cert_file else None,
                interceptors=([AuthInterceptor(built.auth.authenticator, cfg.tenancy.tenant_header)] if built.auth else [])
                + ([mtls.grpc_tls_interceptor(mtls.RevocationList(cfg.server.tls_crl_file) if cfg.server.tls_crl_file
                                              else None)] if cfg.server.tls_client_ca_file else [])
                + ([IdempotencyInterceptor(IdempotencyStore(built.auth.db, parse_duration_ms(cfg.auth.idempotency_window)),
                                           make_tenant_of_metadata(cfg))] if built.auth else []),  # last: org known
                logs_export=built.log_surfaces.otlp_logs_grpc if built.log_surfaces is not None else None,
                traces_export=built.trace_surfaces.otlp_traces_grpc if built.trace_surfaces is not None else None,
                extra_handlers=[built.events_grpc.handler()] if built.events_grpc is not None else [])
        except OSError as e:  # e.g. a local OTel Collector holds 4317: run without this listener
            log.warning("OTLP/gRPC listener not started: %s; the server runs without it (move it with "
                        '--otlp-grpc-listen host:port, or "" to disable)', e, extra={"listen": cfg.server.otlp_grpc_listen})
    scraper = built.scraper

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    # Syslog listens before the HTTP listeners: once /ready answers, every configured port is open.
    if built.syslog is not None:
        try:
            await built.syslog.start()
        except OSError as e:
            log.warning("syslog listeners not started: %s; the server runs without them (server.syslog_*_listen)",
                        e)
            await built.syslog.stop()
            built.syslog = None
    retention_task = asyncio.create_task(_retention_loop(built.store, cfg, built.log_store, built.span_store))
    rollup_task = asyncio.create_task(_rollup_loop(built.store, cfg))
    tasks = [asyncio.create_task(srv.serve()) for srv in servers]
    # Wait until every listener is up, then announce the URL.
    while not all(srv.started for srv in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.02)
    if not all(srv.started for srv in servers):
        for srv in servers:
            srv.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        retention_task.cancel()
        rollup_task.cancel()
        if grpc_server is not None:
            grpc_server.stop(None)
        if built.syslog is not None:
            await built.syslog.stop()
        built.store.close()
        if built.log_store is not None:
            built.log_store.close()
        raise SystemExit("could not start the HTTP listeners (address in use?); see the log above")
    await scraper.start()
    if built.health is not None:
        for task in built.health.tasks:
            task.start()
    if built.notifier is not None:
        await built.notifier.start()
    if built.rules is not None:
        await built.rules.start()
        if built.tenant_rules is not None:
            await built.tenant_rules.start()
        rules_mgr = built.rules
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(
                _reload_on_sighup(rules_mgr, built.notifier, cfg)))
    host, port = parse_listen(cfg.server.listen)
    url = f"http://{host}:{port}"
    log.info("clearsight ready", extra={"url": url, "data_dir": cfg.storage.data_dir})
    print(f"Clearsight is running at {url}  (data in {cfg.storage.data_dir}; Ctrl-C to stop)", flush=True)
    if on_ready is not None:
        on_ready(url)

    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down")
    for srv in servers:
        srv.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    await scraper.stop()
    if built.syslog is not None:
        await built.syslog.stop()  # stores what is queued while the log store is still open
    if built.health is not None:
        for task in built.health.tasks:
            await task.stop()
        await loop.run_in_executor(None, built.health.registry.save_if_dirty)
        await loop.run_in_executor(None, built.health.history.save_if_dirty)
    if built.rules is not None:
        await built.rules.stop()
        if built.tenant_rules is not None:
            await built.tenant_rules.stop()
    if built.notifier is not None:
        await built.notifier.stop()
    if s.ingest_executor is not None:
        s.ingest_executor.shutdown(wait=False)
    if s.query_governor is not None:
        s.query_governor.executor.shutdown(wait=False, cancel_futures=True)
    if grpc_server is not None:
        await loop.run_in_executor(None, lambda: grpc_server.stop(5).wait())
    retention_task.cancel()
    rollup_task.cancel()
    stop_wait.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await retention_task
    with contextlib.suppress(asyncio.CancelledError):
        await rollup_task
    await loop.run_in_executor(None, built.store.close)
    if s.exemplars is not None:
        await loop.run_in_executor(None, s.exemplars.close)
    if built.span_store is not None:
        await loop.run_in_executor(None, built.span_store.close)  # before the log store: its file and writer
    if built.log_store is not None:
        await loop.run_in_executor(None, built.log_store.close)
    if built.usage is not None:
        await loop.run_in_executor(None, built.usage.close)  # the last counts, before the database closes
    if built.auth is not None:
        await loop.run_in_executor(None, built.auth.close)
    log.info("stopped")


async def _rollup_loop(store: MetricsStore, cfg: Config,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Rollup passes of the embedded store every ``storage.rollup_interval`` (store/embedded/rollups.py),
    the first one an interval after start: a pass catching up on hours of data (after downtime or a
    backfill) holds the writer thread and the GIL for seconds, which would land on the first
    queries after a restart; reads do without rollups outside their coverage."""
    if not (isinstance(store, EmbeddedMetricsStore) and cfg.storage.rollups):
        return
    interval = parse_duration_ms(cfg.storage.rollup_interval) / 1000
    loop = asyncio.get_running_loop()
    while True:
        await sleep(interval)
        try:
            await loop.run_in_executor(None, store.run_rollups, int(time.time() * 1000))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("rollup pass failed")


async def _retention_loop(store: MetricsStore, cfg: Config, log_store: EmbeddedLogStore | None = None,
                          span_store: EmbeddedSpanStore | None = None) -> None:
    interval = parse_duration_ms(cfg.storage.retention_check_interval) / 1000
    loop = asyncio.get_running_loop()
    while True:
        try:
            deleted = await loop.run_in_executor(None, store.apply_retention, int(time.time() * 1000))
            if deleted:
                log.info("retention deleted samples", extra={"samples": deleted})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention pass failed")
        if log_store is not None:
            try:
                removed = await loop.run_in_executor(None, log_store.apply_retention, time.time_ns())
                if removed:
                    log.info("log retention dropped entries", extra={"entries": removed})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log retention pass failed")
        if span_store is not None:
            try:
                removed = await loop.run_in_executor(None, span_store.apply_retention, time.time_ns())
                if removed:
                    log.info("trace retention dropped spans", extra={"spans": removed})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("trace retention pass failed")
        await asyncio.sleep(interval)


def run_server(cfg: Config) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(cfg))
    else:
        uvloop.run(serve(cfg))
