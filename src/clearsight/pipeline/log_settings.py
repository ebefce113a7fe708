"""Per-tenant settings of the log pipeline steps: ``logs.pipeline`` (defaults for every tenant) and
``logs.tenants.<name>`` (overrides for one tenant), parsed and checked once at start.

YAML shape (docs/configuration.md "logs.pipeline")::

    logs:
      pipeline:
        pii: {enabled: true, email: true, ssn: true, card: true, ipv4: false, ipv6: false,
              attributes: true, custom: {token: 'tok_[A-Za-z0-9]{16}'}}
        dedup_window: 10s        # "" / 0s = off
        rate_lines: 0            # lines/s per tenant (0 = no limit); burst defaults to 2 s worth
        rate_lines_burst: 0
        rate_bytes: 0            # body bytes/s per tenant
        rate_bytes_burst: 0
        enrich: {resource: {deployment.environment: prod}, hosts: true}
      tenants:
        acme: {pii: {ipv4: true}, rate_lines: 5000, retention: 30d}

``retention`` (tenants only) is handed to the log store (``retention_overrides``).

A tenant's ``pii`` and ``enrich`` mappings are merged key by key over the defaults' (``custom``
patterns and ``enrich.resource`` attributes too); the other keys replace the default. Errors are ``ValueError`` whose text starts with the key path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

from clearsight.pipeline.tenant import tenant_error

_PII_FLAGS = ("enabled", "email", "ssn", "card", "ipv4", "ipv6", "attributes")
_STEP_KEYS = ("pii", "dedup_window", "rate_lines", "rate_lines_burst", "rate_bytes", "rate_bytes_burst", "enrich")
MAX_ENRICH_ATTRIBUTES = 32
_TENANT_KEYS = (*_STEP_KEYS, "retention")
_CUSTOM_NAME = re2.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class PiiSettings:
    enabled: bool = False
    email: bool = True
    ssn: bool = True
    card: bool = True
    ipv4: bool = False
    ipv6: bool = False
    attributes: bool = True  # scrub attribute (structured metadata) values too, not only the body
    custom: tuple[tuple[str, str], ...] = ()  # (name, RE2 pattern); a match becomes <name:hash>

    @property
    def active(self) -> bool:
        return self.enabled and (self.email or self.ssn or self.card or self.ipv4 or self.ipv6 or bool(self.custom))


@dataclass(frozen=True)
class TenantLogSettings:
    pii: PiiSettings = field(default_factory=PiiSettings)
    dedup_window_ns: int = 0  # 0 = off
    rate_lines: float = 0.0  # lines per second, 0 = unlimited
    rate_lines_burst: int = 0
    rate_bytes: float = 0.0
    rate_bytes_burst: int = 0
    retention_ns: int = 0  # logs.tenants.<name>.retention; 0 = logs.retention
    enrich_resource: tuple[tuple[str, str], ...] = ()  # added to every entry's resource (sender wins)
    enrich_hosts: bool = False  # the resource registry's host metadata (pipeline/log_enrich.py)

    @property
    def enriches(self) -> bool:
        return bool(self.enrich_resource) or self.enrich_hosts


@dataclass(frozen=True)
class LogPipelineSettings:
    default: TenantLogSettings = field(default_factory=TenantLogSettings)
    tenants: Mapping[str, TenantLogSettings] = field(default_factory=dict)

    def for_tenant(self, tenant: str) -> TenantLogSettings:
        return self.tenants.get(tenant, self.default)

    def retention_overrides(self) -> dict[str, int]:
        """Tenants with their own retention (ns), for the log store."""
        return {t: s.retention_ns for t, s in self.tenants.items() if s.retention_ns}


def _bool(where: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise ValueError(f"{where}: expected true or false, got {v!r}")


def _number(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0 or v == float("inf"):
        raise ValueError(f"{where}: expected a number >= 0, got {v!r}")
    return float(v)


def _duration_ns(where: str, v: Any) -> int:
    if v in ("", None):
        return 0
    if not isinstance(v, str):
        raise ValueError(f"{where}: expected a duration such as 10s, got {v!r}")
    from clearsight.config import parse_duration_ms  # config imports this module

    try:
        return parse_duration_ms(v) * 1_000_000
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _pii(where: str, base: PiiSettings, raw: Any) -> PiiSettings:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {raw!r}")
    changes: dict[str, Any] = {}
    custom = dict(base.custom)
    for key, value in raw.items():
        if key in _PII_FLAGS:
            changes[key] = _bool(f"{where}.{key}", value)
        elif key == "custom":
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}.custom: expected a mapping of name: RE2 pattern, got {value!r}")
            for name, pattern in value.items():
                w = f"{where}.custom.{name}"
                if not isinstance(name, str) or not _CUSTOM_NAME.match(name):
                    raise ValueError(f"{w}: a name is 1-32 lower-case letters, digits or _, starting with a letter")
                if name in ("email", "ssn", "card", "ipv4", "ipv6"):
                    raise ValueError(f"{w}: {name} is a built-in kind")
                if not isinstance(pattern, str) or not pattern:
                    raise ValueError(f"{w}: expected a non-empty RE2 pattern")
                try:
                    compiled = re2.compile(pattern)
                except re2.error as e:
                    raise ValueError(f"{w}: invalid RE2 pattern: {e}") from None
                if compiled.groupindex:
                    raise ValueError(f"{w}: named groups are not allowed in a pattern")
                if compiled.match(""):
                    raise ValueError(f"{w}: the pattern matches the empty string")
                custom[name] = pattern
        else:
            raise ValueError(f"{where}.{key}: unknown key (known: {', '.join((*_PII_FLAGS, 'custom'))})")
    changes["custom"] = tuple(sorted(custom.items()))
    return dataclasses.replace(base, **changes)


def _enrich(where: str, base: TenantLogSettings, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {raw!r}")
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        w = f"{where}.{key}"
        if key == "hosts":
            changes["enrich_hosts"] = _bool(w, value)
        elif key == "resource":
            if not isinstance(value, Mapping):
                raise ValueError(f"{w}: expected a mapping of attribute: value, got {value!r}")
            attrs = dict(base.enrich_resource)
            for name, v in value.items():
                if not isinstance(name, str) or not 0 < len(name) <= 256:
                    raise ValueError(f"{w}: attribute names are 1-256 characters, got {name!r}")
                if not isinstance(v, str) or len(v) > 2048:
                    raise ValueError(f"{w}.{name}: expected a string of at most 2048 characters, got {v!r}")
                attrs[name] = v
            attrs = {k: v for k, v in attrs.items() if v}  # "" removes a default's attribute
            if len(attrs) > MAX_ENRICH_ATTRIBUTES:
                raise ValueError(f"{w}: {len(attrs)} attributes, over the limit of {MAX_ENRICH_ATTRIBUTES}")
            changes["enrich_resource"] = tuple(sorted(attrs.items()))
        else:
            raise ValueError(f"{w}: unknown key (known: resource, hosts)")
    return changes


def _steps(where: str, base: TenantLogSettings, raw: Any, known: tuple[str, ...]) -> TenantLogSettings:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {raw!r}")
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        w = f"{where}.{key}"
        if key not in known:
            raise ValueError(f"{w}: unknown key (known: {', '.join(known)})")
        if key == "pii":
            changes["pii"] = _pii(w, base.pii, value)
        elif key == "enrich":
            changes.update(_enrich(w, base, value))
        elif key == "dedup_window":
            changes["dedup_window_ns"] = _duration_ns(w, value)
        elif key == "retention":
            ns = _duration_ns(w, value)
            if ns <= 0:
                raise ValueError(f"{w}: must be longer than 0s")
            changes["retention_ns"] = ns
        elif key in ("rate_lines", "rate_bytes"):
            changes[key] = _number(w, value)
        else:
            changes[key] = int(_number(w, value))
    out = dataclasses.replace(base, **changes)
    # A limit without a burst gets two seconds' worth; a burst alone (rate 0) is meaningless.
    for rate_key in ("rate_lines", "rate_bytes"):
        rate, burst = getattr(out, rate_key), getattr(out, f"{rate_key}_burst")
        if rate > 0 and (burst == 0 or (rate_key in raw and f"{rate_key}_burst" not in raw)):
            burst_of: dict[str, Any] = {f"{rate_key}_burst": max(1, int(rate * 2))}
            out = dataclasses.replace(out, **burst_of)
    return out


def parse_log_pipeline(pipeline: Mapping[str, Any], tenants: Mapping[str, Any]) -> LogPipelineSettings:
    """``logs.pipeline`` and ``logs.tenants`` -> settings; ``ValueError`` naming the key path."""
    default = _steps("pipeline", TenantLogSettings(), pipeline, _STEP_KEYS)
    per_tenant: dict[str, TenantLogSettings] = {}
    for name, raw in tenants.items():
        err = tenant_error(str(name))
        if err:
            raise ValueError(f"tenants.{name}: {err}")
        per_tenant[str(name)] = _steps(f"tenants.{name}", default, raw or {}, _TENANT_KEYS)
    return LogPipelineSettings(default=default, tenants=per_tenant)
