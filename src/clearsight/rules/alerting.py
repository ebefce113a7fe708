"""Alerting rules: the inactive -> pending -> firing -> resolved state machine of Prometheus
(``rules/alerting.go``), with ``for``, ``keep_firing_for``, ``limit``, label/annotation templates,
the ``ALERTS``/``ALERTS_FOR_STATE`` samples and the choice of alerts to (re)send."""

from __future__ import annotations

import datetime as _dt
import logging
import urllib.parse
from dataclasses import dataclass
from typing import Any

from clearsight.model.labels import METRIC_NAME, Labels, make_labels, with_label
from clearsight.rules import template
from clearsight.rules.model import RuleSpec
from clearsight.rules.recording import RuleEvalError
from clearsight.rules.types import QueryFunc

log = logging.getLogger("clearsight.rules")

INACTIVE, PENDING, FIRING = "inactive", "pending", "firing"
# A resolved alert is kept (and re-sent as resolved) this long, as Prometheus' resolvedRetention.
RESOLVED_RETENTION_MS = 15 * 60_000


@dataclass
class Alert:
    labels: Labels
    annotations: Labels
    state: str
    value: float
    active_at_ms: int
    fired_at_ms: int = 0
    resolved_at_ms: int = 0
    last_sent_at_ms: int | None = None  # None: never sent
    valid_until_ms: int = 0
    keep_firing_since_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"labels": dict(self.labels), "annotations": dict(self.annotations), "state": self.state,
                "value": self.value, "active_at_ms": self.active_at_ms, "fired_at_ms": self.fired_at_ms,
                "resolved_at_ms": self.resolved_at_ms, "last_sent_at_ms": self.last_sent_at_ms,
                "valid_until_ms": self.valid_until_ms, "keep_firing_since_ms": self.keep_firing_since_ms}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Alert:
        return Alert(labels=make_labels(d["labels"]), annotations=make_labels(d["annotations"]),
                     state=str(d["state"]), value=float(d["value"]), active_at_ms=int(d["active_at_ms"]),
                     fired_at_ms=int(d["fired_at_ms"]), resolved_at_ms=int(d["resolved_at_ms"]),
                     last_sent_at_ms=None if d["last_sent_at_ms"] is None else int(d["last_sent_at_ms"]),
                     valid_until_ms=int(d["valid_until_ms"]),
                     keep_firing_since_ms=int(d["keep_firing_since_ms"]))


def rfc3339(ms: int) -> str:
    t = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class AlertingRule:
    kind = "alerting"

    def __init__(self, spec: RuleSpec, external_labels: dict[str, str] | None = None,
                 external_url: str = "") -> None:
        self.spec = spec
        self.name = spec.name
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.active: dict[Labels, Alert] = {}
        self.health = "unknown"
        self.last_error = ""
        self.last_eval_ms = 0
        self.eval_seconds = 0.0

    # ------------------------------------------------------------------ evaluation

    def _expand(self, src: str, data: template.TemplateData, query: QueryFunc, ts_ms: int) -> str:
        try:
            return template.expand(src, data, query, ts_ms, name=f"__alert_{self.name}")
        except template.TemplateError as e:
            log.warning("expanding alert template failed", extra={"alert": self.name, "error": str(e)})
            return f"<error expanding template: {e}>"

    def eval(self, ts_ms: int, query: QueryFunc, limit: int = 0) -> list[tuple[Labels, float]]:
        """Runs one evaluation at ``ts_ms``; returns the ALERTS and ALERTS_FOR_STATE samples."""
        try:
            vec = query(self.spec.expr, ts_ms)
        except Exception as e:
            raise RuleEvalError(str(e)) from e
        found: dict[Labels, Alert] = {}
        for s in vec:
            data = template.TemplateData(Labels=dict(s.labels), ExternalLabels=self.external_labels,
                                         ExternalURL=self.external_url, Value=s.value)
            lbls = with_label(s.labels, METRIC_NAME, "")
            for k, v in self.spec.labels:
                lbls = with_label(lbls, k, self._expand(v, data, query, ts_ms))
            lbls = with_label(lbls, "alertname", self.name)
            annotations = make_labels([(k, self._expand(v, data, query, ts_ms)) for k, v in self.spec.annotations])
            if lbls in found:
                raise RuleEvalError("vector contains metrics with the same labelset after applying alert labels")
            found[lbls] = Alert(labels=lbls, annotations=annotations, state=PENDING, value=s.value,
                                active_at_ms=ts_ms)
        for key, a in found.items():
            old = self.active.get(key)
            if old is not None and old.state != INACTIVE:
                old.value = a.value
                old.annotations = a.annotations
                continue
            self.active[key] = a
        out: list[tuple[Labels, float]] = []
        n_active = 0
        for key in list(self.active):
            a = self.active[key]
            if key not in found:
                keep_firing = False
                if a.state == FIRING and self.spec.keep_firing_for_ms > 0:
                    if a.keep_firing_since_ms == 0:
                        a.keep_firing_since_ms = ts_ms
                    if ts_ms - a.keep_firing_since_ms < self.spec.keep_firing_for_ms:
                        keep_firing = True
                if a.state == PENDING or (a.resolved_at_ms and ts_ms - a.resolved_at_ms > RESOLVED_RETENTION_MS):
                    del self.active[key]
                if a.state != INACTIVE and not keep_firing:
                    a.state = INACTIVE
                    a.resolved_at_ms = ts_ms
                if not keep_firing:
                    continue
            else:
                a.keep_firing_since_ms = 0
            n_active += 1
            if a.state == PENDING and ts_ms - a.active_at_ms >= self.spec.for_ms:
                a.state = FIRING
                a.fired_at_ms = ts_ms
            out.append((with_label(with_label(a.labels, METRIC_NAME, "ALERTS"), "alertstate", a.state), 1.0))
            out.append((with_label(a.labels, METRIC_NAME, "ALERTS_FOR_STATE"), a.active_at_ms // 1000 * 1.0))
        if limit > 0 and n_active > limit:
            self.active = {}
            raise RuleEvalError(f"exceeded limit of {limit} with {n_active} alerts")
        return out

    # ------------------------------------------------------------------ views

    # Views copy ``active`` first (one C-level step under the GIL): the evaluation thread may be
    # changing it while the API reads.
    def state(self) -> str:
        states = {a.state for a in list(self.active.values())}
        return FIRING if FIRING in states else PENDING if PENDING in states else INACTIVE

    def active_alerts(self) -> list[Alert]:
        """Pending and firing alerts (resolved ones kept for re-sending are left out)."""
        return [a for a in list(self.active.values()) if a.state != INACTIVE]

    def alerts_to_send(self, ts_ms: int, resend_delay_ms: int, interval_ms: int) -> list[dict[str, Any]]:
        """Alertmanager API v2 postable alerts that are due at ``ts_ms`` (Prometheus' sendAlerts)."""
        out: list[dict[str, Any]] = []
        delta = max(resend_delay_ms, interval_ms)
        for a in self.active.values():
            if a.state == PENDING:
                continue
            last = a.last_sent_at_ms
            due = last is None or a.resolved_at_ms > last or last + resend_delay_ms < ts_ms
            if not due:
                continue
            a.last_sent_at_ms = ts_ms
            a.valid_until_ms = ts_ms + 4 * delta
            ends = a.resolved_at_ms if a.resolved_at_ms else a.valid_until_ms
            out.append({"labels": dict(a.labels), "annotations": dict(a.annotations),
                        "startsAt": rfc3339(a.fired_at_ms), "endsAt": rfc3339(ends),
                        "generatorURL": self.generator_url()})
        return out

    def generator_url(self) -> str:
        q = urllib.parse.quote(self.spec.expr, safe="")
        return f"{self.external_url.rstrip('/')}/graph?g0.expr={q}&g0.tab=1"
