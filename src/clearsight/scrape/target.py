"""Targets: from discovered target groups to the labels and URL of each scrape target.

``populate_labels`` follows Prometheus' ``scrape.PopulateLabels``: group labels, then the target's
own labels, then defaults (``job``, ``__scheme__``, ``__metrics_path__``, ``__scrape_interval__``,
``__scrape_timeout__``, ``__param_<name>``) for names not already set, then ``relabel_configs``.
After relabeling ``__address__`` must be a host[:port]; the URL is built from ``__scheme__``,
``__address__``, ``__metrics_path__`` and the config's ``params`` overridden by ``__param_*`` labels;
``__scrape_interval__``/``__scrape_timeout__`` may be relabeled to change a target's interval;
every label starting with ``__`` is then removed and ``instance`` defaults to ``__address__``.
Unlike Prometheus 2.x, no default port is added to the address (as in Prometheus 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from clearsight.model.labels import Labels
from clearsight.scrape.config import (
    ConfigError,
    ScrapeConfig,
    check_target_address,
    format_duration,
    parse_duration,
)
from clearsight.scrape.relabel import is_valid_label_name, process

ADDRESS = "__address__"
SCHEME = "__scheme__"
METRICS_PATH = "__metrics_path__"
SCRAPE_INTERVAL = "__scrape_interval__"
SCRAPE_TIMEOUT = "__scrape_timeout__"
PARAM_PREFIX = "__param_"


@dataclass(frozen=True)
class TargetGroup:
    """A set of targets sharing labels, from one discovery source (``static/0``, ``file:/x.yml:2``)."""

    source: str
    targets: tuple[Labels, ...]  # each target's own labels, at least __address__
    labels: Labels = ()


@dataclass(frozen=True)
class Target:
    job: str
    labels: Labels  # the public labels attached to every sample (job, instance, ...)
    discovered_labels: Labels  # the labels before relabeling (with the defaults)
    url: str
    interval: float  # seconds
    timeout: float  # seconds

    @property
    def key(self) -> tuple[str, Labels, str]:
        """Two targets with equal keys are the same target (a reload keeps its scrape loop)."""
        return (self.job, self.labels, self.url)


def static_groups(cfg: ScrapeConfig) -> list[TargetGroup]:
    out = []
    for i, sc in enumerate(cfg.static_configs):
        out.append(TargetGroup(f"static/{i}", tuple(((ADDRESS, t),) for t in sc.targets), sc.labels))
    return out


def populate_labels(
    group_labels: Labels | Mapping[str, str], target_labels: Labels | Mapping[str, str], cfg: ScrapeConfig
) -> tuple[Target | None, Labels, str | None]:
    """(target or None when dropped by relabeling, discovered labels, error or None)."""
    lset: dict[str, str] = dict(group_labels.items() if isinstance(group_labels, Mapping) else group_labels)
    lset.update(target_labels.items() if isinstance(target_labels, Mapping) else target_labels)
    defaults = {
        "job": cfg.job_name,
        SCRAPE_INTERVAL: format_duration(cfg.scrape_interval),
        SCRAPE_TIMEOUT: format_duration(cfg.scrape_timeout),
        METRICS_PATH: cfg.metrics_path,
        SCHEME: cfg.scheme,
    }
    for k, vals in cfg.params:
        if vals:
            defaults[PARAM_PREFIX + k] = vals[0]
    for k, v in defaults.items():
        if lset.get(k, "") == "":
            lset[k] = v
    discovered: Labels = tuple(sorted((k, v) for k, v in lset.items() if v != ""))
    res = process(lset, cfg.relabel_configs)
    if res is None:
        return None, discovered, None
    addr = res.get(ADDRESS, "")
    if addr == "":
        return None, discovered, "no address"
    err = check_target_address(addr)
    if err is not None:
        return None, discovered, err
    scheme = res.get(SCHEME, "")
    if scheme not in ("http", "https"):
        return None, discovered, f"invalid scheme {scheme!r}"
    try:
        interval = parse_duration(res.get(SCRAPE_INTERVAL, ""), "__scrape_interval__")
        timeout = parse_duration(res.get(SCRAPE_TIMEOUT, ""), "__scrape_timeout__")
    except ConfigError as e:
        return None, discovered, str(e)
    if interval <= 0 or timeout <= 0:
        return None, discovered, "scrape interval and timeout must be positive"
    if timeout > interval:
        return (
            None,
            discovered,
            (
                f"scrape timeout {format_duration(timeout)} greater than scrape interval "
                f"{format_duration(interval)}"
            ),
        )
    params = cfg.params_dict()
    for k, v in res.items():
        if k.startswith(PARAM_PREFIX) and len(k) > len(PARAM_PREFIX):
            params[k[len(PARAM_PREFIX) :]] = [v]
    path = res.get(METRICS_PATH, "") or "/"
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{addr}{path}"
    if params:
        url += "?" + urlencode(sorted(params.items()), doseq=True)
    public = {k: v for k, v in res.items() if not k.startswith("__")}
    if public.get("instance", "") == "":
        public["instance"] = addr
    for k in public:
        if not is_valid_label_name(k):
            return None, discovered, f"invalid label name {k!r}"
    labels: Labels = tuple(sorted((k, v) for k, v in public.items() if v != ""))
    return Target(cfg.job_name, labels, discovered, url, interval, timeout), discovered, None


@dataclass
class TargetSet:
    active: list[Target]
    dropped: list[Labels]  # discovered labels of targets that relabeling dropped
    errors: list[tuple[Labels, str]]  # discovered labels and why they are not scraped


def targets_from_groups(cfg: ScrapeConfig, groups: list[TargetGroup]) -> TargetSet:
    """All targets of a job; duplicates (same labels and URL) are scraped once."""
    out = TargetSet([], [], [])
    seen: set[tuple[str, Labels, str]] = set()
    for g in groups:
        for t in g.targets:
            target, discovered, err = populate_labels(g.labels, t, cfg)
            if err is not None:
                out.errors.append((discovered, err))
            elif target is None:
                out.dropped.append(discovered)
            elif target.key not in seen:
                seen.add(target.key)
                out.active.append(target)
    return out
