"""The log pipeline steps in their order, built from ``LogPipelineSettings`` (``server.py`` calls
``build_log_steps`` and hands the list to ``LogIngestor``):

1. rate limits (cheap; a refused push costs no scrubbing),
2. dedup (fewer lines to scrub; equal raw lines scrub to equal lines, so the order is safe),
3. PII scrubbing,
4. enrichment with resource and host metadata (after scrubbing: added metadata is the operator's,
   not the sender's, and is not scrubbed).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter

from clearsight.model.logs import LogBatch
from clearsight.pipeline.log_dedup import make_dedup_step
from clearsight.pipeline.log_enrich import HostMetadata, make_enrich_step
from clearsight.pipeline.log_rate_limit import LogRateLimiter
from clearsight.pipeline.log_settings import LogPipelineSettings
from clearsight.pipeline.pii import PiiScrubber, make_pii_step

LogStep = Callable[[str, LogBatch], LogBatch]


def build_log_steps(settings: LogPipelineSettings, pii_secret: Callable[[], bytes],
                    registry: CollectorRegistry | None = None,
                    host_metadata: HostMetadata = lambda _tenant, _host: {}) -> list[LogStep]:
    """Only the steps some tenant uses; ``pii_secret`` is called only when scrubbing is on;
    ``host_metadata(tenant, hostname)`` serves ``enrich.hosts``."""
    every = [settings.default, *settings.tenants.values()]
    steps: list[LogStep] = []
    if any(s.rate_lines > 0 or s.rate_bytes > 0 for s in every):
        steps.append(LogRateLimiter(settings.for_tenant).check)
    if any(s.dedup_window_ns > 0 for s in every):
        collapsed = Counter("clearsight_log_lines_deduplicated_total",
                            "Log entries collapsed into an earlier identical entry (its repeat_count).",
                            ["tenant"], registry=registry)
        steps.append(make_dedup_step(lambda t: settings.for_tenant(t).dedup_window_ns,
                                     lambda t, n: collapsed.labels(t).inc(n)))
    if any(s.pii.active for s in every):
        secret = pii_secret()
        default = PiiScrubber(settings.default.pii, secret) if settings.default.pii.active else None
        scrubbers = {t: (PiiScrubber(s.pii, secret) if s.pii.active else None) for t, s in settings.tenants.items()}
        replaced = Counter("clearsight_log_pii_replacements_total",
                           "PII matches replaced by their keyed hash in log bodies and attributes.",
                           ["tenant"], registry=registry)
        steps.append(make_pii_step(lambda t: scrubbers.get(t, default), lambda t, n: replaced.labels(t).inc(n)))
    if any(s.enriches for s in every):
        def enrich_of(t: str) -> tuple[dict[str, str], bool]:
            s = settings.for_tenant(t)
            return dict(s.enrich_resource), s.enrich_hosts

        steps.append(make_enrich_step(enrich_of, host_metadata))
    return steps
