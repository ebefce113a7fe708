"""A store-side prefilter for ``| json`` pipelines (``LogStore.select(prefilter=...)``).

From the label filters right after a parameterless ``| json`` the evaluator derives a necessary
condition on the JSON body that DuckDB checks vectorised, so lines the filters would drop never
reach Python: ``| json | status >= 500`` reads only the lines whose top-level ``status`` is a
number >= 500 (or not a number, or absent from the JSON but present as structured metadata). The
pipeline still runs on every line read, so the prefilter only narrows, never decides: a filter it
cannot express exactly (a name with ``_``, which nested objects can produce; a stream label; a
duration or bytes comparison; ``__error__`` other than ``= ""``) adds no condition. ``__error__=""``
as its own stage lets the store skip bodies that are not JSON objects. Known difference: a JSON key
that only sanitising turns into the filtered name (``" status"``) is not seen by the prefilter.
"""

from __future__ import annotations

from clearsight.query.logql.ast import (
    JsonStage,
    LabelAnd,
    LabelCompare,
    LabelExpr,
    LabelFilterStage,
    LabelOr,
    Stage,
)
from clearsight.query.logql.stages import ERROR
from clearsight.store.logs_interface import BodyPrefilter, JsonFieldTest

MAX_TERMS = 16  # conjunctions of the OR; a larger one adds no condition

Dnf = tuple[tuple[JsonFieldTest, ...], ...] | None  # None: no condition (always true)


def _dnf(e: LabelExpr, stream_labels: frozenset[str]) -> Dnf:
    if isinstance(e, LabelAnd):
        a, b = _dnf(e.left, stream_labels), _dnf(e.right, stream_labels)
        if a is None:
            return b
        if b is None:
            return a
        out = tuple(x + y for x in a for y in b)
        return out if len(out) <= MAX_TERMS else None
    if isinstance(e, LabelOr):
        a, b = _dnf(e.left, stream_labels), _dnf(e.right, stream_labels)
        if a is None or b is None or len(a) + len(b) > MAX_TERMS:
            return None
        return a + b
    return _test(e, stream_labels)


def _test(c: LabelCompare, stream_labels: frozenset[str]) -> Dnf:
    if c.name == ERROR or "_" in c.name or c.name in stream_labels or c.kind in ("duration", "bytes", "ip"):
        return None
    if c.kind == "number":
        return ((JsonFieldTest(c.name, c.op, repr(c.number), True),),)
    return ((JsonFieldTest(c.name, c.op, c.text, False),),)


def json_prefilter(stages: tuple[Stage, ...], stream_labels: frozenset[str]) -> BodyPrefilter | None:
    """The prefilter of a pipeline starting with ``| json`` (None when it has nothing to offer)."""
    if not stages or not isinstance(stages[0], JsonStage) or stages[0].params:
        return None
    require_object = False
    dnf: Dnf = None
    for st in stages[1:]:
        if not isinstance(st, LabelFilterStage):
            break
        e = st.expr
        if isinstance(e, LabelCompare) and e.name == ERROR and e.op == "=" and e.text == "":
            require_object = True
            continue
        d = _dnf(e, stream_labels)
        if d is None:
            continue
        if dnf is None:
            dnf = d
        else:
            merged = tuple(x + y for x in dnf for y in d)
            dnf = merged if len(merged) <= MAX_TERMS else dnf
    if not require_object and dnf is None:
        return None
    return BodyPrefilter(require_object, dnf or ())
