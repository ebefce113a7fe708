"""Server configuration: one YAML file, then ``CLEARSIGHT_*`` environment overrides, then CLI flags.

Every key is documented in docs/configuration.md. A bad value fails at start with the file, the key
path and the reason (``ConfigError``). Defaults are safe: listen on 127.0.0.1 only, bounded queues
and limits, a single explicit default tenant.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clearsight.pipeline.limits import WriteLimits
from clearsight.pipeline.log_settings import parse_log_pipeline
from clearsight.pipeline.series_budget import AUTO as SERIES_AUTO
from clearsight.pipeline.tenant import tenant_error


class ConfigError(Exception):
    """A configuration problem: ``where`` is the file (or env/flag) and key path."""


_DURATION_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNITS_MS = (365 * 86400_000, 7 * 86400_000, 86400_000, 3600_000, 60_000, 1000, 1)


def parse_duration_ms(text: str) -> int:
    """Prometheus-style duration (``15d``, ``1h30m``, ``500ms``) to milliseconds."""
    m = _DURATION_RE.match(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        raise ValueError(f"invalid duration {text!r} (expected e.g. 30s, 5m, 15d)")
    return sum(int(g) * u for g, u in zip(m.groups(), _UNITS_MS, strict=True) if g)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise ValueError(f"invalid listen address {text!r} (expected host:port)")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


@dataclass
class ServerConfig:
    listen: str = "127.0.0.1:9800"
    otlp_http_listen: str = "127.0.0.1:4318"  # "" disables the extra listener
    otlp_grpc_listen: str = "127.0.0.1:4317"  # "" disables OTLP/gRPC
    shutdown_timeout: str = "30s"
    cors_origins: str = ""  # comma-separated origins allowed by CORS ("*" for any); "" = no CORS headers
    enable_admin_api: bool = False  # Prometheus' --web.enable-admin-api (delete_series, clean_tombstones)
    enable_lifecycle: bool = False  # Prometheus' --web.enable-lifecycle: POST /-/reload reloads the rule files
    ingest_workers: int = 4  # threads decoding write requests (remote-write, OTLP/HTTP)
    # Remote-write 1.0 bodies of at most this many bytes decompressed are decoded on the event loop
    # (cheaper than two thread hand-offs); larger ones on the ingest_workers pool. 0: always the pool.
    inline_decode_max_bytes: int = 65536
    # The interpreter's switch interval (sys.setswitchinterval) for the server process, in
    # microseconds; 0 = Python's default (5000). docs/promql.md, "Queries beside ingest".
    switch_interval_us: int = 200
    otlp_exponential_histograms: str = "native"  # OTLP exponential histograms: native | classic | drop
    # Host names served besides localhost, 127.0.0.1, ::1, the listen hosts and IP literals
    # (comma-separated; "*" serves any Host). Other Host headers get 421 (DNS rebinding).
    allowed_hosts: str = ""
    header_read_timeout: str = "10s"  # request line + headers must arrive within this (slowloris)
    body_read_timeout: str = "60s"  # the whole body must arrive within this, else 408
    keep_alive_timeout: str = "15s"  # idle keep-alive connections are closed after this
    max_connections: int = 1000  # per HTTP listener; beyond it requests get 503 (0: unlimited)
    max_inflight_body_bytes: int = 256 * 1024 * 1024  # request bodies held at once; beyond: 503
    # decompressed bytes held at once by the write requests being decoded; beyond: 503 (0: unbounded)
    max_inflight_decoded_bytes: int = 256 * 1024 * 1024
    # Small GET queries answered from the HTTP protocol's callbacks, same guards (api/fast_lane.py)
    fast_lane: bool = True
    # After a fast-lane answer the event loop polls for the next request this long (GIL released)
    # before it sleeps: a wake-up saved per request when one follows (api/idle_spin.py); 0: never.
    idle_spin_us: int = 50
    tls_cert_file: str = ""  # HTTPS (and TLS on OTLP/gRPC) with this certificate ("" = plain HTTP)
    tls_key_file: str = ""
    tls_client_ca_file: str = ""  # mutual TLS: clients must present a certificate issued by this CA
    tls_crl_file: str = ""  # revoked client certificates (clearsight certs revoke), re-read when it changes
    # Syslog receivers (RFC 5424/3164; api/syslog_listener.py), off unless set: the transport has no credentials.
    syslog_udp_listen: str = ""
    syslog_tcp_listen: str = ""  # RFC 6587 octet counting or newline framing
    syslog_tls_listen: str = ""  # RFC 5425 over TLS with tls_cert_file/tls_key_file


@dataclass
class StorageConfig:
    data_dir: str = "./data"
    retention: str = "15d"
    retention_size: str = "0"  # payload of the chunk partitions kept at most (e.g. 50GB); 0 = unbounded
    out_of_order_window: str = "1h"
    write_queue_batches: int = 256
    retention_check_interval: str = "10m"
    # Memory bounds of the embedded store (docs/storage.md "Memory").
    duckdb_memory_limit: str = "192MB"  # DuckDB's buffer manager; spills to metrics.duckdb.tmp/
    duckdb_threads: int = 2
    decoded_chunk_cache_samples: int = 2_000_000  # ~17 bytes each
    chunk_bytes_cache_bytes: int = 32 << 20  # compressed chunks kept in memory
    selection_cache_ids: int = 1 << 20  # series ids of remembered selections, 4 bytes each
    label_order_cache_ids: int = 500_000  # series ids whose label order is remembered, ~16 bytes each
    overwrite_window_samples: int = 2_000_000  # decoded chunk samples re-sends are checked against, 16 bytes each
    head_log_segment_bytes: int = 4 << 20  # preallocated segment files of the head log (metrics.headlog/)
    max_exemplars: int = 100_000  # exemplar ring (Prometheus' storage.exemplars.max-exemplars); 0 = none
    # Rollups (docs/storage.md "Rollups"): 5-minute and 1-hour buckets computed in the background.
    rollups: bool = True
    rollup_retention_5m: str = "90d"
    rollup_retention_1h: str = "365d"
    rollup_interval: str = "5m"  # how often a rollup pass runs


@dataclass
class QueryConfig:
    timeout: str = "2m"
    max_samples: int = 50_000_000
    lookback_delta: str = "5m"
    max_points_per_series: int = 11_000
    # Aggregations of a selection estimated above this many samples fold it batch of series by batch
    # (query/promql/streamed.py); 0 = always materialise.
    stream_batch_samples: int = 1_000_000
    slow_query_log_threshold: str = ""  # log queries slower than this duration; "" = off
    max_concurrency: int = 0  # queries/heavy reads running at once; 0 = the number of CPUs
    max_queue: int = 100  # reads waiting for a slot (fair per tenant); beyond it 503 + Retry-After
    max_queue_duration: str = "10s"  # longest wait for a slot before 503 + Retry-After
    prepared_cache_entries: int = 2048  # parsed query texts kept (query/promql/prepared.py)
    # Query threads pause at their checkpoints while a write request is in flight, at most this
    # long at a time (query/write_priority.py); "0s" = never.
    write_pause_max: str = "50ms"
    # ... and from the write's start at their next call in code that holds no lock a write needs,
    # not only at their next checkpoint (query/_preempt.pyx); false = checkpoints only.
    write_preempt: bool = True


@dataclass
class TenancyConfig:
    default_tenant: str = "default"
    # When true, the X-Scope-OrgID header selects the tenant (only behind a trusted proxy until
    # authentication lands). Off by default: every request uses ``default_tenant``.
    trust_tenant_header: bool = False
    tenant_header: str = "X-Scope-OrgID"


@dataclass
class GlobalConfig:
    scrape_interval: str = "1m"
    scrape_timeout: str = "10s"


@dataclass
class LogConfig:
    level: str = "info"
    format: str = "json"  # json | text
    access_log: bool = False  # one JSON line per HTTP request (logger clearsight.access)


@dataclass
class RulesConfig:
    files: str = ""  # comma-separated globs of Prometheus-format rule files (relative to the config file)
    evaluation_interval: str = "1m"  # groups without their own interval run this often
    resend_delay: str = "1m"  # firing alerts are re-sent to the notifier at most this often
    external_url: str = ""  # base of generatorURL in alerts ("" = http://<server.listen>)


@dataclass
class AlertingConfig:
    config_file: str = ""  # Alertmanager-format notification config (relative to the config file); "" = none


@dataclass
class LogsConfig:
    """The log store and the log ingest/query endpoints (docs/logs.md)."""

    retention: str = "7d"  # whole UTC days older than this are dropped
    max_streams_per_tenant: int = 100_000  # 0 = unlimited
    reject_older_than: str = "7d"  # entries older than now - this are refused (400)
    creation_grace_period: str = "10m"  # entries newer than now + this are refused (400)
    write_queue_batches: int = 256
    duckdb_memory_limit: str = "128MB"
    max_entries_limit_per_query: int = 5000  # largest `limit` a log query may ask for
    max_query_length: str = "721h"  # longest time range of a log query
    max_query_lines: int = 20_000_000  # log lines one LogQL query may read from the store
    max_query_bytes: int = 4_294_967_296  # log line bytes one LogQL query may read
    max_query_series: int = 500  # series of one LogQL metric query (Loki's max_query_series)
    syslog_tenant: str = ""  # the organisation syslog messages are stored for ("" = tenancy.default_tenant)
    # Pipeline steps (PII scrubbing, dedup, rate limits) for every tenant, and per-tenant overrides
    # (logs.tenants.<name>): pipeline/log_settings.py parses both.
    pipeline: dict[str, Any] = field(default_factory=dict)
    tenants: dict[str, Any] = field(default_factory=dict)
    pii_secret: str = ""  # HMAC key of the PII hashes ("" = generated once into <data_dir>/logs_pii.key)


@dataclass
class AuthConfig:
    """Identity and access (docs/security.md "Access")."""

    state_url: str = ""  # "" = SQLite file <data_dir>/auth.db; or postgresql://user@host:port/db
    anonymous: str = "loopback"  # loopback | off (credential-less requests from 127.0.0.1/::1 act as anonymous)
    anonymous_role: str = "editor"  # role of the anonymous principal
    key_cache_ttl: str = "10s"  # verified API keys/sessions are cached this long (revocation delay)
    session_ttl: str = "7d"  # lifetime of a refresh token (each refresh hands out a new one: a sliding sign-in)
    access_token_ttl: str = "5m"  # lifetime of a session's JWT access token
    refresh_reuse_grace: str = "10s"  # a used refresh token presented again later than this revokes its sign-in
    oidc_providers: dict[str, Any] = field(default_factory=dict)  # single sign-on: name -> settings (auth/oidc.py)
    signature_window: str = "5m"  # signed ingestion: accepted clock difference of x-timestamp (replay window)
    idempotency_window: str = "24h"  # how long x-idempotency-key answers are remembered
    rate_limit_ip: int = 0  # requests per second per client address (0 = no limit)
    rate_limit_ip_burst: int = 100
    rate_limit_key: int = 0  # requests per second per API key, session user or signing key (0 = no limit)
    rate_limit_key_burst: int = 100
    rate_limit_org: int = 0  # requests per second per organisation (0 = no limit)
    rate_limit_org_burst: int = 1000


@dataclass
class ResourcesConfig:
    """The resource registry (docs/health.md)."""

    heartbeat_interval: str = "30s"  # how often agents heartbeat (the agent's heartbeat.interval)
    stale_after_missed: int = 3  # missed intervals before a resource is stale
    down_after_missed: int = 10  # missed intervals before it is down
    discovery_interval: str = "30s"  # passive discovery from ingested metrics
    metrics_interval: str = "1m"  # expected time between samples of a resource discovered from metrics
    max_per_tenant: int = 10_000
    forget_after: str = "7d"  # resources not seen this long are dropped


@dataclass
class HealthConfig:
    rules_file: str = ""  # YAML health rules (relative to the config file); "" = the built-in host rules
    evaluation_interval: str = "30s"
    security_window: str = "15m"  # Falco/security events raise a resource's status this long
    history_max_entries: int = 1000  # status transitions kept per resource


@dataclass
class UsageConfig:
    """Usage, cost estimates and quotas per organisation (docs/security.md "Usage and quotas")."""

    flush_interval: str = "30s"  # how often in-memory counts are written to the state database
    quota_samples_per_day: int = 0  # metric samples per organisation per UTC day (0 = no quota)
    quota_log_bytes_per_day: int = 0  # log line bytes per organisation per UTC day (0 = no quota)
    quota_spans_per_day: int = 0  # trace spans per organisation per UTC day (0 = no quota)
    price_per_million_samples: str = "0"  # unit prices for the cost estimate of GET /api/v1/usage
    price_per_gib_logs: str = "0"
    price_per_thousand_queries: str = "0"
    price_per_million_spans: str = "0"


@dataclass
class CorrelationConfig:
    enabled: bool = True
    window: str = "5m"  # an anomaly this close to a change or security event is correlated with it
    baseline: str = "1h"  # trailing window of the median/MAD baseline
    step: str = "15s"  # resolution of the metric reads
    anomaly_threshold: str = "4"  # robust z-score (|x - median| / (1.4826 MAD)) that counts as anomalous
    lookback: str = "1h"  # events older than this (past their window) are not examined
    interval: str = "30s"  # how often new events are examined
    seasonality: str = "1d"  # an anomaly also seen this long earlier is a pattern, not a correlation ("" = off)


@dataclass
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    limits: WriteLimits = field(default_factory=WriteLimits)
    query: QueryConfig = field(default_factory=QueryConfig)
    tenancy: TenancyConfig = field(default_factory=TenancyConfig)
    global_: GlobalConfig = field(default_factory=GlobalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    alerting: AlertingConfig = field(default_factory=AlertingConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)
    usage: UsageConfig = field(default_factory=UsageConfig)
    scrape_configs: list[dict[str, Any]] = field(default_factory=list)
    source: str = "<defaults>"

    # derived, validated values
    @property
    def retention_ms(self) -> int:
        return parse_duration_ms(self.storage.retention)

    @property
    def retention_size_bytes(self) -> int:
        from clearsight.scrape.config import parse_size  # that module imports this one

        return parse_size(self.storage.retention_size, f"{self.source}: storage.retention_size")

    @property
    def out_of_order_window_ms(self) -> int:
        return parse_duration_ms(self.storage.out_of_order_window)


_SECTIONS: dict[str, str] = {
    "server": "server", "storage": "storage", "limits": "limits", "query": "query",
    "tenancy": "tenancy", "global": "global_", "log": "log", "rules": "rules", "alerting": "alerting",
    "logs": "logs", "auth": "auth",
    "resources": "resources", "health": "health", "correlation": "correlation", "usage": "usage",
}
_DURATION_KEYS = {
    ("server", "shutdown_timeout"), ("storage", "retention"), ("storage", "out_of_order_window"),
    ("storage", "retention_check_interval"), ("storage", "rollup_retention_5m"), ("storage", "rollup_retention_1h"),
    ("storage", "rollup_interval"), ("query", "timeout"), ("query", "lookback_delta"),
    ("query", "max_queue_duration"), ("query", "write_pause_max"),
    ("global", "scrape_interval"), ("global", "scrape_timeout"),
}
_DURATION_KEYS |= {("server", "header_read_timeout"), ("server", "body_read_timeout"), ("server", "keep_alive_timeout")}
_DURATION_KEYS |= {("rules", "evaluation_interval"), ("rules", "resend_delay")}
_DURATION_KEYS |= {("logs", "retention"), ("logs", "reject_older_than"), ("logs", "creation_grace_period"),
                   ("logs", "max_query_length")}
_DURATION_KEYS |= {("usage", "flush_interval")}
_DURATION_KEYS |= {("auth", "key_cache_ttl"), ("auth", "session_ttl"), ("auth", "signature_window"),
                   ("auth", "idempotency_window"), ("auth", "access_token_ttl"), ("auth", "refresh_reuse_grace")}
_DURATION_KEYS |= {("resources", "heartbeat_interval"), ("resources", "discovery_interval"), ("resources", "metrics_interval"),
                   ("resources", "forget_after"), ("health", "evaluation_interval"), ("health", "security_window"),
                   ("correlation", "window"), ("correlation", "baseline"), ("correlation", "step"),
                   ("correlation", "lookback"), ("correlation", "interval")}
_LISTEN_KEYS = {("server", "listen"), ("server", "otlp_http_listen"), ("server", "otlp_grpc_listen")}


def _coerce(where: str, current: Any, value: Any) -> Any:
    """Converts ``value`` to the type of the default ``current`` or raises ConfigError."""
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected a boolean, got {value!r}")
    if isinstance(current, int):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            out = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
        if out < 0:
            raise ConfigError(f"{where}: must not be negative, got {out}")
        return out
    if isinstance(current, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if isinstance(current, str):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{where}: unsupported value {value!r}")


def _apply_section(where: str, section_obj: Any, values: Mapping[str, Any], section: str) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(section_obj)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
        if section == "auth" and key == "anonymous" and value is False:
            value = "off"  # YAML reads an unquoted `off` as false
        if (section, key) == ("limits", "max_series_total") and isinstance(value, str) and value.strip() == "auto":
            changes[key] = SERIES_AUTO  # sized from the host's memory at start (pipeline/series_budget.py)
            continue
        changes[key] = _coerce(f"{where}.{key}", getattr(section_obj, key), value)
    return dataclasses.replace(section_obj, **changes)


def _validate(cfg: Config) -> None:
    for section, key in _DURATION_KEYS:
        attr = _SECTIONS[section]
        value = getattr(getattr(cfg, attr), key)
        try:
            parse_duration_ms(value)
        except ValueError as e:
            raise ConfigError(f"{cfg.source}: {section}.{key}: {e}") from None
    for section, key in _LISTEN_KEYS:
        value = getattr(cfg.server, key)
        if value == "" and key != "listen":
            continue
        try:
            parse_listen(value)
        except ValueError as e:
            raise ConfigError(f"{cfg.source}: {section}.{key}: {e}") from None
    if cfg.log.level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"{cfg.source}: log.level: must be debug, info, warning or error")
    if cfg.log.format not in ("json", "text"):
        raise ConfigError(f"{cfg.source}: log.format: must be json or text")
    tenant_err = tenant_error(cfg.tenancy.default_tenant)
    if tenant_err is not None:
        raise ConfigError(f"{cfg.source}: tenancy.default_tenant: {tenant_err}")
    if cfg.query.slow_query_log_threshold:
        try:
            parse_duration_ms(cfg.query.slow_query_log_threshold)
        except ValueError as e:
            raise ConfigError(f"{cfg.source}: query.slow_query_log_threshold: {e}") from None
    if cfg.server.otlp_exponential_histograms not in ("native", "classic", "drop"):
        raise ConfigError(f"{cfg.source}: server.otlp_exponential_histograms: must be native, classic or drop, "
                          f"got {cfg.server.otlp_exponential_histograms!r}")
    for origin in filter(None, (o.strip() for o in cfg.server.cors_origins.split(","))):
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ConfigError(f"{cfg.source}: server.cors_origins: invalid origin {origin!r} "
                              "(expected \"*\" or scheme://host[:port], comma-separated)")
    if parse_duration_ms(cfg.rules.evaluation_interval) <= 0:
        raise ConfigError(f"{cfg.source}: rules.evaluation_interval: must be positive")
    if cfg.storage.write_queue_batches < 1:
        raise ConfigError(f"{cfg.source}: storage.write_queue_batches: must be at least 1")
    if not (parse_duration_ms(cfg.storage.rollup_retention_5m) >= 3_600_000
            and parse_duration_ms(cfg.storage.rollup_retention_1h) >= 86_400_000):
        raise ConfigError(f"{cfg.source}: storage.rollup_retention_5m / rollup_retention_1h: at least 1h / 1d "
                          "(a whole block of each)")
    if parse_duration_ms(cfg.storage.rollup_interval) <= 0:
        raise ConfigError(f"{cfg.source}: storage.rollup_interval: must be positive")
    if not 65_536 <= cfg.storage.head_log_segment_bytes <= 1 << 30:
        raise ConfigError(f"{cfg.source}: storage.head_log_segment_bytes: must be between 65536 and 1073741824 "
                          f"(got {cfg.storage.head_log_segment_bytes})")
    if cfg.storage.max_exemplars < 0:
        raise ConfigError(f"{cfg.source}: storage.max_exemplars: must be 0 (none) or more")
    if cfg.server.inline_decode_max_bytes < 0:
        raise ConfigError(f"{cfg.source}: server.inline_decode_max_bytes: must be 0 (never) or more")
    if cfg.logs.write_queue_batches < 1 or cfg.logs.max_entries_limit_per_query < 1:
        raise ConfigError(f"{cfg.source}: logs.write_queue_batches and logs.max_entries_limit_per_query: "
                          "must be at least 1")
    if parse_duration_ms(cfg.logs.retention) <= 0 or parse_duration_ms(cfg.logs.max_query_length) <= 0:
        raise ConfigError(f"{cfg.source}: logs.retention and logs.max_query_length: must be positive")
    if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", cfg.logs.duckdb_memory_limit):
        raise ConfigError(f"{cfg.source}: logs.duckdb_memory_limit: expected a size such as 128MB, "
                          f"got {cfg.logs.duckdb_memory_limit!r}")
    for key in ("header_read_timeout", "body_read_timeout", "keep_alive_timeout"):
        if parse_duration_ms(getattr(cfg.server, key)) <= 0:
            raise ConfigError(f"{cfg.source}: server.{key}: must be longer than 0s")
    if bool(cfg.server.tls_cert_file) != bool(cfg.server.tls_key_file):
        raise ConfigError(f"{cfg.source}: server.tls_cert_file and server.tls_key_file go together")
    if cfg.server.syslog_tls_listen and not cfg.server.tls_cert_file:
        raise ConfigError(f"{cfg.source}: server.syslog_tls_listen: needs server.tls_cert_file and tls_key_file")
    for key in ("syslog_udp_listen", "syslog_tcp_listen", "syslog_tls_listen"):
        value = getattr(cfg.server, key)
        if value:
            try:
                parse_listen(value)
            except ValueError as e:
                raise ConfigError(f"{cfg.source}: server.{key}: {e}") from None
    try:
        parse_log_pipeline(cfg.logs.pipeline, cfg.logs.tenants)
    except ValueError as e:
        raise ConfigError(f"{cfg.source}: logs.{e}") from None
    if cfg.logs.syslog_tenant:
        err = tenant_error(cfg.logs.syslog_tenant)
        if err:
            raise ConfigError(f"{cfg.source}: logs.syslog_tenant: {err}")
    if (cfg.server.tls_client_ca_file or cfg.server.tls_crl_file) and not cfg.server.tls_cert_file:
        raise ConfigError(f"{cfg.source}: server.tls_client_ca_file and tls_crl_file need server.tls_cert_file")
    if 0 < cfg.server.max_inflight_decoded_bytes < cfg.limits.max_decompressed_bytes:
        raise ConfigError(f"{cfg.source}: server.max_inflight_decoded_bytes: must be 0 (unbounded) or at least "
                          f"limits.max_decompressed_bytes ({cfg.limits.max_decompressed_bytes}), got "
                          f"{cfg.server.max_inflight_decoded_bytes}")
    if cfg.server.max_inflight_body_bytes < cfg.limits.max_body_bytes:
        raise ConfigError(f"{cfg.source}: server.max_inflight_body_bytes: must be at least limits.max_body_bytes "
                          f"({cfg.limits.max_body_bytes}), or a request of the maximum size could never be taken")
    if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", cfg.storage.duckdb_memory_limit):
        raise ConfigError(f"{cfg.source}: storage.duckdb_memory_limit: expected a size such as 192MB or 1GiB, "
                          f"got {cfg.storage.duckdb_memory_limit!r}")
    cfg.retention_size_bytes  # noqa: B018  (raises ConfigError when it is not a size)
    if cfg.storage.duckdb_threads < 1:
        raise ConfigError(f"{cfg.source}: storage.duckdb_threads: must be at least 1")
    for key in ("price_per_million_samples", "price_per_gib_logs", "price_per_thousand_queries",
                "price_per_million_spans"):
        try:
            price = float(getattr(cfg.usage, key))
        except ValueError:
            price = -1.0
        if not price >= 0 or price == float("inf"):
            raise ConfigError(f"{cfg.source}: usage.{key}: expected a non-negative number, got {getattr(cfg.usage, key)!r}")
    if cfg.auth.anonymous not in ("loopback", "off"):
        raise ConfigError(f"{cfg.source}: auth.anonymous: must be loopback or off, got {cfg.auth.anonymous!r} "
                          "(there is no 'any': unauthenticated access from the network would let anyone "
                          "read and write every signal; create an API key instead)")
    if cfg.auth.state_url and not re.match(r"^(sqlite|postgresql)(\+\w+)?://", cfg.auth.state_url):
        raise ConfigError(f"{cfg.source}: auth.state_url: expected sqlite:///path or postgresql://..., "
                          f"got a URL of another scheme")
    _validate_health(cfg)


def _validate_health(cfg: Config) -> None:
    for section, key in sorted(_DURATION_KEYS):
        if section in ("resources", "health", "correlation") and parse_duration_ms(getattr(getattr(cfg, section), key)) <= 0:
            raise ConfigError(f"{cfg.source}: {section}.{key}: must be longer than 0s")
    r = cfg.resources
    if not 1 <= r.stale_after_missed < r.down_after_missed:
        raise ConfigError(f"{cfg.source}: resources.stale_after_missed and down_after_missed: need "
                          f"1 <= stale_after_missed < down_after_missed, got {r.stale_after_missed} and {r.down_after_missed}")
    if r.max_per_tenant < 1 or cfg.health.history_max_entries < 1:
        raise ConfigError(f"{cfg.source}: resources.max_per_tenant and health.history_max_entries: must be at least 1")
    try:
        threshold = float(cfg.correlation.anomaly_threshold)
    except ValueError:
        threshold = float("nan")
    if not 0 < threshold < float("inf"):
        raise ConfigError(f"{cfg.source}: correlation.anomaly_threshold: expected a positive number, "
                          f"got {cfg.correlation.anomaly_threshold!r}")
    if cfg.correlation.seasonality:
        try:
            if parse_duration_ms(cfg.correlation.seasonality) <= 0:
                raise ValueError("must be longer than 0s")
        except ValueError as e:
            raise ConfigError(f'{cfg.source}: correlation.seasonality: {e} ("" turns it off)') from None
    if parse_duration_ms(cfg.correlation.step) > parse_duration_ms(cfg.correlation.window):
        raise ConfigError(f"{cfg.source}: correlation.step: must not be longer than correlation.window")


# Environment variables that are not settings: secrets read once at first start (auth/bootstrap.py),
# and the build's and the importer's switches for compiled Python (setup.py, clearsight/_compiled.py).
_NOT_SETTINGS = ("CLEARSIGHT_SHARED", "CLEARSIGHT_CONFIG", "CLEARSIGHT_AUTH_ADMIN_PASSWORD",
                 "CLEARSIGHT_AUTH_BOOTSTRAP_API_KEY", "CLEARSIGHT_PURE_PYTHON", "CLEARSIGHT_COMPILED_PYTHON",
                 "CLEARSIGHT_NO_NATIVE")


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Loads defaults <- YAML file <- ``CLEARSIGHT_SECTION_KEY`` env vars <- ``overrides``.

    ``overrides`` uses dotted keys (``{"storage.data_dir": "./x"}``) and comes from CLI flags.
    """
    cfg = Config()
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"{p}: cannot read config file: {e.strerror}") from None
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML: {e}") from None
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{p}: the top level must be a mapping")
        cfg.source = str(p)
        for key, value in doc.items():
            if key == "scrape_configs":
                if not isinstance(value, list):
                    raise ConfigError(f"{p}: scrape_configs: expected a list")
                cfg.scrape_configs = list(value)
                continue
            if key not in _SECTIONS:
                raise ConfigError(f"{p}: {key}: unknown section (known: {', '.join(sorted(_SECTIONS))}, scrape_configs)")
            attr = _SECTIONS[key]
            setattr(cfg, attr, _apply_section(f"{p}: {key}", getattr(cfg, attr), value or {}, key))
    environ = os.environ if env is None else env
    for name, value in environ.items():
        if not name.startswith("CLEARSIGHT_") or name in _NOT_SETTINGS:
            continue
        rest = name[len("CLEARSIGHT_"):].lower()
        section, _, key = rest.partition("_")
        if section not in _SECTIONS or not key:
            raise ConfigError(f"environment {name}: unknown setting (expected CLEARSIGHT_<SECTION>_<KEY>)")
        attr = _SECTIONS[section]
        setattr(cfg, attr, _apply_section(f"environment {name}: {section}", getattr(cfg, attr), {key: value}, section))
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        attr = _SECTIONS[section]
        setattr(cfg, attr, _apply_section(f"flag --{key.replace('_', '-')}", getattr(cfg, attr), {key: value}, section))
    _validate(cfg)
    return cfg
