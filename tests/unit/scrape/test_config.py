"""Tests of scrape_configs parsing: defaults, every supported field, errors with key paths."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from clearsight.scrape.config import (
    ConfigError,
    FileSDConfig,
    StaticConfig,
    format_duration,
    parse_duration,
    parse_scrape_configs,
)

FULL = """
- job_name: node
  scrape_interval: 15s
  scrape_timeout: 5s
  metrics_path: /m
  scheme: https
  params: {module: [http_2xx, other]}
  honor_labels: true
  honor_timestamps: false
  sample_limit: 1000
  label_limit: 30
  label_name_length_limit: 100
  label_value_length_limit: 200
  body_size_limit: 10MB
  basic_auth: {username: u, password: p}
  tls_config: {insecure_skip_verify: true, server_name: example}
  static_configs:
    - targets: ['a:9100', 'b:9100']
      labels: {env: prod}
  file_sd_configs:
    - files: ['sd/*.yml', '/abs/x.json']
      refresh_interval: 30s
  relabel_configs:
    - source_labels: [__address__]
      regex: '(.*):9100'
      target_label: host
      replacement: $1
  metric_relabel_configs:
    - action: Drop
      source_labels: [__name__]
      regex: go_.*
- job_name: second
"""


def parse(text: str, **kw: Any) -> Any:
    return parse_scrape_configs(yaml.safe_load(text), "prom.yml", **kw)


def test_full_config() -> None:
    node, second = parse(FULL, base_dir="/etc/cs")
    assert node.job_name == "node"
    assert (node.scrape_interval, node.scrape_timeout) == (15.0, 5.0)
    assert node.metrics_path == "/m" and node.scheme == "https"
    assert node.params_dict() == {"module": ["http_2xx", "other"]}
    assert node.honor_labels is True and node.honor_timestamps is False
    assert (node.sample_limit, node.label_limit) == (1000, 30)
    assert (node.label_name_length_limit, node.label_value_length_limit) == (100, 200)
    assert node.body_size_limit == 10 * 1024 * 1024
    assert node.basic_auth is not None and node.basic_auth.username == "u"
    assert node.tls_config.insecure_skip_verify and node.tls_config.server_name == "example"
    assert node.static_configs == (StaticConfig(("a:9100", "b:9100"), (("env", "prod"),)),)
    assert node.file_sd_configs == (FileSDConfig(("/etc/cs/sd/*.yml", "/abs/x.json"), 30.0),)
    assert node.relabel_configs[0].target_label == "host"
    assert node.metric_relabel_configs[0].action == "drop"  # actions are case-insensitive
    # Prometheus defaults
    assert second.scrape_interval == 60.0 and second.scrape_timeout == 10.0
    assert second.metrics_path == "/metrics" and second.scheme == "http"
    assert second.honor_labels is False and second.honor_timestamps is True
    assert second.static_configs == () and second.relabel_configs == ()


def test_global_defaults_are_parameters() -> None:
    (c,) = parse("- job_name: j\n", global_scrape_interval=15.0, global_scrape_timeout=10.0)
    assert (c.scrape_interval, c.scrape_timeout) == (15.0, 10.0)
    # the global timeout is capped by a shorter job interval
    (c,) = parse("- job_name: j\n  scrape_interval: 5s\n", global_scrape_timeout=10.0)
    assert c.scrape_timeout == 5.0


def test_empty_scrape_configs() -> None:
    assert parse_scrape_configs(None, "x") == []
    assert parse_scrape_configs([], "x") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- job_name: a\n- job_name: b\n- job_name: c\n  relabel_configs:\n  - action: foo\n",
            "prom.yml: scrape_configs[2].relabel_configs[0].action: unknown action 'foo'",
        ),
        ("- {}\n", "prom.yml: scrape_configs[0].job_name: job_name is empty"),
        (
            "- job_name: a\n- job_name: a\n",
            "scrape_configs[1].job_name: found multiple scrape configs with job name 'a'",
        ),
        (
            "- job_name: a\n  scrape_interval: 1x\n",
            "scrape_configs[0].scrape_interval: not a valid duration string: '1x'",
        ),
        ("- job_name: a\n  scrape_interval: 15\n", "not a valid duration string: 15"),
        (
            "- job_name: a\n  scrape_interval: 5s\n  scrape_timeout: 10s\n",
            "scrape_configs[0].scrape_timeout: scrape timeout greater than scrape interval",
        ),
        ("- job_name: a\n  scheme: ftp\n", "scrape_configs[0].scheme: invalid scheme 'ftp'"),
        ("- job_name: a\n  metrics_path: metrics\n", "metrics_path: must start with '/'"),
        ("- job_name: a\n  bogus: 1\n", "scrape_configs[0]: unknown field 'bogus'"),
        (
            "- job_name: a\n  kubernetes_sd_configs: []\n",
            "scrape_configs[0].kubernetes_sd_configs: not supported by Clearsight",
        ),
        ("- job_name: a\n  proxy_url: http://p\n", "scrape_configs[0].proxy_url: not supported"),
        ("- job_name: a\n  honor_labels: yes please\n", "honor_labels: expected true or false"),
        ("- job_name: a\n  sample_limit: -1\n", "sample_limit: expected a non-negative integer"),
        (
            "- job_name: a\n  static_configs:\n  - targets: ['http://x:1/metrics']\n",
            "scrape_configs[0].static_configs[0].targets[0]: 'http://x:1/metrics' is not a valid hostname",
        ),
        (
            "- job_name: a\n  static_configs:\n  - labels: {'bad-name': x}\n",
            "static_configs[0].labels: 'bad-name' is not a valid label name",
        ),
        (
            "- job_name: a\n  static_configs:\n  - targets: [a]\n    extra: 1\n",
            "static_configs[0]: unknown field 'extra'",
        ),
        (
            "- job_name: a\n  file_sd_configs:\n  - files: ['targets.txt']\n",
            "file_sd_configs[0].files[0]: path name 'targets.txt' is not valid for file discovery",
        ),
        ("- job_name: a\n  file_sd_configs:\n  - files: ['*/x.yml']\n", "is not valid for file discovery"),
        ("- job_name: a\n  file_sd_configs:\n  - files: []\n", "must contain at least one path name"),
        (
            "- job_name: a\n  relabel_configs:\n  - action: hashmod\n    target_label: t\n",
            "scrape_configs[0].relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus",
        ),
        (
            "- job_name: a\n  metric_relabel_configs:\n  - regex: '('\n",
            "scrape_configs[0].metric_relabel_configs[0].regex: invalid regex '('",
        ),
        (
            "- job_name: a\n  relabel_configs:\n  - action: labeldrop\n    regex: x\n    target_label: y\n",
            "relabel_configs[0]: labeldrop action requires only 'regex', and no other fields",
        ),
        ("- job_name: a\n  relabel_configs:\n  - source_labels: x\n", "source_labels: expected a list"),
        ("- job_name: a\n  body_size_limit: lots\n", "body_size_limit: not a valid size"),
        (
            "- job_name: a\n  basic_auth: {username: u}\n  authorization: {credentials: x}\n",
            "at most one of basic_auth and authorization",
        ),
        ("- job_name: a\n  authorization: {type: Basic, credentials: x}\n", "use 'basic_auth' instead"),
        ("- job_name: a\n  tls_config: {cert_file: c}\n", "cert_file and key_file must both be set"),
        ("job_name: a\n", "scrape_configs: expected a list, got dict"),
        ("- 3\n", "scrape_configs[0]: expected a mapping, got int"),
    ],
)
def test_errors_name_the_key_path(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse(text)
    assert message in str(ei.value)
    assert str(ei.value).startswith("prom.yml: ")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("15s", 15.0),
        ("1m", 60.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1y", 365 * 86400.0),
        ("2m3s4ms", 123.004),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "x") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "1.5s", "s", "1s1m", "-1s", " 1s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError, match="not a valid duration string"):
        parse_duration(text, "x")


def test_format_duration() -> None:
    assert format_duration(60.0) == "1m"
    assert format_duration(90.5) == "1m30s500ms"
    assert format_duration(0) == "0s"
    assert parse_duration(format_duration(3723.25), "x") == pytest.approx(3723.25)
