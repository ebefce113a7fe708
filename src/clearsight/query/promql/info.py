"""``info(v [, {data label selector}])``: adds the data labels of matching info metrics
(``target_info`` by default) to the series of ``v``, joined on the identifying labels
``instance`` and ``job`` (the ones the base series has).

Semantics follow Prometheus 3 (experimental function): info series are looked up with the same
``@``/offset as the first selector of ``v``; when several info series of one metric match at a
step the one with the newest sample wins; base series that are themselves info metrics pass
through unchanged; a data-label matcher that does not match the empty string drops base samples
without a matching info series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clearsight.model.labels import Labels
from clearsight.model.matchers import Matcher, MatchType
from clearsight.model.samples import stale_mask
from clearsight.query.promql.ast import (
    Call,
    Expr,
    MatrixSelector,
    SubqueryExpr,
    VectorSelector,
)
from clearsight.query.promql.values import I64, BoolArr, QueryError, Value, VectorSteps
from clearsight.query.promql.vecutil import labels_string, merge_rows

if TYPE_CHECKING:
    from clearsight.query.promql.engine import Evaluator

TARGET_INFO = "target_info"
IDENTIFYING_LABELS = ("instance", "job")


def _children(node: Expr) -> list[Expr]:
    from clearsight.query.promql.engine import _children as children

    return children(node)


def _reference(ev: Evaluator, expr: Expr) -> tuple[int | None, int]:
    """(@ timestamp or None, offset ms) of the first vector selector in ``expr``, including the
    offsets (and the @) of the subqueries around it."""

    def walk(node: Expr, path: list[Expr]) -> tuple[int | None, int] | None:
        if isinstance(node, MatrixSelector):
            return walk(node.vector, [*path, node])
        if isinstance(node, VectorSelector):
            at = ev.at_time(node.at) if node.at is not None else None
            offset = ev.duration_ms(node.offset)
            for parent in reversed(path):
                if at is not None:
                    break
                if isinstance(parent, SubqueryExpr):
                    offset += ev.duration_ms(parent.offset)
                    at = ev.at_time(parent.at) if parent.at is not None else None
            return at, offset
        for c in _children(node):
            hit = walk(c, [*path, node])
            if hit is not None:
                return hit
        return None

    found = walk(expr, [])
    return found if found is not None else (None, 0)


def _effective_name_matchers(matchers: list[Matcher]) -> list[Matcher]:
    for m in matchers:
        if m.type in (MatchType.EQ, MatchType.RE):
            return matchers
    if matchers:
        return [Matcher.of(MatchType.RE, "__name__", ".+_info"), *matchers]
    return [Matcher.of(MatchType.EQ, "__name__", TARGET_INFO)]


def _regex_quote(v: str) -> str:
    out = []
    for ch in v:
        if ch in r"\.+*?()|[]{}^$":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def evaluate_info(ev: Evaluator, e: Call, ts: I64) -> Value:
    if not e.args:
        raise QueryError("info() needs an instant vector argument")
    base_v = ev.eval(e.args[0], ts)
    if not isinstance(base_v, VectorSteps):
        raise QueryError("info() expects an instant vector as its first argument")
    k = ts.shape[0]
    data_matchers: dict[str, list[Matcher]] = {}
    name_matchers: list[Matcher] = []
    if len(e.args) > 1:
        sel = e.args[1]
        if not isinstance(sel, VectorSelector):
            raise QueryError("info() expects a label selector as its second argument")
        for m in sel.matchers:
            data_matchers.setdefault(m.name, []).append(m)
            if m.name == "__name__":
                name_matchers.append(m)
    else:
        name_matchers = [Matcher.of(MatchType.EQ, "__name__", TARGET_INFO)]
    effective = _effective_name_matchers(name_matchers)
    ignore = [all(m.matches(dict(lbl).get("__name__", "")) for m in effective) for lbl in base_v.labels]

    # Identifying label values of the non-ignored base series.
    id_values: dict[str, set[str]] = {}
    for lbl, ign in zip(base_v.labels, ignore, strict=True):
        if ign:
            continue
        d = dict(lbl)
        for name in IDENTIFYING_LABELS:
            val = d.get(name, "")
            if val:
                id_values.setdefault(name, set()).add(val)
    data_nonname = {n: ms for n, ms in data_matchers.items() if n != "__name__"}

    info_labels: list[Labels] = []
    info_orig_t = np.zeros((0, k), dtype=np.int64)
    info_present = np.zeros((0, k), dtype=bool)
    if id_values:
        matchers: list[Matcher] = [Matcher.of(MatchType.RE, n, "|".join(_regex_quote(v) for v in sorted(vals)))
                                   for n, vals in id_values.items()]
        for ms in data_nonname.values():
            matchers.extend(ms)
        matchers.extend(_effective_name_matchers(list(name_matchers)))
        at, offset = _reference(ev, e.args[0])
        eff = (np.full(ts.shape, at, dtype=np.int64) if at is not None else ts) - np.int64(offset)
        ev.budget.check()  # (Evaluator.select does not: the base vector was evaluated since the node began)
        data = ev.select(matchers, int(eff.min()) - ev.lookback + 1, int(eff.max()))
        n = len(data)
        info_hs = data.histograms
        base_any = base_v.present.any(axis=0) if base_v.num_series else np.zeros(k, dtype=bool)
        info_orig_t = np.zeros((n, k), dtype=np.int64)
        info_present = np.zeros((n, k), dtype=bool)
        for i in range(n):
            a, b = int(data.offsets[i]), int(data.offsets[i + 1])
            st = data.timestamps[a:b]
            sv = data.values[a:b]
            idx = np.searchsorted(st, eff, side="right") - 1
            idxc = np.maximum(idx, 0)
            ok = (idx >= 0) & (st[idxc] > eff - ev.lookback) & ~stale_mask(sv[idxc])
            info_orig_t[i] = st[idxc]
            info_present[i] = ok
            if info_hs is not None and bool((np.asarray(info_hs[a:b])[idxc] != None)[ok & base_any].any()):  # noqa: E711
                raise QueryError("info sample should be float")
        info_labels = list(data.labels)

    # Signatures: (info metric name, identifying labels).
    def sig(name: str, lbl: Labels) -> tuple[str, Labels]:
        return name, tuple(p for p in lbl if p[0] in IDENTIFYING_LABELS)

    info_names = sorted({dict(lbl).get("__name__", "") for lbl in info_labels})
    by_sig: dict[tuple[str, Labels], list[int]] = {}
    for j, lbl in enumerate(info_labels):
        by_sig.setdefault(sig(dict(lbl).get("__name__", ""), lbl), []).append(j)
    # Per signature and step: the info row with the newest sample (-1 = none).
    chosen: dict[tuple[str, Labels], np.ndarray] = {}
    for s, rows in by_sig.items():
        best = np.full(k, -1, dtype=np.int64)
        best_t = np.full(k, np.iinfo(np.int64).min, dtype=np.int64)
        for j in rows:
            p = info_present[j]
            t = info_orig_t[j]
            tie = p & (best >= 0) & (t == best_t)
            if tie.any():
                col = int(np.argmax(tie))
                raise QueryError(
                    f"found duplicate series for info metric: existing {labels_string(info_labels[int(best[col])])} "
                    f"@ {int(best_t[col])}, new {labels_string(info_labels[j])} @ {int(t[col])}")
            newer = p & (t > best_t)
            best = np.where(newer, j, best)
            best_t = np.where(newer, t, best_t)
        chosen[s] = best

    all_match_empty = all(m.matches("") for ms in data_nonname.values() for m in ms)
    out_labels: list[Labels] = []
    out_vals: list[np.ndarray] = []
    out_pres: list[BoolArr] = []
    out_drop: list[bool] = []
    out_hist: list[np.ndarray | None] = []
    base_drop = base_v.drop_name if base_v.drop_name is not None else np.zeros(base_v.num_series, dtype=bool)
    for i, lbl in enumerate(base_v.labels):
        pres = base_v.present[i]
        if ignore[i]:
            out_labels.append(lbl)
            out_vals.append(base_v.values[i])
            out_pres.append(pres)
            out_drop.append(bool(base_drop[i]))
            out_hist.append(base_v.hist[i] if base_v.hist is not None else None)
            continue
        picks = [chosen.get(sig(name, lbl), np.full(k, -1, dtype=np.int64)) for name in info_names]
        combo = np.vstack(picks) if picks else np.full((0, k), -1, dtype=np.int64)
        steps = np.nonzero(pres)[0]
        if steps.size == 0:
            continue
        # Distinct combinations of chosen info series over the steps (vectorized grouping).
        combos, inv = np.unique(combo[:, steps].T.reshape(steps.size, -1), axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        base_map = dict(lbl)
        for ci in range(combos.shape[0]):
            cols = steps[inv == ci]
            matched = [int(x) for x in combos[ci] if x >= 0]
            if not matched and not all_match_empty:
                continue
            extra: dict[str, str] = {}
            for x in matched:
                for name, value in info_labels[x]:
                    if name == "__name__":
                        continue
                    if data_nonname and name not in data_nonname:
                        continue
                    prev = extra.get(name, "")
                    if prev and prev != value:
                        raise QueryError(f"conflicting label: {name}")
                    if name in base_map:
                        continue
                    extra[name] = value
            new = dict(base_map)
            new.update(extra)
            mask = np.zeros(k, dtype=bool)
            mask[cols] = True
            out_labels.append(tuple(sorted(new.items())))
            out_vals.append(base_v.values[i])
            out_pres.append(mask)
            out_drop.append(bool(base_drop[i]))
            out_hist.append(base_v.hist[i] if base_v.hist is not None else None)
    if not out_labels:
        return VectorSteps.empty(k)
    hist = None
    if any(h is not None for h in out_hist):
        hist = np.vstack([h if h is not None else np.full(k, None, dtype=object) for h in out_hist])
    res = VectorSteps(out_labels, np.vstack(out_vals), np.vstack(out_pres), np.asarray(out_drop, dtype=bool),
                      None, hist)
    return merge_rows(res, strict=k > 1)
