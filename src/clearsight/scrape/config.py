"""The Prometheus ``scrape_configs`` subset Clearsight understands.

``parse_scrape_configs(obj, where)`` takes the (YAML-decoded) value of ``scrape_configs`` and returns
validated, frozen ``ScrapeConfig`` objects with Prometheus' defaults applied. Errors are
``ConfigError("<where>: scrape_configs[2].relabel_configs[0].action: unknown action 'foo'")``.
Fields Prometheus knows but Clearsight does not implement are rejected by name (never silently
ignored); see docs/scraping.md for the list.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from clearsight.config import ConfigError as BaseConfigError
from clearsight.scrape.relabel import (
    DEFAULT_REGEX,
    DEFAULT_REPLACEMENT,
    DEFAULT_SEPARATOR,
    RelabelConfig,
    compile_regex,
    is_valid_label_name,
    validate,
)

DEFAULT_SCRAPE_INTERVAL = 60.0
DEFAULT_SCRAPE_TIMEOUT = 10.0
DEFAULT_FILE_SD_REFRESH = 300.0


class ConfigError(BaseConfigError, ValueError):
    """An invalid configuration; the message names the file/source and the key path.

    A subclass of the server's ``clearsight.config.ConfigError`` (one error path at start-up).
    """


_DURATION_RE = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?(?:([0-9]+)ms)?\Z"
)
_DURATION_UNITS = (365 * 86400.0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)
_SIZE_RE = re.compile(r"([0-9]+)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\Z")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 1024,
    "MB": 1024**2,
    "GB": 1024**3,
    "TB": 1024**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}
_FILE_SD_NAME_RE = re.compile(r"[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)\Z")

# Keys of a Prometheus scrape config that Clearsight does not implement (rejected with a clear error).
_UNSUPPORTED_SCRAPE_KEYS = {
    "oauth2",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "enable_http2",
    "target_limit",
    "native_histogram_bucket_limit",
    "native_histogram_min_bucket_factor",
    "scrape_classic_histograms",
    "scrape_protocols",
    "fallback_scrape_protocol",
    "always_scrape_classic_histograms",
    "convert_classic_histograms_to_nhcb",
    "enable_compression",
    "keep_dropped_targets",
    "track_timestamps_staleness",
    "scrape_failure_log_file",
    "metric_name_validation_scheme",
    "metric_name_escaping_scheme",
    "http_headers",
    "honor_timestamps_staleness",
    "scrape_native_histograms",
}
_SD_SUFFIX = "_sd_configs"


def parse_duration(value: Any, path: str) -> float:
    """A Prometheus duration string ("1m", "1h30m", "500ms", "0") in seconds."""
    if not isinstance(value, str) or value == "":
        raise ConfigError(f"{path}: not a valid duration string: {value!r}")
    if value == "0":
        return 0.0
    m = _DURATION_RE.match(value)
    if m is None or not any(m.groups()):
        raise ConfigError(f"{path}: not a valid duration string: {value!r}")
    return sum(int(g) * u for g, u in zip(m.groups(), _DURATION_UNITS, strict=True) if g)


def format_duration(seconds: float) -> str:
    """Inverse of parse_duration for whole milliseconds ("1m30s", "500ms")."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(out)


def parse_size(value: Any, path: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{path}: not a valid size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{path}: must not be negative")
        return value
    m = _SIZE_RE.match(str(value).strip())
    if m is None:
        raise ConfigError(f"{path}: not a valid size: {value!r} (e.g. 10MB)")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]


@dataclass(frozen=True)
class StaticConfig:
    targets: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FileSDConfig:
    files: tuple[str, ...]
    refresh_interval: float = DEFAULT_FILE_SD_REFRESH


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str = ""
    password_file: str = ""


@dataclass(frozen=True)
class Authorization:
    type: str = "Bearer"
    credentials: str = ""
    credentials_file: str = ""


@dataclass(frozen=True)
class TLSConfig:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class ScrapeConfig:
    job_name: str
    scrape_interval: float = DEFAULT_SCRAPE_INTERVAL  # seconds
    scrape_timeout: float = DEFAULT_SCRAPE_TIMEOUT  # seconds
    metrics_path: str = "/metrics"
    scheme: str = "http"
    params: tuple[tuple[str, tuple[str, ...]], ...] = ()
    honor_labels: bool = False
    honor_timestamps: bool = True
    static_configs: tuple[StaticConfig, ...] = ()
    file_sd_configs: tuple[FileSDConfig, ...] = ()
    relabel_configs: tuple[RelabelConfig, ...] = ()
    metric_relabel_configs: tuple[RelabelConfig, ...] = ()
    sample_limit: int = 0  # 0: no limit
    label_limit: int = 0
    label_name_length_limit: int = 0
    label_value_length_limit: int = 0
    body_size_limit: int = 0  # bytes, 0: no limit
    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    tls_config: TLSConfig = field(default_factory=TLSConfig)
    follow_redirects: bool = True

    def params_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.params}


# ------------------------------------------------------------------------------------------ parsing


def _mapping(v: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {type(v).__name__}")
    for k in v:
        if not isinstance(k, str):
            raise ConfigError(f"{path}: keys must be strings, got {k!r}")
    return v


def _list(v: Any, path: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise ConfigError(f"{path}: expected a list, got {type(v).__name__}")
    return v


def _str(v: Any, path: str) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{path}: expected a string, got {v!r}")
    return v


def _bool(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{path}: expected true or false, got {v!r}")
    return v


def _uint(v: Any, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(f"{path}: expected a non-negative integer, got {v!r}")
    return v


def _check_keys(
    m: Mapping[str, Any], allowed: set[str], path: str, unsupported: frozenset[str] | set[str] = frozenset()
) -> None:
    for k in m:
        if k in allowed:
            continue
        if k in unsupported or k.endswith(_SD_SUFFIX):
            raise ConfigError(f"{path}.{k}: not supported by Clearsight (see docs/scraping.md)")
        raise ConfigError(f"{path}: unknown field {k!r}")


def _path_in(base_dir: str | None, p: str) -> str:
    if base_dir and not os.path.isabs(p):
        return os.path.join(base_dir, p)
    return p


def parse_relabel_configs(obj: Any, path: str) -> tuple[RelabelConfig, ...]:
    out: list[RelabelConfig] = []
    for i, item in enumerate(_list(obj, path)):
        p = f"{path}[{i}]"
        m = _mapping(item, p)
        _check_keys(
            m, {"action", "source_labels", "separator", "regex", "target_label", "replacement", "modulus"}, p
        )
        action = _str(m.get("action", "replace"), f"{p}.action").lower()
        if action == "":
            raise ConfigError(f"{p}.action: relabel action cannot be empty")
        if action not in (
            "replace",
            "keep",
            "drop",
            "labelmap",
            "labeldrop",
            "labelkeep",
            "hashmod",
            "lowercase",
            "uppercase",
            "keepequal",
            "dropequal",
        ):
            raise ConfigError(f"{p}.action: unknown action {m.get('action')!r}")
        src = m.get("source_labels", [])
        source = tuple(
            _str(s, f"{p}.source_labels[{j}]") for j, s in enumerate(_list(src, f"{p}.source_labels"))
        )
        separator = _str(m.get("separator", DEFAULT_SEPARATOR), f"{p}.separator")
        regex_v = m.get("regex", DEFAULT_REGEX)
        if isinstance(regex_v, int | float) and not isinstance(regex_v, bool):
            regex_v = str(regex_v)
        regex = _str(regex_v, f"{p}.regex")
        try:
            pattern = compile_regex(regex)
        except ValueError as e:
            raise ConfigError(f"{p}.regex: {e}") from None
        target = _str(m.get("target_label", ""), f"{p}.target_label")
        repl_v = m.get("replacement", DEFAULT_REPLACEMENT)
        if isinstance(repl_v, int | float) and not isinstance(repl_v, bool):
            repl_v = str(repl_v)
        replacement = _str(repl_v, f"{p}.replacement")
        modulus = _uint(m.get("modulus", 0), f"{p}.modulus")
        cfg = RelabelConfig(action, source, separator, regex, target, replacement, modulus, pattern)
        try:
            validate(cfg)
        except ValueError as e:
            raise ConfigError(f"{p}: {e}") from None
        out.append(cfg)
    return tuple(out)


def parse_static_configs(obj: Any, path: str) -> tuple[StaticConfig, ...]:
    out = []
    for i, item in enumerate(_list(obj, path)):
        p = f"{path}[{i}]"
        m = _mapping(item, p)
        _check_keys(m, {"targets", "labels"}, p)
        targets = tuple(
            _target_address(t, f"{p}.targets[{j}]")
            for j, t in enumerate(_list(m.get("targets"), f"{p}.targets"))
        )
        labels = parse_label_map(m.get("labels"), f"{p}.labels")
        out.append(StaticConfig(targets, labels))
    return tuple(out)


def _target_address(v: Any, path: str) -> str:
    s = _str(v, path)
    if s == "":
        raise ConfigError(f"{path}: empty target address")
    if "/" in s:
        raise ConfigError(
            f"{path}: {s!r} is not a valid hostname (a target is host:port, without scheme or path)"
        )
    return s


def parse_label_map(obj: Any, path: str) -> tuple[tuple[str, str], ...]:
    if obj is None:
        return ()
    m = _mapping(obj, path)
    out = []
    for k, v in m.items():
        if not is_valid_label_name(k):
            raise ConfigError(f"{path}: {k!r} is not a valid label name")
        if isinstance(v, bool) or v is None:
            raise ConfigError(f"{path}.{k}: expected a string value, got {v!r}")
        out.append((k, str(v)))
    return tuple(sorted(out))


def parse_file_sd_configs(obj: Any, path: str, base_dir: str | None) -> tuple[FileSDConfig, ...]:
    out = []
    for i, item in enumerate(_list(obj, path)):
        p = f"{path}[{i}]"
        m = _mapping(item, p)
        _check_keys(m, {"files", "refresh_interval"}, p)
        files = []
        for j, f in enumerate(_list(m.get("files"), f"{p}.files")):
            fp = f"{p}.files[{j}]"
            s = _str(f, fp)
            if not _FILE_SD_NAME_RE.match(s):
                raise ConfigError(
                    f"{fp}: path name {s!r} is not valid for file discovery "
                    f"(needs a .json, .yml or .yaml extension; '*' only in the last element)"
                )
            files.append(_path_in(base_dir, s))
        if not files:
            raise ConfigError(f"{p}.files: file service discovery config must contain at least one path name")
        refresh = parse_duration(m.get("refresh_interval", "5m"), f"{p}.refresh_interval")
        if refresh <= 0:
            raise ConfigError(f"{p}.refresh_interval: must be positive")
        out.append(FileSDConfig(tuple(files), refresh))
    return tuple(out)


_SCRAPE_KEYS = {
    "job_name",
    "scrape_interval",
    "scrape_timeout",
    "metrics_path",
    "scheme",
    "params",
    "honor_labels",
    "honor_timestamps",
    "static_configs",
    "file_sd_configs",
    "relabel_configs",
    "metric_relabel_configs",
    "sample_limit",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
    "body_size_limit",
    "basic_auth",
    "authorization",
    "bearer_token",
    "bearer_token_file",
    "tls_config",
    "follow_redirects",
}


def parse_scrape_configs(
    obj: Any,
    where: str,
    *,
    global_scrape_interval: float = DEFAULT_SCRAPE_INTERVAL,
    global_scrape_timeout: float = DEFAULT_SCRAPE_TIMEOUT,
    base_dir: str | None = None,
) -> list[ScrapeConfig]:
    """Parses the value of ``scrape_configs``; ``where`` names its source (a file path) in errors.

    ``global_scrape_interval``/``global_scrape_timeout`` are the ``global:`` section's values in seconds
    (Prometheus defaults 1m and 10s); relative ``file_sd_configs`` paths resolve against ``base_dir``.
    """
    try:
        return _parse_scrape_configs(obj, global_scrape_interval, global_scrape_timeout, base_dir)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _parse_scrape_configs(
    obj: Any, g_interval: float, g_timeout: float, base_dir: str | None
) -> list[ScrapeConfig]:
    out: list[ScrapeConfig] = []
    names: set[str] = set()
    for i, item in enumerate(_list(obj, "scrape_configs")):
        p = f"scrape_configs[{i}]"
        m = _mapping(item, p)
        _check_keys(m, _SCRAPE_KEYS, p, _UNSUPPORTED_SCRAPE_KEYS)
        if "job_name" not in m:
            raise ConfigError(f"{p}.job_name: job_name is empty")
        job = _str(m["job_name"], f"{p}.job_name")
        if job == "":
            raise ConfigError(f"{p}.job_name: job_name is empty")
        if job in names:
            raise ConfigError(f"{p}.job_name: found multiple scrape configs with job name {job!r}")
        names.add(job)
        interval = (
            parse_duration(m["scrape_interval"], f"{p}.scrape_interval")
            if "scrape_interval" in m
            else g_interval
        )
        if interval <= 0:
            raise ConfigError(f"{p}.scrape_interval: must be positive")
        if "scrape_timeout" in m:
            timeout = parse_duration(m["scrape_timeout"], f"{p}.scrape_timeout")
            if timeout <= 0:
                raise ConfigError(f"{p}.scrape_timeout: must be positive")
            if timeout > interval:
                raise ConfigError(
                    f"{p}.scrape_timeout: scrape timeout greater than scrape interval "
                    f"for scrape config with job name {job!r}"
                )
        else:
            timeout = min(g_timeout, interval)
        metrics_path = _str(m.get("metrics_path", "/metrics"), f"{p}.metrics_path")
        if not metrics_path.startswith("/"):
            raise ConfigError(f"{p}.metrics_path: must start with '/'")
        scheme = _str(m.get("scheme", "http"), f"{p}.scheme")
        if scheme not in ("http", "https"):
            raise ConfigError(f"{p}.scheme: invalid scheme {scheme!r} (http or https)")
        params = _parse_params(m.get("params"), f"{p}.params")
        honor_labels = _bool(m.get("honor_labels", False), f"{p}.honor_labels")
        honor_ts = _bool(m.get("honor_timestamps", True), f"{p}.honor_timestamps")
        basic_auth = _parse_basic_auth(m.get("basic_auth"), f"{p}.basic_auth", base_dir)
        authz = _parse_authorization(m, p, base_dir)
        if basic_auth is not None and authz is not None:
            raise ConfigError(f"{p}: at most one of basic_auth and authorization may be configured")
        out.append(
            ScrapeConfig(
                job_name=job,
                scrape_interval=interval,
                scrape_timeout=timeout,
                metrics_path=metrics_path,
                scheme=scheme,
                params=params,
                honor_labels=honor_labels,
                honor_timestamps=honor_ts,
                static_configs=parse_static_configs(m.get("static_configs"), f"{p}.static_configs"),
                file_sd_configs=parse_file_sd_configs(
                    m.get("file_sd_configs"), f"{p}.file_sd_configs", base_dir
                ),
                relabel_configs=parse_relabel_configs(m.get("relabel_configs"), f"{p}.relabel_configs"),
                metric_relabel_configs=parse_relabel_configs(
                    m.get("metric_relabel_configs"), f"{p}.metric_relabel_configs"
                ),
                sample_limit=_uint(m.get("sample_limit", 0), f"{p}.sample_limit"),
                label_limit=_uint(m.get("label_limit", 0), f"{p}.label_limit"),
                label_name_length_limit=_uint(
                    m.get("label_name_length_limit", 0), f"{p}.label_name_length_limit"
                ),
                label_value_length_limit=_uint(
                    m.get("label_value_length_limit", 0), f"{p}.label_value_length_limit"
                ),
                body_size_limit=parse_size(m.get("body_size_limit", 0), f"{p}.body_size_limit"),
                basic_auth=basic_auth,
                authorization=authz,
                tls_config=_parse_tls(m.get("tls_config"), f"{p}.tls_config", base_dir),
                follow_redirects=_bool(m.get("follow_redirects", True), f"{p}.follow_redirects"),
            )
        )
    return out


def _parse_params(obj: Any, path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if obj is None:
        return ()
    m = _mapping(obj, path)
    out = []
    for k, v in m.items():
        vals = tuple(_str(x, f"{path}.{k}[{j}]") for j, x in enumerate(_list(v, f"{path}.{k}")))
        out.append((k, vals))
    return tuple(out)


def _parse_basic_auth(obj: Any, path: str, base_dir: str | None) -> BasicAuth | None:
    if obj is None:
        return None
    m = _mapping(obj, path)
    _check_keys(m, {"username", "password", "password_file"}, path, {"username_file"})
    user = _str(m.get("username", ""), f"{path}.username")
    pw = _str(m.get("password", ""), f"{path}.password")
    pw_file = _str(m.get("password_file", ""), f"{path}.password_file")
    if pw and pw_file:
        raise ConfigError(f"{path}: at most one of password and password_file must be configured")
    return BasicAuth(user, pw, _path_in(base_dir, pw_file) if pw_file else "")


def _parse_authorization(m: Mapping[str, Any], p: str, base_dir: str | None) -> Authorization | None:
    if "bearer_token" in m or "bearer_token_file" in m:
        if "authorization" in m:
            raise ConfigError(f"{p}: at most one of bearer_token, bearer_token_file and authorization")
        tok = _str(m.get("bearer_token", ""), f"{p}.bearer_token")
        tf = _str(m.get("bearer_token_file", ""), f"{p}.bearer_token_file")
        if tok and tf:
            raise ConfigError(f"{p}: at most one of bearer_token and bearer_token_file")
        return Authorization("Bearer", tok, _path_in(base_dir, tf) if tf else "")
    obj = m.get("authorization")
    if obj is None:
        return None
    path = f"{p}.authorization"
    a = _mapping(obj, path)
    _check_keys(a, {"type", "credentials", "credentials_file"}, path)
    typ = _str(a.get("type", "Bearer"), f"{path}.type") or "Bearer"
    if typ.lower() == "basic":
        raise ConfigError(
            f"{path}.type: authorization type cannot be set to 'basic', use 'basic_auth' instead"
        )
    cred = _str(a.get("credentials", ""), f"{path}.credentials")
    cf = _str(a.get("credentials_file", ""), f"{path}.credentials_file")
    if cred and cf:
        raise ConfigError(f"{path}: at most one of credentials and credentials_file")
    return Authorization(typ, cred, _path_in(base_dir, cf) if cf else "")


def _parse_tls(obj: Any, path: str, base_dir: str | None) -> TLSConfig:
    if obj is None:
        return TLSConfig()
    m = _mapping(obj, path)
    _check_keys(
        m,
        {"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"},
        path,
        {"ca", "cert", "key", "min_version", "max_version", "ca_ref", "cert_ref", "key_ref"},
    )
    files = {k: _str(m.get(k, ""), f"{path}.{k}") for k in ("ca_file", "cert_file", "key_file")}
    if bool(files["cert_file"]) != bool(files["key_file"]):
        raise ConfigError(f"{path}: cert_file and key_file must both be set")
    return TLSConfig(
        ca_file=_path_in(base_dir, files["ca_file"]) if files["ca_file"] else "",
        cert_file=_path_in(base_dir, files["cert_file"]) if files["cert_file"] else "",
        key_file=_path_in(base_dir, files["key_file"]) if files["key_file"] else "",
        server_name=_str(m.get("server_name", ""), f"{path}.server_name"),
        insecure_skip_verify=_bool(m.get("insecure_skip_verify", False), f"{path}.insecure_skip_verify"),
    )


def check_target_address(addr: str) -> str | None:
    """An error message when ``addr`` cannot be a scrape target's host[:port], else None."""
    if addr == "":
        return "no address"
    if "/" in addr:
        return f"{addr!r} is not a valid hostname"
    try:
        u = urlsplit("//" + addr)
        _ = u.port
    except ValueError:
        return f"{addr!r} is not a valid host:port"
    if not u.hostname:
        return f"{addr!r} is not a valid host:port"
    return None
