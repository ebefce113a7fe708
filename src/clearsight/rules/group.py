"""A rule group: rules evaluated in order at one timestamp, results written in one batch, stale
markers for series a rule stopped returning, alerts handed to the notify function."""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from clearsight.model.labels import Labels
from clearsight.model.samples import STALE_NAN
from clearsight.rules.alerting import PENDING, Alert, AlertingRule
from clearsight.rules.model import GroupSpec
from clearsight.rules.recording import RecordingRule, RuleEvalError
from clearsight.rules.types import NotifyFunc, QueryFailed, QueryFunc, QueryScope, Vector, WriteFunc

log = logging.getLogger("clearsight.rules")

Rule = AlertingRule | RecordingRule

# After a restart a pending alert gets at least this long before it fires (Prometheus'
# rules.alert.for-grace-period default).
FOR_GRACE_PERIOD_MS = 10 * 60_000


def _no_logql(expr: str, time_ms: int) -> Vector:
    raise QueryFailed("this rule is in LogQL and no log store is wired to the rule manager")


@dataclass
class GroupStats:
    evaluations: int = 0
    failures: int = 0
    iterations: int = 0
    missed: int = 0
    last_duration_s: float = 0.0
    last_eval_ms: int = 0
    samples: int = 0


@dataclass
class EvalOptions:
    resend_delay_ms: int = 60_000
    external_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""


class Group:
    def __init__(self, spec: GroupSpec, default_interval_ms: int, opts: EvalOptions | None = None) -> None:
        self.spec = spec
        self.opts = opts or EvalOptions()
        self.interval_ms = spec.interval_ms or default_interval_ms
        self.rules: list[Rule] = [
            AlertingRule(r, self.opts.external_labels, self.opts.external_url) if r.kind == "alerting"
            else RecordingRule(r) for r in spec.rules]
        # A rule's results are written before the next rule runs when a later rule of the group may
        # read them (its expression mentions the recorded name, or ALERTS); otherwise the group's
        # results are written together, once per evaluation.
        self.flush_after = [any((r.spec.name if r.kind == "recording" else "ALERTS") in later.spec.expr
                                for later in self.rules[i + 1:]) for i, r in enumerate(self.rules)]
        # Series each rule wrote in its last evaluation (for stale markers). The set is replaced
        # only when it changes, so its saved JSON (``_series_json``, kept with the set) is reused.
        self.prev_series: list[set[Labels]] = [set() for _ in self.rules]
        self._series_json: list[tuple[set[Labels], orjson.Fragment] | None] = [None] * len(self.rules)
        # Kept across evaluations for the query scope (it may keep read hints here).
        self.query_memo: dict[Any, Any] = {}
        self.stats = GroupStats()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def file(self) -> str:
        return self.spec.file

    def hash_offset_ms(self) -> int:
        """The group's stable offset inside its interval (spreads groups as Prometheus does)."""
        return zlib.crc32(f"{self.spec.name};{self.spec.file}".encode()) % self.interval_ms

    def eval_timestamp(self, now_ms: int) -> int:
        """The latest slot at or before ``now_ms``: ``k * interval + offset`` (manager.go EvalTimestamp)."""
        offset = self.hash_offset_ms()
        adj = now_ms - offset
        return adj - adj % self.interval_ms + offset

    def eval(self, ts_ms: int, query: QueryFunc, write: WriteFunc, notify: NotifyFunc | None,
             log_query: QueryFunc | None = None, scope: QueryScope | None = None) -> None:
        """Evaluates every rule at ``ts_ms`` in order; one write of all samples and stale markers.
        Rules in LogQL (simple log and event rules) use ``log_query``. With ``scope`` the PromQL
        rules share one query function per run of rules between synchronous writes (it may share
        store reads between them); a synchronous write opens a new one, so later rules see it."""
        t0 = time.perf_counter()
        out: list[tuple[Labels, int, float]] = []
        to_send: list[dict[str, Any]] = []
        written = 0
        promql = scope(ts_ms, self.query_memo) if scope is not None else query
        for i, rule in enumerate(self.rules):
            r0 = time.perf_counter()
            self.stats.evaluations += 1
            try:
                samples = rule.eval(ts_ms, promql if rule.spec.language == "promql" else (log_query or _no_logql),
                                    self.spec.limit)
            except RuleEvalError as e:
                rule.health, rule.last_error = "err", str(e)
                self.stats.failures += 1
                log.warning("rule evaluation failed", extra={"group": self.name, "rule": rule.name,
                                                             "error": str(e)})
                continue
            finally:
                rule.last_eval_ms = ts_ms
                rule.eval_seconds = time.perf_counter() - r0
            rule.health, rule.last_error = "ok", ""
            if isinstance(rule, AlertingRule):
                to_send.extend(rule.alerts_to_send(ts_ms, self.opts.resend_delay_ms, self.interval_ms))
            seen: set[Labels] = set()
            for lbls, v in samples:
                out.append((lbls, ts_ms, v))
                seen.add(lbls)
            prev = self.prev_series[i]
            gone = prev - seen
            for lbls in gone:
                out.append((lbls, ts_ms, STALE_NAN))
            if gone or len(seen) != len(prev):  # otherwise the same set: keep it (and its JSON)
                self.prev_series[i] = seen
            if self.flush_after[i]:
                written += self._write(write, out, True)
                out = []
                if scope is not None:
                    promql = scope(ts_ms, self.query_memo)
        written += self._write(write, out, False)
        if to_send and notify is not None:
            try:
                notify(to_send)
            except Exception as e:
                log.warning("notifying alerts failed", extra={"group": self.name, "error": str(e)})
        self.stats.samples = written
        self.stats.iterations += 1
        self.stats.last_eval_ms = ts_ms
        self.stats.last_duration_s = time.perf_counter() - t0

    def _write(self, write: WriteFunc, samples: list[tuple[Labels, int, float]], sync: bool) -> int:
        if not samples:
            return 0
        try:
            write(samples, sync)
        except Exception as e:  # the store refused: log, keep evaluating next time
            log.warning("writing rule results failed", extra={"group": self.name, "error": str(e)})
        return len(samples)

    def stale_markers(self, ts_ms: int, keep: set[int] | None = None) -> list[tuple[Labels, int, float]]:
        """Stale markers at ``ts_ms`` for every series the group's rules wrote last (rules whose
        index is in ``keep`` excepted)."""
        return [(lbls, ts_ms, STALE_NAN) for i, series in enumerate(self.prev_series)
                if keep is None or i not in keep for lbls in series]

    # ------------------------------------------------------------------ state carried over

    def copy_state_from(self, old: Group) -> set[int]:
        """Takes alert state and written series of identical rules from ``old`` (a reload);
        returns the indexes of ``old``'s rules that found a successor."""
        by_identity: dict[Any, list[int]] = {}
        for j, r in enumerate(old.rules):
            by_identity.setdefault(r.spec.identity(), []).append(j)
        used: set[int] = set()
        for i, r in enumerate(self.rules):
            candidates = by_identity.get(r.spec.identity())
            if not candidates:
                continue
            j = candidates.pop(0)
            used.add(j)
            o = old.rules[j]
            self.prev_series[i] = old.prev_series[j]
            r.health, r.last_error, r.last_eval_ms, r.eval_seconds = o.health, o.last_error, o.last_eval_ms, \
                o.eval_seconds
            if isinstance(r, AlertingRule) and isinstance(o, AlertingRule):
                r.active = o.active
        self.stats = old.stats
        return used

    def state_bytes(self, saved_at_ms: int) -> bytes:
        """The group's state as saved (JSON): a rule's series are serialised again only when they
        changed since the last save."""
        rules = []
        for i, r in enumerate(self.rules):
            rules.append({"identity": list(_jsonable(r.spec.identity())), "series": self._series_fragment(i),
                          "alerts": [a.to_json() for a in r.active.values()] if isinstance(r, AlertingRule) else []})
        return orjson.dumps({"file": self.file, "name": self.name, "rules": rules, "saved_at_ms": saved_at_ms})

    def _series_fragment(self, i: int) -> orjson.Fragment:
        series = self.prev_series[i]
        cached = self._series_json[i]
        if cached is None or cached[0] is not series:
            cached = (series, orjson.Fragment(orjson.dumps([list(map(list, s)) for s in series])))
            self._series_json[i] = cached
        return cached[1]

    def state_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = orjson.loads(self.state_bytes(0))
        del doc["saved_at_ms"]
        return doc

    def restore_state(self, state: dict[str, Any], restore_alerts: bool, now_ms: int | None = None,
                      grace_ms: int = FOR_GRACE_PERIOD_MS) -> None:
        """Takes saved state of identical rules. Pending alerts do not count the downtime (from
        ``saved_at_ms`` to ``now_ms``) toward ``for``, as Prometheus' RestoreForState, and get at
        least ``grace_ms`` before they fire; firing alerts stay firing."""
        saved: dict[Any, list[dict[str, Any]]] = {}
        for item in state.get("rules", []):
            saved.setdefault(_hashable(item["identity"]), []).append(item)
        for i, r in enumerate(self.rules):
            items = saved.get(_hashable(_jsonable(r.spec.identity())))
            if not items:
                continue
            item = items.pop(0)
            self.prev_series[i] = {tuple((str(k), str(v)) for k, v in s) for s in item.get("series", [])}
            if restore_alerts and isinstance(r, AlertingRule):
                alerts = [Alert.from_json(a) for a in item.get("alerts", [])]
                down_ms = int(state.get("saved_at_ms", 0))
                if now_ms is not None and down_ms:
                    for a in alerts:
                        if a.state == PENDING:
                            _shift_pending(a, r.spec.for_ms, down_ms, now_ms, grace_ms)
                r.active = {a.labels: a for a in alerts}


def _shift_pending(a: Alert, for_ms: int, down_ms: int, now_ms: int, grace_ms: int) -> None:
    remaining = for_ms - (down_ms - a.active_at_ms)
    if remaining <= 0:
        return  # it would have fired: the next evaluation fires it if it is still active
    if remaining < grace_ms:
        a.active_at_ms = now_ms + grace_ms - for_ms
    else:
        a.active_at_ms += now_ms - down_ms


def _jsonable(x: Any) -> Any:
    if isinstance(x, tuple | list):
        return [_jsonable(v) for v in x]
    return x


def _hashable(x: Any) -> Any:
    if isinstance(x, list):
        return tuple(_hashable(v) for v in x)
    return x
