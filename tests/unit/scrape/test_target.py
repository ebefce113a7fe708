"""Tests of target label population (Prometheus' PopulateLabels) and URL construction."""

from __future__ import annotations

from typing import Any

import yaml

from clearsight.scrape.config import ScrapeConfig, parse_scrape_configs
from clearsight.scrape.target import TargetGroup, populate_labels, static_groups, targets_from_groups


def cfg(text: str) -> ScrapeConfig:
    (c,) = parse_scrape_configs(yaml.safe_load(text), "t.yml")
    return c


def one(c: ScrapeConfig, **target: Any) -> Any:
    return populate_labels((), tuple(sorted(target.items())), c)


def test_defaults_job_instance_and_url() -> None:
    c = cfg("- job_name: node\n  static_configs: [{targets: ['h:9100'], labels: {env: prod}}]\n")
    ts = targets_from_groups(c, static_groups(c))
    (t,) = ts.active
    assert t.labels == (("env", "prod"), ("instance", "h:9100"), ("job", "node"))
    assert t.url == "http://h:9100/metrics"
    assert (t.interval, t.timeout) == (60.0, 10.0)
    assert dict(t.discovered_labels) == {
        "__address__": "h:9100",
        "__metrics_path__": "/metrics",
        "__scheme__": "http",
        "__scrape_interval__": "1m",
        "__scrape_timeout__": "10s",
        "env": "prod",
        "job": "node",
    }


def test_meta_labels_drive_url_and_are_dropped_afterwards() -> None:
    c = cfg("""
- job_name: blackbox
  metrics_path: /probe
  params: {module: [http_2xx]}
  relabel_configs:
    - {source_labels: [__address__], target_label: __param_target}
    - {source_labels: [__param_target], target_label: instance}
    - {target_label: __address__, replacement: 'exporter:9115'}
    - {target_label: __scheme__, replacement: https}
    - {target_label: __scrape_interval__, replacement: 30s}
    - {target_label: __tmp_x, replacement: gone}
""")
    t, _, err = one(c, __address__="example.com")
    assert err is None
    assert t.url == "https://exporter:9115/probe?module=http_2xx&target=example.com"
    assert t.labels == (("instance", "example.com"), ("job", "blackbox"))
    assert t.interval == 30.0


def test_param_label_overrides_config_param() -> None:
    c = cfg(
        "- job_name: j\n  params: {a: ['1', '2'], b: ['x']}\n"
        "  relabel_configs: [{target_label: __param_a, replacement: '9'}]\n"
    )
    t, _, _ = one(c, __address__="h:1")
    assert t.url == "http://h:1/metrics?a=9&b=x"


def test_target_labels_override_group_labels_and_job_can_be_set() -> None:
    c = cfg("- job_name: j\n")
    g = TargetGroup("x", ((("__address__", "h:1"), ("job", "custom"), ("team", "a")),), (("team", "g"),))
    (t,) = targets_from_groups(c, [g]).active
    assert dict(t.labels) == {"instance": "h:1", "job": "custom", "team": "a"}


def test_dropped_and_invalid_targets() -> None:
    c = cfg(
        "- job_name: j\n  relabel_configs:\n  - {action: drop, source_labels: [__address__], regex: 'bad.*'}\n"
        "  - {source_labels: [__address__], regex: 'noaddr', target_label: __address__, replacement: ''}\n"
    )
    g = TargetGroup(
        "x",
        (
            (("__address__", "bad:1"),),
            (("__address__", "noaddr"),),
            (("__address__", "ok:1"),),
            (("__address__", "ok:1"),),
        ),
    )
    ts = targets_from_groups(c, [g])
    assert [t.url for t in ts.active] == ["http://ok:1/metrics"]  # duplicates are scraped once
    assert [dict(d)["__address__"] for d in ts.dropped] == ["bad:1"]
    assert [e for _, e in ts.errors] == ["no address"]


def test_relabeled_timeout_greater_than_interval_is_an_error() -> None:
    c = cfg("- job_name: j\n  relabel_configs: [{target_label: __scrape_timeout__, replacement: 2m}]\n")
    t, _, err = one(c, __address__="h:1")
    assert t is None and err is not None and "greater than scrape interval" in err


def test_instance_kept_when_set_by_relabeling() -> None:
    c = cfg("- job_name: j\n  relabel_configs: [{target_label: instance, replacement: nice-name}]\n")
    t, _, _ = one(c, __address__="h:1")
    assert dict(t.labels)["instance"] == "nice-name"
