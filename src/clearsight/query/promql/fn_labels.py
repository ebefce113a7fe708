"""Functions that work on series rather than values: label_replace, label_join, the sort family,
absent()."""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np

from clearsight.model.labels import METRIC_NAME, Labels, get, with_label
from clearsight.model.matchers import compile_anchored
from clearsight.query.promql.fn_common import (
    arg_string,
    arg_vector,
    input_drop_name,
    is_valid_label_name,
)
from clearsight.query.promql.fn_range import absent_labels
from clearsight.query.promql.values import BoolArr, FuncContext, QueryError, Value, VectorSteps

SAME_LABELSET_ERROR = "vector cannot contain metrics with the same labelset"
SORT_IN_RANGE_WARNING = (
    "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"
)


def merge_same_labelset(labels: list[Labels], v: VectorSteps, drop_name: BoolArr) -> VectorSteps:
    """Series that ended up with identical labels are merged when they never have a value at the
    same step; otherwise evaluation fails (Prometheus' ``mergeSeriesWithSameLabelset``)."""
    groups: dict[Labels, list[int]] = {}
    for i, lbls in enumerate(labels):
        groups.setdefault(lbls, []).append(i)
    if len(groups) == len(labels):
        return VectorSteps(labels, v.values.copy(), v.present.copy(), drop_name)
    k = v.values.shape[1]
    out_labels: list[Labels] = []
    vals = np.empty((len(groups), k))
    present = np.empty((len(groups), k), dtype=bool)
    drops = np.empty(len(groups), dtype=bool)
    for g, (lbls, rows) in enumerate(groups.items()):
        out_labels.append(lbls)
        drops[g] = drop_name[rows[0]]
        if len(rows) == 1:
            vals[g] = v.values[rows[0]]
            present[g] = v.present[rows[0]]
            continue
        sub = v.present[rows]
        if (sub.sum(axis=0) > 1).any():
            raise QueryError(SAME_LABELSET_ERROR)
        pick = np.argmax(sub, axis=0)
        vals[g] = v.values[np.asarray(rows)[pick], np.arange(k)]
        present[g] = sub.any(axis=0)
    vals = np.where(present, vals, np.nan)
    return VectorSteps(out_labels, vals, present, drops)


# ---------------------------------------------------------------------------------------------
# label_replace / label_join


def _is_name_char(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or unicodedata.category(ch) == "Nd"


def _extract(template: str) -> tuple[str, int, str] | None:
    """Go's ``regexp.extract``: parses ``name`` or ``{name}`` after a ``$``."""
    if not template:
        return None
    brace = template[0] == "{"
    s = template[1:] if brace else template
    i = 0
    while i < len(s) and _is_name_char(s[i]):
        i += 1
    if i == 0:
        return None
    name = s[:i]
    if brace:
        if i >= len(s) or s[i] != "}":
            return None
        i += 1
    num = 0
    for ch in name:
        if not ("0" <= ch <= "9") or num >= 100_000_000:
            num = -1
            break
        num = num * 10 + ord(ch) - ord("0")
    if name[0] == "0" and len(name) > 1:
        num = -1
    return name, num, s[i:]


def expand_template(template: str, m: re.Match[str]) -> str:
    """Go's ``Regexp.ExpandString``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""
    out: list[str] = []
    while template:
        before, sep, after = template.partition("$")
        if not sep:
            break
        out.append(before)
        template = after
        if template.startswith("$"):
            out.append("$")
            template = template[1:]
            continue
        parsed = _extract(template)
        if parsed is None:
            out.append("$")
            continue
        name, num, template = parsed
        if num >= 0:
            if num <= m.re.groups and m.group(num) is not None:
                out.append(m.group(num))
        else:
            idx = m.re.groupindex.get(name)
            if idx is not None and m.group(idx) is not None:
                out.append(m.group(idx))
    out.append(template)
    return "".join(out)


def fn_label_replace(ctx: FuncContext, args: list[Value]) -> Value:
    v = arg_vector(args, 0, "label_replace")
    dst = arg_string(args, 1, "label_replace")
    repl = arg_string(args, 2, "label_replace")
    src = arg_string(args, 3, "label_replace")
    regex_str = arg_string(args, 4, "label_replace")
    try:
        regex = compile_anchored(regex_str)  # same dialect and cache as label matchers
    except ValueError as e:
        raise QueryError(f"invalid regular expression in label_replace(): {regex_str}") from e
    if not is_valid_label_name(dst):
        raise QueryError(f"invalid destination label name in label_replace(): {dst}")
    drop = input_drop_name(v).copy()
    labels = list(v.labels)
    for i, lbls in enumerate(labels):
        m = regex.fullmatch(get(lbls, src))
        if m is None:
            continue
        labels[i] = with_label(lbls, dst, expand_template(repl, m))
        if dst == METRIC_NAME:
            drop[i] = False
    return merge_same_labelset(labels, v, drop)


def fn_label_join(ctx: FuncContext, args: list[Value]) -> Value:
    v = arg_vector(args, 0, "label_join")
    dst = arg_string(args, 1, "label_join")
    sep = arg_string(args, 2, "label_join")
    srcs = [arg_string(args, i, "label_join") for i in range(3, len(args))]
    for s in srcs:
        if not is_valid_label_name(s):
            raise QueryError(f"invalid source label name in label_join(): {s}")
    if not is_valid_label_name(dst):
        raise QueryError(f"invalid destination label name in label_join(): {dst}")
    drop = input_drop_name(v).copy()
    labels = list(v.labels)
    for i, lbls in enumerate(labels):
        labels[i] = with_label(lbls, dst, sep.join(get(lbls, s) for s in srcs))
        if dst == METRIC_NAME:
            drop[i] = False
    return merge_same_labelset(labels, v, drop)


# ---------------------------------------------------------------------------------------------
# sorting


def _reorder(v: VectorSteps, order: list[int] | np.typing.NDArray[np.intp]) -> VectorSteps:
    """The rows of ``v`` in ``order``. Like any computed vector, the result carries no sample
    timestamps (``timestamp(sort(x))`` is the evaluation time, as in Prometheus)."""
    idx = np.asarray(order, dtype=np.intp)
    return VectorSteps(
        [v.labels[i] for i in idx],
        v.values[idx],
        v.present[idx],
        None if v.drop_name is None else np.asarray(v.drop_name)[idx],
    )


def _sort_by_value(ctx: FuncContext, args: list[Value], name: str, desc: bool) -> Value:
    v = arg_vector(args, 0, name)
    k = v.values.shape[1]
    if k != 1:
        ctx.annotations.warn(SORT_IN_RANGE_WARNING)
        return _reorder(v, np.arange(v.num_series))
    rows = np.flatnonzero(v.present[:, 0])
    vals = v.values[rows, 0]
    nan = np.isnan(vals)
    key = -vals if desc else vals
    # NaNs last; stable among equal values.
    order = np.lexsort((key, nan))
    return _reorder(v, rows[order])


def fn_sort(ctx: FuncContext, args: list[Value]) -> Value:
    return _sort_by_value(ctx, args, "sort", False)


def fn_sort_desc(ctx: FuncContext, args: list[Value]) -> Value:
    return _sort_by_value(ctx, args, "sort_desc", True)


_CHUNK = re.compile(r"[0-9]+|[^0-9]+")


def natsort_less(a: str, b: str) -> bool:
    """Natural-order "less" with the exact semantics of github.com/facette/natsort, which
    Prometheus uses for sort_by_label (chunks of digits compare as integers)."""
    ca = _CHUNK.findall(a)
    cb = _CHUNK.findall(b)
    for i, xa in enumerate(ca):
        if i >= len(cb):
            return False
        xb = cb[i]
        na = _atoi(xa)
        nb = _atoi(xb)
        if na is not None and nb is not None:
            if na == nb:
                if i == len(ca) - 1:
                    return True
                if i == len(cb) - 1:
                    return False
                continue
            return na < nb
        if xa == xb:
            if i == len(ca) - 1:
                return True
            if i == len(cb) - 1:
                return False
            continue
        return xa < xb
    return False


def _atoi(s: str) -> int | None:
    if not s or not s.isascii() or not s.isdigit():
        return None
    n = int(s)
    return n if n <= (1 << 63) - 1 else None


def _sort_by_label(ctx: FuncContext, args: list[Value], name: str, desc: bool) -> Value:
    v = arg_vector(args, 0, name)
    names = [arg_string(args, i, name) for i in range(1, len(args))]
    if v.values.shape[1] != 1:
        ctx.annotations.warn(SORT_IN_RANGE_WARNING)

    def cmp(i: int, j: int) -> int:
        a, b = v.labels[i], v.labels[j]
        for ln in names:
            va, vb = get(a, ln), get(b, ln)
            if va == vb:
                continue
            less = natsort_less(va, vb)
            if desc:
                return 1 if less else -1
            return -1 if less else 1
        c = (a > b) - (a < b)
        return -c if desc else c

    order = sorted(range(v.num_series), key=functools.cmp_to_key(cmp))
    return _reorder(v, order)


def fn_sort_by_label(ctx: FuncContext, args: list[Value]) -> Value:
    return _sort_by_label(ctx, args, "sort_by_label", False)


def fn_sort_by_label_desc(ctx: FuncContext, args: list[Value]) -> Value:
    return _sort_by_label(ctx, args, "sort_by_label_desc", True)


# ---------------------------------------------------------------------------------------------
# absent


def fn_absent(ctx: FuncContext, args: list[Value]) -> Value:
    v = arg_vector(args, 0, "absent")
    k = int(np.asarray(ctx.step_times).shape[0])
    any_present: BoolArr = np.asarray(v.present.any(axis=0) if v.num_series else np.zeros(k), dtype=bool)
    if any_present.all():
        return VectorSteps.empty(k)
    expr = ctx.arg_exprs[0] if ctx.arg_exprs else None
    present = ~any_present[None, :]
    return VectorSteps([absent_labels(expr)], np.where(present, 1.0, np.nan), present)
