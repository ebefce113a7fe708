"""Small helpers shared by the evaluator modules: label dropping and row merging of VectorSteps."""

from __future__ import annotations

import numpy as np

from clearsight.model.labels import Labels
from clearsight.query.promql.values import QueryError, VectorSteps

# Labels that disappear when a value changes meaning (Prometheus' "metadata labels").
META_LABELS = frozenset({"__name__", "__type__", "__unit__"})

DUPLICATE_LABELSET = "vector cannot contain metrics with the same labelset"


def drop_meta(labels: Labels) -> Labels:
    return tuple(p for p in labels if p[0] not in META_LABELS)


def drop_flag(v: VectorSteps) -> np.ndarray:
    if v.drop_name is None:
        return np.zeros(v.num_series, dtype=bool)
    return v.drop_name


def apply_drop_name(v: VectorSteps) -> VectorSteps:
    """Removes the metric name (and type/unit) from rows flagged for it; clears the flags."""
    if v.drop_name is None or not v.drop_name.any():
        return VectorSteps(v.labels, v.values, v.present, None, v.sample_ts, v.hist)
    labels = [drop_meta(lbl) if d else lbl for lbl, d in zip(v.labels, v.drop_name, strict=True)]
    return VectorSteps(labels, v.values, v.present, None, v.sample_ts, v.hist)


def merge_rows(v: VectorSteps, strict: bool = True) -> VectorSteps:
    """Merges rows with the same label set (they come from different steps).

    Raises the duplicate-labelset error when two such rows are present at the same step and
    ``strict`` is set; otherwise the first row wins at that step."""
    n = v.num_series
    if n <= 1 or len(set(v.labels)) == n:  # the common case, checked at C speed
        return v
    first: dict[Labels, int] = {}
    groups: dict[int, list[int]] = {}
    for i, lbl in enumerate(v.labels):
        j = first.get(lbl)
        if j is None:
            first[lbl] = i
        else:
            groups.setdefault(j, [j]).append(i)
    if not groups:
        return v
    values = v.values.copy()
    present = v.present.copy()
    drop = drop_flag(v).copy()
    sample_ts = v.sample_ts.copy() if v.sample_ts is not None else None
    hist = v.hist.copy() if v.hist is not None else None
    removed = np.zeros(n, dtype=bool)
    for j, rows in groups.items():
        for i in rows[1:]:
            overlap = present[j] & present[i]
            if overlap.any() and strict:
                raise QueryError(DUPLICATE_LABELSET)
            take = present[i] & ~present[j]
            values[j, take] = values[i, take]
            if sample_ts is not None:
                sample_ts[j, take] = sample_ts[i, take]
            if hist is not None:
                hist[j, take] = hist[i, take]
            present[j] |= present[i]
            drop[j] |= drop[i]
            removed[i] = True
    keep = ~removed
    return VectorSteps([lbl for lbl, k in zip(v.labels, keep.tolist(), strict=True) if k], values[keep], present[keep],
                       drop[keep] if v.drop_name is not None else None,
                       sample_ts[keep] if sample_ts is not None else None,
                       hist[keep] if hist is not None else None)


def compact(v: VectorSteps) -> VectorSteps:
    """Drops rows that are absent at every step."""
    if v.num_series == 0:
        return v
    keep: np.ndarray = np.asarray(v.present.any(axis=1))
    if keep.all():
        return v
    return VectorSteps([lbl for lbl, k in zip(v.labels, keep.tolist(), strict=True) if k], v.values[keep],
                       v.present[keep], v.drop_name[keep] if v.drop_name is not None else None,
                       v.sample_ts[keep] if v.sample_ts is not None else None,
                       v.hist[keep] if v.hist is not None else None,
                       v.sample_st[keep] if v.sample_st is not None else None)


def select_rows(v: VectorSteps, idx: np.ndarray) -> VectorSteps:
    """The rows ``idx`` (an index array or boolean mask) of ``v``, all fields carried along."""
    ii = np.asarray(idx)
    if ii.dtype == bool:
        ii = np.nonzero(ii)[0]
    return VectorSteps([v.labels[int(i)] for i in ii], v.values[ii], v.present[ii],
                       v.drop_name[ii] if v.drop_name is not None else None,
                       v.sample_ts[ii] if v.sample_ts is not None else None,
                       v.hist[ii] if v.hist is not None else None)


def hist_full(n: int, k: int) -> np.ndarray:
    """An (n, k) object array of None."""
    return np.full((n, k), None, dtype=object)


def floats_only(v: VectorSteps) -> VectorSteps:
    """``v`` without its histogram samples (what float-only operators see)."""
    if v.hist is None:
        return v
    hm = v.hist_mask()
    if not hm.any():
        return VectorSteps(v.labels, v.values, v.present, v.drop_name, v.sample_ts, None)
    return compact(VectorSteps(v.labels, v.values, v.present & ~hm, v.drop_name, v.sample_ts, None))


def hists_only(v: VectorSteps) -> VectorSteps:
    """``v`` without its float samples."""
    hm = v.hist_mask()
    return compact(VectorSteps(v.labels, v.values, v.present & hm, v.drop_name, v.sample_ts, v.hist))


def stack(parts: list[VectorSteps], k: int) -> VectorSteps:
    """Concatenates the rows of several VectorSteps."""
    parts = [p for p in parts if p.num_series]
    if not parts:
        return VectorSteps.empty(k)
    if len(parts) == 1:
        return parts[0]
    labels: list[Labels] = []
    for p in parts:
        labels.extend(p.labels)
    drop = None
    if any(p.drop_name is not None for p in parts):
        drop = np.concatenate([drop_flag(p) for p in parts])
    hist = None
    if any(p.hist is not None for p in parts):
        hist = np.concatenate([p.hist if p.hist is not None else hist_full(p.num_series, k) for p in parts])
    return VectorSteps(labels, np.concatenate([p.values for p in parts]),
                       np.concatenate([p.present for p in parts]), drop, None, hist)


def format_float(f: float) -> str:
    """Go's strconv.FormatFloat(f, 'f', -1, 64)."""
    if np.isnan(f):
        return "NaN"
    if np.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    s = np.format_float_positional(f, trim="-", unique=True)
    if s == "-0":
        return "-0"
    return s


def go_quote(s: str) -> str:
    """Go's strconv.Quote for the characters label values usually contain."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # an undecodable byte (surrogateescape): Go prints it as \xNN
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif not ch.isprintable():
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x80 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def labels_string(labels: Labels) -> str:
    """Prometheus' labels.Labels.String(): ``{a="1", b="2"}`` (the name as a plain label)."""
    return "{" + ", ".join(f"{n}={go_quote(v)}" for n, v in labels) + "}"
