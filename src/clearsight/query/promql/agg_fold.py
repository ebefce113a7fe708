"""Running state of the aggregations that can be folded row batch by row batch: ``sum``, ``avg``,
``count``, ``group``, ``min`` and ``max``.

``aggregations.aggregate`` feeds a whole vector at once; the streamed evaluation
(``streamed.py``) feeds the rows of one store batch after another and keeps only the state (groups
x steps), never the rows. Both run the same floating-point operations in the same order per group:

- ``SumAvg``: Kahan-Neumaier sum (or Prometheus' incremental mean for ``avg``) per group, or per
  (group, lane) when groups are large (``LANES`` interleaved partial sums merged with compensation
  at the end). A row's lane is its rank within its group modulo ``LANES``, counted across batches,
  so a row meets the same partial sum whichever batch brought it.
- ``MinMax``: ``fmin``/``fmax`` accumulated row by row (NaN replaced by any number, as Prometheus).
- ``Count``: per group and step, how many rows are present.

``GroupFold`` assigns rows to groups as they come (group keys in order of first appearance, as
``aggregations._groups``) and, for ``sum``/``avg``, keeps the summation state of the path the
materialised evaluation chooses from the whole vector (lanes when the largest group has more than
``2 * LANES`` members; an instant ``sum`` of at most ``SCALAR_SUM_MAX_ROWS`` rows, or lanes that
overflowed for ``avg``, use the single compensated sum). Which one is only known as rows come, so
the fold asks to be repeated (``Refold``) when it kept the other one; see ``GroupFold``.
"""

from __future__ import annotations

import numpy as np

from clearsight.model.labels import Labels
from clearsight.query.promql.values import F64, BoolArr, VectorSteps
from clearsight.query.promql.vecutil import drop_flag

# Large groups are summed in LANES interleaved partial sums (each Kahan-Neumaier compensated, then
# merged with compensation), so the Python loop runs ~size/LANES + LANES times instead of size.
LANES = 32

# An instant ``sum`` over at most this many series is summed in Python floats (the same IEEE
# operations in the same order as the single-lane ``SumAvg``, without its per-rank numpy calls).
SCALAR_SUM_MAX_ROWS = 256

FOLDABLE = frozenset({"sum", "avg", "count", "group", "min", "max"})

try:  # the compiled single-lane fold (setup.py builds it); the numpy loop below is its reference
    from clearsight.query.promql import _aggfold  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - built without Cython or a C compiler
    _aggfold = None


def kahan_inc(inc: F64, s: F64, c: F64) -> tuple[F64, F64]:
    """Vectorized Kahan-Neumaier step (Prometheus' kahansum.Inc)."""
    with np.errstate(all="ignore"):
        t = s + inc
        big = np.abs(s) >= np.abs(inc)
        comp = np.where(big, (s - t) + inc, (inc - t) + s)
        newc = np.where(np.isinf(t), 0.0, c + comp)
    return t, newc


def ranks(gid: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per rank r: (row indices, group ids) of the r-th member of each group."""
    counters: dict[int, int] = {}
    rank = []
    for g in gid:
        r = counters.get(g, 0)
        counters[g] = r + 1
        rank.append(r)
    if not rank:
        return []
    rank_a = np.asarray(rank)
    gid_a = np.asarray(gid)
    out = []
    for r in range(int(rank_a.max()) + 1):
        rows = np.nonzero(rank_a == r)[0]
        out.append((rows, gid_a[rows]))
    return out


def _grown(a: np.ndarray, rows: int) -> np.ndarray:
    """``a`` with zero (False) rows appended up to ``rows``."""
    if a.shape[0] >= rows:
        return a
    out = np.zeros((rows, a.shape[1]), dtype=a.dtype)
    if a.shape[0]:  # (a new state grows from no rows: nothing to copy)
        out[: a.shape[0]] = a
    return out


class SumAvg:
    """Compensated sum / mean per group (``lanes`` partial sums per group when > 1)."""

    def __init__(self, op: str, lanes: int, k: int, groups: int = 0) -> None:
        """``groups``: the state's groups from the start (when known: no growing)."""
        self.op = op
        self.lanes = lanes
        self.k = k
        self.groups = groups
        self._members: dict[int, int] = {}  # rows seen per group (a row's lane is its rank % lanes)
        rows = groups * lanes
        self.seen = np.zeros((rows, k), dtype=bool)
        self.s = np.zeros((rows, k))
        self.c = np.zeros((rows, k))
        self.cnt = np.zeros((rows, k))
        self.incr = np.zeros((rows, k), dtype=bool)
        self.mean = np.zeros((rows, k))

    def add(self, vals: F64, pres: BoolArr, gid: np.ndarray, groups: int) -> None:
        """Folds rows ``vals``/``pres`` (rows x k) of groups ``gid`` (< ``groups``)."""
        lanes = self.lanes
        if groups > self.groups:
            self.groups = groups
            sg = groups * lanes
            self.seen, self.s, self.c = _grown(self.seen, sg), _grown(self.s, sg), _grown(self.c, sg)
            self.cnt, self.incr, self.mean = _grown(self.cnt, sg), _grown(self.incr, sg), _grown(self.mean, sg)
        if lanes == 1 and _aggfold is not None:  # compiled: the same operations, row after row
            _aggfold.fold_sum_avg(
                np.ascontiguousarray(vals, dtype=np.float64), np.ascontiguousarray(pres, dtype=np.bool_).view(np.uint8),
                np.ascontiguousarray(gid, dtype=np.int64), self.op == "avg", self.s, self.c, self.cnt,
                self.incr.view(np.uint8), self.mean, self.seen.view(np.uint8))
            return
        if lanes > 1:
            ranks_in_group = np.zeros(gid.shape[0], dtype=np.int64)
            counters = self._members
            for i, g in enumerate(gid.tolist()):
                r = counters.get(g, 0)
                counters[g] = r + 1
                ranks_in_group[i] = r
            sub = gid * lanes + ranks_in_group % lanes
            if _aggfold is not None:  # compiled: every lane folded with the sum's operations
                _aggfold.fold_sum_avg(
                    np.ascontiguousarray(vals, dtype=np.float64),
                    np.ascontiguousarray(pres, dtype=np.bool_).view(np.uint8), np.ascontiguousarray(sub, dtype=np.int64),
                    False, self.s, self.c, self.cnt, self.incr.view(np.uint8), self.mean, self.seen.view(np.uint8))
                return
        else:
            sub = gid
        op = self.op
        s, c, cnt, incr, mean, seen = self.s, self.c, self.cnt, self.incr, self.mean, self.seen
        with np.errstate(all="ignore"):
            for rows, gi in ranks(sub.tolist()):
                x = vals[rows]
                p = pres[rows]
                first = p & ~seen[gi]
                rest = p & seen[gi]
                S, C, N, INC, M = s[gi], c[gi], cnt[gi], incr[gi], mean[gi]
                N = np.where(p, N + 1, N)
                t, nc = kahan_inc(x, S, C)
                if op == "sum" or lanes > 1:
                    S = np.where(first, x, np.where(rest, t, S))
                    C = np.where(first, 0.0, np.where(rest, nc, C))
                    INC = INC | (rest & np.isinf(t) & ~np.isinf(x) & ~np.isinf(S))
                else:
                    # Direct mean (Kahan sum) until the sum would overflow, then incremental mean.
                    direct = rest & ~INC
                    ok = direct & ~np.isinf(t)
                    switch = direct & np.isinf(t)
                    S = np.where(first, x, np.where(ok, t, S))
                    C = np.where(first, 0.0, np.where(ok, nc, C))
                    M = np.where(first, x, np.where(switch, S / (N - 1), M))
                    C = np.where(switch, C / (N - 1), C)
                    INC = INC | switch
                    inc_rows = rest & INC
                    q = (N - 1) / N
                    m2, c2 = kahan_inc(x / N, q * M, q * C)
                    M = np.where(inc_rows, m2, M)
                    C = np.where(inc_rows, c2, C)
                s[gi], c[gi], cnt[gi], incr[gi], mean[gi] = S, C, N, INC, M
                seen[gi] |= p

    def finish(self) -> tuple[F64, BoolArr, bool]:
        """(result, seen, overflowed-to-incremental-mean) per group."""
        G, k, lanes = self.groups, self.k, self.lanes
        s, c, cnt, incr, mean, seen = self.s, self.c, self.cnt, self.incr, self.mean, self.seen
        with np.errstate(all="ignore"):
            if lanes > 1:
                overflow = bool(incr.any())
                # Merge the lanes of each group: compensated sum of the partial sums, plus their
                # compensations.
                gs = np.zeros((G, k))
                gc = np.zeros((G, k))
                gcnt = np.zeros((G, k))
                gseen = np.zeros((G, k), dtype=bool)
                if _aggfold is not None:  # compiled: the same operations, lane after lane
                    _aggfold.merge_lanes(s, c, cnt, seen.view(np.uint8), lanes, gs, gc, gcnt, gseen.view(np.uint8))
                else:
                    gs, gc, gcnt, gseen = _merge_lanes_numpy(s, c, cnt, seen, G, lanes, (gs, gc, gcnt, gseen))
                if self.op == "sum":
                    return gs + gc, gseen, overflow
                return gs / gcnt + gc / gcnt, gseen, overflow or bool(np.isinf(gs).any())
            if self.op == "sum":
                return s + c, seen, False
            return np.where(incr, mean + c, s / cnt + c / cnt), seen, bool(incr.any())


def _merge_lanes_numpy(s: F64, c: F64, cnt: F64, seen: BoolArr, G: int, lanes: int,
                       zero: tuple[F64, F64, F64, BoolArr]) -> tuple[F64, F64, F64, BoolArr]:
    """``_aggfold.merge_lanes`` in numpy: the lanes of each group added in lane order into the
    group arrays ``zero`` (sum, compensation, count, seen)."""
    gs, gc, gcnt, gseen = zero
    base = np.arange(G) * lanes
    for lane in range(lanes):
        idx = base + lane
        p = seen[idx]
        first = p & ~gseen
        rest = p & gseen
        t, nc = kahan_inc(s[idx], gs, gc)
        gs = np.where(first, s[idx], np.where(rest, t, gs))
        gc = np.where(first, c[idx], np.where(rest, nc + c[idx], gc))
        gcnt = gcnt + cnt[idx]
        gseen |= p
    return gs, gc, gcnt, gseen


class MinMax:
    """``min``/``max`` per group with fmin/fmax semantics (Prometheus replaces a NaN running value
    by any number)."""

    def __init__(self, op: str, k: int) -> None:
        self.ufunc = np.fmax if op == "max" else np.fmin
        self.res = np.full((0, k), np.nan)
        self.seen = np.zeros((0, k), dtype=bool)

    def add(self, vals: F64, pres: BoolArr, gid: np.ndarray, groups: int) -> None:
        if groups > self.res.shape[0]:
            old = self.res.shape[0]
            self.res = _grown(self.res, groups)
            self.res[old:] = np.nan
            self.seen = _grown(self.seen, groups)
        with np.errstate(all="ignore"):
            self.ufunc.at(self.res, gid, np.where(pres, vals, np.nan))
        np.logical_or.at(self.seen, gid, pres)

    def finish(self) -> tuple[F64, BoolArr]:
        return self.res, self.seen


class Count:
    """``count``/``group`` per group: how many rows are present at each step."""

    def __init__(self, op: str, k: int) -> None:
        self.op = op
        self.cnt = np.zeros((0, k))

    def add(self, pres: BoolArr, gid: np.ndarray, groups: int) -> None:
        self.cnt = _grown(self.cnt, groups)
        np.add.at(self.cnt, gid, pres.astype(np.float64))

    def finish(self) -> tuple[F64, BoolArr]:
        seen = self.cnt > 0
        return (self.cnt if self.op == "count" else np.ones(self.cnt.shape)), seen


def group_key(labels: Labels, grouping: list[str], without: bool) -> Labels:
    return group_keys([labels], grouping, without)[0]


def group_keys(labels: list[Labels], grouping: list[str], without: bool) -> list[Labels]:
    """``group_key`` of every label set (the grouping's set built once, not per row)."""
    if without:
        drop = set(grouping)
        drop.add("__name__")
        return [tuple([p for p in lbl if p[0] not in drop]) for lbl in labels]  # a list: faster than a generator
    keep = set(grouping)
    if len(keep) == 1:  # ``by (one)``: names are unique and sorted, so stop at it (or past it)
        (name,) = keep
        out: list[Labels] = []
        for lbl in labels:
            for p in lbl:
                if p[0] >= name:
                    out.append((p,) if p[0] == name else ())
                    break
            else:
                out.append(())
        return out
    return [tuple([p for p in lbl if p[0] in keep]) for lbl in labels]


class Refold(Exception):
    """The fold needs state it did not keep: fold the rows again with ``GroupFold(mode=self.mode)``."""

    def __init__(self, mode: str) -> None:
        super().__init__(mode)
        self.mode = mode


class GroupFold:
    """One aggregation (an op of ``FOLDABLE``) folded over row batches of a float vector whose
    rows, concatenated, are the vector the materialised path aggregates; ``result`` equals
    ``aggregations.aggregate`` on that vector bit for bit.

    ``sum``/``avg`` keep the state of the summation the materialised path will choose, which
    depends on the largest group: ``mode="auto"`` keeps the single-lane sum and raises
    ``Refold("lanes")`` as soon as a group grows past ``2 * LANES`` members (the materialised path
    sums in lanes then); ``mode="lanes"`` keeps the lanes (and the single-lane sum while an
    instant ``sum`` may still choose it) and raises ``Refold("single")`` from ``result`` when the
    lanes of an ``avg`` overflowed; ``mode="single"`` keeps the single-lane sum only. Each mode
    is entered at most once, so a fold is repeated at most twice (usually once, at its first batch
    with a large group)."""

    def __init__(self, op: str, grouping: list[str], without: bool, k: int, mode: str = "auto") -> None:
        self.op = op
        self.grouping = grouping
        self.without = without
        self.k = k
        self.mode = mode
        self.keys: dict[Labels, int] = {}
        self.out: list[Labels] = []
        self.sizes: list[int] = []
        self.drop: list[bool] = []
        self.rows = 0
        self.one: SumAvg | None = None
        self.many: SumAvg | None = None
        self.minmax: MinMax | None = None
        self.count: Count | None = None
        if op in ("sum", "avg"):
            if mode == "lanes":
                self.many = SumAvg(op, LANES, k)
            if mode != "lanes" or (op == "sum" and k == 1):
                self.one = SumAvg(op, 1, k)
        elif op in ("min", "max"):
            self.minmax = MinMax(op, k)
        else:
            self.count = Count(op, k)

    def state_points(self) -> int:
        """Points of the running state counted against ``max_samples``: one per group and step,
        as the result (the materialised path counts its output so, not its summation arrays)."""
        return len(self.out) * self.k

    def add(self, v: VectorSteps) -> None:
        """Folds the rows of ``v`` (float samples only)."""
        gid = self._assign(v)
        G = len(self.out)
        if self.minmax is not None:
            self.minmax.add(v.values, v.present, gid, G)
        elif self.count is not None:
            self.count.add(v.present, gid, G)
        else:
            if self.mode == "auto" and not self._single_chosen():
                raise Refold("lanes")
            if self.many is not None:
                self.many.add(v.values, v.present, gid, G)
            if self.one is not None:
                if self.mode == "lanes" and not self._instant_sum():
                    self.one = None
                else:
                    self.one.add(v.values, v.present, gid, G)

    def _assign(self, v: VectorSteps) -> np.ndarray:
        keys, out, sizes, drop = self.keys, self.out, self.sizes, self.drop
        gid: list[int] = []
        flags = drop_flag(v).tolist() if v.drop_name is not None else [False] * len(v.labels)
        for key, d in zip(group_keys(v.labels, self.grouping, self.without), flags, strict=True):
            g = keys.get(key)
            if g is None:
                g = len(out)
                keys[key] = g
                out.append(key)
                sizes.append(0)
                drop.append(False)
            sizes[g] += 1
            if d:
                drop[g] = True
            gid.append(g)
        self.rows += len(gid)
        return np.asarray(gid, dtype=np.int64)

    def _instant_sum(self) -> bool:
        return self.op == "sum" and self.k == 1 and self.rows <= SCALAR_SUM_MAX_ROWS

    def _single_chosen(self) -> bool:
        """Whether the materialised path would sum the rows so far in a single lane."""
        return max(self.sizes, default=0) <= 2 * LANES or self._instant_sum()

    def result(self) -> VectorSteps:
        G, k = len(self.out), self.k
        if G == 0:
            return VectorSteps.empty(k)
        if self.minmax is not None:
            result, seen = self.minmax.finish()
        elif self.count is not None:
            result, seen = self.count.finish()
        else:
            single = self.mode == "single" or self._single_chosen()
            if not single:
                if self.many is None:
                    raise Refold("lanes")
                result, seen, overflowed = self.many.finish()
                single = overflowed
            if single:
                if self.one is None:
                    raise Refold("single")
                result, seen, _ = self.one.finish()
        gdrop = np.asarray(self.drop, dtype=bool)
        return VectorSteps(list(self.out), result, seen, gdrop if gdrop.any() else None, None)


__all__ = ["FOLDABLE", "LANES", "SCALAR_SUM_MAX_ROWS", "Count", "GroupFold", "MinMax", "Refold",
           "SumAvg", "group_key", "group_keys", "kahan_inc", "ranks"]
