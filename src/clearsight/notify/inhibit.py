"""Inhibition: a firing alert matching a rule's source mutes alerts matching its target when the
labels listed in ``equal`` have the same values (absent counts as empty), as in Alertmanager.

An alert never inhibits itself; when an alert matches both sides of a rule, it is only inhibited by
sources that do not also match the target (Alertmanager's "two-sided match" exclusion).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from clearsight.model.matchers import matches_all
from clearsight.notify.alert import Alert
from clearsight.notify.config import InhibitRule


def _lab(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class Inhibitor:
    def __init__(self, rules: Sequence[InhibitRule]) -> None:
        self._rules = list(rules)
        # per rule: equal-values -> [(fingerprint, matches target too)]
        self._index: list[dict[tuple[str, ...], list[tuple[str, bool]]]] = [{} for _ in self._rules]

    def rebuild(self, firing: Iterable[Alert]) -> None:
        """Indexes the firing alerts that are sources of some rule."""
        self._index = [{} for _ in self._rules]
        for a in firing:
            lab = _lab(a.labels)
            for i, r in enumerate(self._rules):
                if matches_all(r.source, lab):
                    key = tuple(a.labels.get(n, "") for n in r.equal)
                    self._index[i].setdefault(key, []).append((a.fingerprint, matches_all(r.target, lab)))

    def inhibited_by(self, alert: Alert) -> list[str]:
        if not self._rules:
            return []
        lab = _lab(alert.labels)
        fp = alert.fingerprint
        out: list[str] = []
        for i, r in enumerate(self._rules):
            if not matches_all(r.target, lab):
                continue
            two_sided = matches_all(r.source, lab)
            for src_fp, src_is_target in self._index[i].get(tuple(alert.labels.get(n, "") for n in r.equal), ()):
                if src_fp == fp or (two_sided and src_is_target):
                    continue
                out.append(src_fp)
                break
        return out
