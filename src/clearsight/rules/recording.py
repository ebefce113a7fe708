"""Recording rules: evaluate an expression, rename the result to the rule's name, set its labels."""

from __future__ import annotations

from clearsight.model.labels import METRIC_NAME, Labels, with_label
from clearsight.rules.model import RuleSpec
from clearsight.rules.types import QueryFunc


class RuleEvalError(Exception):
    """An evaluation error of one rule (its message is the rule's lastError)."""


class RecordingRule:
    kind = "recording"

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.health = "unknown"
        self.last_error = ""
        self.last_eval_ms = 0
        self.eval_seconds = 0.0

    def eval(self, ts_ms: int, query: QueryFunc, limit: int = 0) -> list[tuple[Labels, float]]:
        """The samples to record at ``ts_ms``. Raises RuleEvalError as Prometheus fails such a rule."""
        try:
            vec = query(self.spec.expr, ts_ms)
        except Exception as e:
            raise RuleEvalError(str(e)) from e
        out: list[tuple[Labels, float]] = []
        seen: set[Labels] = set()
        for s in vec:
            lbls = with_label(s.labels, METRIC_NAME, self.name)
            for k, v in self.spec.labels:
                lbls = with_label(lbls, k, v)
            if lbls in seen:
                raise RuleEvalError("vector contains metrics with the same labelset after applying rule labels")
            seen.add(lbls)
            out.append((lbls, s.value))
        if limit > 0 and len(out) > limit:
            raise RuleEvalError(f"exceeded limit of {limit} with {len(out)} series")
        return out
