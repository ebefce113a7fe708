"""The scrape collector: the agent scrapes local exporters (``scrape_configs`` in ``agent.yaml``, the
server's format) and forwards their samples with its own shipper, as vmagent or Alloy do.

One collector per target, each at the target's ``scrape_interval``. The server's own pieces do the
work, so semantics are the server's: ``parse_scrape_configs`` (static targets; ``relabel_configs``
through ``targets_from_groups``), the text/OpenMetrics parser, ``honor_labels`` conflict handling
(``exported_*``) and ``metric_relabel_configs``. Every target also reports ``up``,
``scrape_duration_seconds`` and ``scrape_samples_scraped``. The target's ``job`` and ``instance`` are
kept (the agent's host labels do not replace them; its tags are added where absent).

Limits: samples are stamped with the collection time (exposition timestamps are ignored), no staleness
markers are written when a series disappears, ``file_sd_configs``, basic auth, authorization and TLS
options of a job are not used by the agent. These modules (numpy, httpx) load only when
``scrape_configs`` is set, adding about 14 MiB to the agent.
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.parse
from typing import Any

from clearsight.agent.sample import Sample
from clearsight.ingest.prom_text import parse_prometheus_text
from clearsight.pipeline.errors import InvalidInput
from clearsight.scrape.config import ScrapeConfig, parse_scrape_configs
from clearsight.scrape.manager import resolve_target_labels
from clearsight.scrape.relabel import process
from clearsight.scrape.target import Target, static_groups, targets_from_groups

log = logging.getLogger("clearsight.agent.scrape")

ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"


class ScrapeCollector:
    own_labels_win = True  # job/instance come from the target, not the agent

    def __init__(self, cfg: ScrapeConfig, target: Target) -> None:
        self.cfg = cfg
        self.target = target
        self.name = f"scrape:{cfg.job_name}"
        self.errors: dict[str, int] = {}
        self._failing = False

    def _meta(self, name: str, value: float) -> Sample:
        return Sample(name, tuple(sorted(self.target.labels)), float(value))

    def _fetch(self) -> tuple[bytes, str]:
        u = urllib.parse.urlsplit(self.target.url)
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = cls(u.hostname or "", u.port, timeout=self.target.timeout)
        try:
            path = (u.path or "/") + (f"?{u.query}" if u.query else "")
            conn.request("GET", path, headers={"Accept": ACCEPT, "User-Agent": "clearsight-agent",
                                               "X-Prometheus-Scrape-Timeout-Seconds": f"{self.target.timeout:g}"})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise OSError(f"HTTP {r.status}")
            return body, r.getheader("Content-Type", "")
        finally:
            conn.close()

    def collect(self) -> list[Sample]:
        t0 = time.perf_counter()
        try:
            body, content_type = self._fetch()
            parsed = parse_prometheus_text(body, content_type, int(time.time() * 1000))
        except (OSError, http.client.HTTPException, InvalidInput) as e:
            self.errors["scrape"] = self.errors.get("scrape", 0) + 1
            if not self._failing:
                log.warning("scrape of %s failed: %s", self.target.url, e)
                self._failing = True
            return [self._meta("up", 0), self._meta("scrape_duration_seconds", time.perf_counter() - t0)]
        self._failing = False
        out: list[Sample] = []
        for labels, value, _ts in parsed.samples:
            lset: dict[str, str] | None = resolve_target_labels(labels, self.target.labels, self.cfg.honor_labels)
            if self.cfg.metric_relabel_configs:
                lset = process(lset or {}, self.cfg.metric_relabel_configs)
            if not lset or "__name__" not in lset:
                continue
            name = lset.pop("__name__")
            out.append(Sample(name, tuple(sorted(lset.items())), float(value)))
        n = len(parsed.samples)
        out += [self._meta("up", 1), self._meta("scrape_duration_seconds", time.perf_counter() - t0),
                self._meta("scrape_samples_scraped", n)]
        return out


def scrape_collectors(raw: Any, where: str) -> list[tuple[ScrapeCollector, float]]:
    """(collector, interval seconds) per target of ``scrape_configs`` (raises ConfigError)."""
    out: list[tuple[ScrapeCollector, float]] = []
    for cfg in parse_scrape_configs(raw, where):
        for target in targets_from_groups(cfg, static_groups(cfg)).active:
            out.append((ScrapeCollector(cfg, target), target.interval))
    return out
