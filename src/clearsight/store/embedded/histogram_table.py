"""Native histogram samples in the embedded store: the ``histogram_chunks`` table.

Each group commit that carries histogram samples inserts, in its own transaction, one row per
series: ``(series_id, seq, min_ts, max_ts, n, data)`` where ``data`` is a ``histogram_codec``
chunk and ``seq`` grows with every commit. A later write of a timestamp a series already has wins
on read (the row with the higher ``seq``), so overwrites never rewrite stored rows. Compaction
(run with the float compaction) merges a series' small rows, with every row overlapping them, into
chunks of up to ``TARGET_SAMPLES`` samples (overwritten samples disappear then).

Reads run one SQL query over the rows overlapping the range of the selected series (only for
series known to have histogram samples: ``has``), decode them and merge them with the float
samples of the same select. At a timestamp where a series has both a float and a histogram
sample, the histogram is returned.

Retention deletes rows wholly older than the cutoff; a row straddling it keeps its expired samples
on disk, hidden from reads by the store's retention floor, until a compaction rewrites it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import duckdb
import numpy as np
import numpy.typing as npt

from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import Labels
from clearsight.model.samples import I64Array, SeriesData
from clearsight.store.embedded import histogram_codec
from clearsight.store.embedded.columns import objects

DDL = """CREATE TABLE IF NOT EXISTS histogram_chunks (
        series_id UINTEGER NOT NULL,
        seq BIGINT NOT NULL,
        min_ts BIGINT NOT NULL,
        max_ts BIGINT NOT NULL,
        n UINTEGER NOT NULL,
        data BLOB NOT NULL
    )"""
# Per-series min/max over histogram rows (joined into the store's _MIN_MAX_SQL).
MIN_MAX_PART = (
    "SELECT series_id, min(min_ts) AS lo, max(max_ts) AS hi FROM histogram_chunks {filter} GROUP BY series_id"
)
TARGET_SAMPLES = 720
# Compaction is due once this many rows exist beyond one per series (and at least this many per
# series): see HistogramTable.due.
_DUE_ROWS = 4096
_DUE_ROWS_PER_SERIES = 15


class HistogramSelect:
    """Histogram samples of a select: per series id, ascending unique timestamps and histograms."""

    def __init__(self) -> None:
        self.by_series: dict[int, tuple[I64Array, list[FloatHistogram]]] = {}

    @property
    def samples(self) -> int:
        return sum(int(t.shape[0]) for t, _ in self.by_series.values())


class HistogramTable:
    """The writer's and readers' view of ``histogram_chunks``; SQL runs on connections passed in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._has: npt.NDArray[np.bool_] = np.zeros(1024, dtype=np.bool_)
        self.seq = 0
        self.rows = 0
        self.series = 0

    # --- state -----------------------------------------------------------------------------------

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        res = con.execute(
            "SELECT series_id, count(*) AS rows, max(seq) AS seq FROM histogram_chunks GROUP BY series_id"
        ).fetchnumpy()
        sids = np.asarray(res["series_id"], dtype=np.int64)
        has = np.zeros(max(1024, int(sids.max()) + 1 if sids.size else 0), dtype=np.bool_)
        has[sids] = True
        with self._lock:
            self._has = has
            self.rows = int(np.asarray(res["rows"]).sum()) if sids.size else 0
            self.series = int(sids.size)
            self.seq = int(np.asarray(res["seq"]).max()) if sids.size else 0

    def any(self, ids: npt.NDArray[np.uint32]) -> bool:
        """Whether any of the series ``ids`` has histogram samples (cheap: no SQL)."""
        if self.series == 0:  # no histogram series at all (the usual metrics-only store)
            return False
        has = self._has
        if ids.size == 0:
            return False
        inside = ids[ids < has.shape[0]]
        return bool(has[inside].any())

    def forget(self, ids: npt.NDArray[np.uint32]) -> None:
        """Series removed by retention."""
        with self._lock:
            inside = ids[ids < self._has.shape[0]]
            self.series -= int(np.count_nonzero(self._has[inside]))
            has = self._has.copy()
            has[inside] = False
            self._has = has

    def _mark(self, sids: npt.NDArray[np.int64]) -> None:
        with self._lock:
            has = self._has
            top = int(sids.max()) + 1
            if top > has.shape[0]:
                grown = np.zeros(max(top, 2 * has.shape[0]), dtype=np.bool_)
                grown[: has.shape[0]] = has
                has = grown
            else:
                has = has.copy()
            self.series += int(np.count_nonzero(~has[sids]))
            has[sids] = True
            self._has = has

    def due(self, factor: int = 1) -> bool:
        """Whether compaction is due: the rows beyond one per series reach ``factor`` times
        max(4,096, 15 per series), so a series' small rows are merged about every 15 commits (the
        store compacts when idle at factor 1, at once at factor 2)."""
        return self.rows - self.series >= factor * max(_DUE_ROWS, _DUE_ROWS_PER_SERIES * self.series)

    # --- writes (writer connection, inside its transaction) ---------------------------------------

    def insert(
        self,
        con: duckdb.DuckDBPyConnection,
        sids: npt.NDArray[np.uint32],
        ts: I64Array,
        hs: list[FloatHistogram],
    ) -> Callable[[], None]:
        """Inserts the samples (any order; a later entry of the same (series, ts) wins) as one row
        per series. Returns what to run once the transaction committed (publishes the series)."""
        n = sids.shape[0]
        order = np.lexsort((np.arange(n), ts, sids))
        s_sid, s_ts = sids[order].astype(np.int64), ts[order]
        keep = np.ones(n, dtype=np.bool_)
        keep[:-1] = (s_sid[1:] != s_sid[:-1]) | (s_ts[1:] != s_ts[:-1])
        order, s_sid, s_ts = order[keep], s_sid[keep], s_ts[keep]
        bounds = np.flatnonzero(np.concatenate(([True], s_sid[1:] != s_sid[:-1], [True])))
        seq = self.seq + 1
        rows = _Rows()
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            rows.add(int(s_sid[a]), s_ts[a:b], [hs[j] for j in order[a:b].tolist()])
        rows.insert(con, seq)
        rows_sid = rows.sid
        uniq = np.asarray(rows_sid, dtype=np.int64)

        def published() -> None:
            self.seq = seq
            self.rows += len(rows_sid)
            self._mark(uniq)

        return published

    def compact(self, con: duckdb.DuckDBPyConnection, floor: int) -> Callable[[], None] | None:
        """Merges every series' rows below ``TARGET_SAMPLES`` samples (when it has two or more),
        with the rows overlapping them, into chunks of ``TARGET_SAMPLES``; samples older than
        ``floor`` are dropped. Runs inside the caller's transaction; returns the publication step,
        or None when nothing was merged."""
        res = con.execute(
            "WITH s AS (SELECT series_id, min(min_ts) AS lo, max(max_ts) AS hi FROM histogram_chunks "
            "WHERE n < ? GROUP BY series_id HAVING count(*) >= 2) "
            "SELECT h.series_id, h.seq, h.min_ts, h.data FROM histogram_chunks h JOIN s USING (series_id) "
            "WHERE h.max_ts >= s.lo AND h.min_ts <= s.hi ORDER BY h.series_id, h.seq",
            [TARGET_SAMPLES],
        ).fetchnumpy()
        sids = np.asarray(res["series_id"], dtype=np.int64)
        if sids.size == 0:
            return None
        seqs = np.asarray(res["seq"], dtype=np.int64)
        mins = np.asarray(res["min_ts"], dtype=np.int64)
        con.register("_clearsight_hold", {"series_id": sids.astype(np.uint32), "seq": seqs, "min_ts": mins})
        try:
            con.execute(
                "DELETE FROM histogram_chunks USING _clearsight_hold o WHERE histogram_chunks.series_id = o.series_id "
                "AND histogram_chunks.seq = o.seq AND histogram_chunks.min_ts = o.min_ts"
            )
        finally:
            con.unregister("_clearsight_hold")
        seq = self.seq + 1
        rows = _Rows()
        datas = list(res["data"])
        bounds = np.flatnonzero(np.concatenate(([True], sids[1:] != sids[:-1], [True])))
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            ts, hs = _merge_rows([bytes(d) for d in datas[a:b]], floor)
            for c in range(0, ts.shape[0], TARGET_SAMPLES):
                rows.add(int(sids[a]), ts[c : c + TARGET_SAMPLES], hs[c : c + TARGET_SAMPLES])
        rows.insert(con, seq)
        rows_sid = rows.sid
        removed, added = int(sids.size), len(rows_sid)

        def published() -> None:
            self.seq = seq
            self.rows += added - removed

        return published

    def retention(self, con: duckdb.DuckDBPyConnection, cutoff: int) -> int:
        """Deletes rows wholly older than ``cutoff`` (inside the caller's transaction); returns the
        number of samples deleted. ``rows`` is corrected by ``load`` after a failed transaction."""
        row = con.execute(
            "SELECT count(*), coalesce(sum(n), 0) FROM histogram_chunks WHERE max_ts < ?", [cutoff]
        ).fetchall()[0]
        if int(row[0]):
            con.execute("DELETE FROM histogram_chunks WHERE max_ts < ?", [cutoff])
            self.rows -= int(row[0])
        return int(row[1])

    def delete_range(
        self,
        con: duckdb.DuckDBPyConnection,
        ids: npt.NDArray[np.uint32],
        start_ms: int,
        end_ms: int,
        floor: int,
    ) -> tuple[int, Callable[[], None] | None]:
        """Removes the samples in [start_ms, end_ms] of the series ``ids`` (admin delete_series),
        inside the caller's transaction: every row of a series with a row overlapping the range is
        deleted and the series' remaining samples (newest write winning, none older than ``floor``)
        are written back as new rows, so no older row can shadow them. Returns the number of samples
        deleted and the publication step (None when no row was touched)."""
        has = self._has
        inside = ids[ids < has.shape[0]]
        want = inside[has[inside]]
        if want.size == 0:
            return 0, None
        con.register("_clearsight_hdel", {"series_id": want.astype(np.uint32)})
        try:
            flt = "series_id IN (SELECT series_id FROM histogram_chunks JOIN _clearsight_hdel USING (series_id) "
            flt += "WHERE max_ts >= ? AND min_ts <= ?)"
            res = con.execute(
                f"SELECT series_id, data FROM histogram_chunks WHERE {flt} ORDER BY series_id, seq",
                [start_ms, end_ms],
            ).fetchnumpy()
            con.execute(f"DELETE FROM histogram_chunks WHERE {flt}", [start_ms, end_ms])
        finally:
            con.unregister("_clearsight_hdel")
        sids = np.asarray(res["series_id"], dtype=np.int64)
        if sids.size == 0:
            return 0, None
        seq = self.seq + 1
        rows = _Rows()
        deleted = 0
        datas = list(res["data"])
        bounds = np.flatnonzero(np.concatenate(([True], sids[1:] != sids[:-1], [True])))
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            ts, hs = _merge_rows([bytes(d) for d in datas[a:b]], floor)
            gone = (ts >= start_ms) & (ts <= end_ms)
            deleted += int(np.count_nonzero(gone))
            keep = np.flatnonzero(~gone)
            ts, hs = ts[keep], [hs[j] for j in keep.tolist()]
            for c in range(0, ts.shape[0], TARGET_SAMPLES):
                rows.add(int(sids[a]), ts[c : c + TARGET_SAMPLES], hs[c : c + TARGET_SAMPLES])
        rows.insert(con, seq)
        removed, added = int(sids.size), len(rows.sid)

        def published() -> None:
            self.seq = seq
            self.rows += added - removed

        return deleted, published

    # --- reads -----------------------------------------------------------------------------------

    def select(
        self, cur: duckdb.DuckDBPyConnection, ids: npt.NDArray[np.uint32], start_ms: int, end_ms: int
    ) -> HistogramSelect:
        """The histogram samples of ``ids`` in [start_ms, end_ms] (newest write wins)."""
        has = self._has
        inside = ids[ids < has.shape[0]]
        want = inside[has[inside]]
        out = HistogramSelect()
        if want.size == 0:
            return out
        cur.register("_clearsight_hids", {"series_id": want.astype(np.uint32)})
        try:
            res = cur.execute(
                "SELECT h.series_id, h.data FROM histogram_chunks h JOIN _clearsight_hids w USING (series_id) "
                "WHERE h.max_ts >= ? AND h.min_ts <= ? ORDER BY h.series_id, h.seq",
                [start_ms, end_ms],
            ).fetchnumpy()
        finally:
            cur.unregister("_clearsight_hids")
        sids = np.asarray(res["series_id"], dtype=np.int64)
        datas = list(res["data"])
        if sids.size == 0:
            return out
        bounds = np.flatnonzero(np.concatenate(([True], sids[1:] != sids[:-1], [True])))
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            ts, hs = _merge_rows([bytes(d) for d in datas[a:b]], start_ms, end_ms)
            if ts.shape[0]:
                out.by_series[int(sids[a])] = (ts, hs)
        return out


class _Rows:
    """Encoded rows of ``histogram_chunks`` to insert with one ``seq``."""

    def __init__(self) -> None:
        self.sid: list[int] = []
        self.min_ts: list[int] = []
        self.max_ts: list[int] = []
        self.n: list[int] = []
        self._ts: list[I64Array] = []
        self._hs: list[FloatHistogram] = []
        self._bounds = [0]

    def add(self, sid: int, ts: I64Array, hs: list[FloatHistogram]) -> None:
        """One chunk of a series' samples (ascending, unique ``ts``); encoded by ``insert``."""
        self.sid.append(sid)
        self.min_ts.append(int(ts[0]))
        self.max_ts.append(int(ts[-1]))
        self.n.append(int(ts.shape[0]))
        self._ts.append(ts)
        self._hs.extend(hs)
        self._bounds.append(self._bounds[-1] + len(hs))

    def insert(self, con: duckdb.DuckDBPyConnection, seq: int) -> None:
        """Encodes every chunk (in one pass over their columns) and inserts the rows."""
        if not self.sid:
            return
        data = histogram_codec.encode_many(np.concatenate(self._ts), self._hs, self._bounds)
        tbl = {
            "series_id": np.array(self.sid, dtype=np.uint32),
            "seq": np.full(len(self.sid), seq, dtype=np.int64),
            "min_ts": np.array(self.min_ts, dtype=np.int64),
            "max_ts": np.array(self.max_ts, dtype=np.int64),
            "n": np.array(self.n, dtype=np.uint32),
            "data": objects(data),
        }
        con.register("_clearsight_hrows", tbl)
        try:
            con.execute(
                "INSERT INTO histogram_chunks SELECT series_id, seq, min_ts, max_ts, n, data FROM _clearsight_hrows"
            )
        finally:
            con.unregister("_clearsight_hrows")


def _merge_rows(
    datas: list[bytes], start_ms: int, end_ms: int = 2**62
) -> tuple[I64Array, list[FloatHistogram]]:
    """Samples of one series' rows (given in ascending ``seq``) in [start_ms, end_ms], ascending,
    the sample of the latest row winning at a shared timestamp."""
    ts_parts: list[I64Array] = []
    hs: list[FloatHistogram] = []
    for d in datas:
        t, h = histogram_codec.decode(d)
        ts_parts.append(t)
        hs.extend(h)
    ts = np.concatenate(ts_parts) if len(ts_parts) > 1 else ts_parts[0]
    n = ts.shape[0]
    order = np.lexsort((np.arange(n), ts))
    s_ts = ts[order]
    keep = np.ones(n, dtype=np.bool_)
    keep[:-1] = s_ts[1:] != s_ts[:-1]
    keep &= (s_ts >= start_ms) & (s_ts <= end_ms)
    sel = order[keep]
    return ts[sel], [hs[j] for j in sel.tolist()]


def merge_into(data: SeriesData, hist: HistogramSelect, labels_of: Callable[[int], Labels]) -> SeriesData:
    """``data`` (float samples, series in label order) with the histogram samples added: a series'
    histogram sample replaces a float sample at the same timestamp; series in label order."""
    if not hist.by_series:
        return data
    floats: dict[Labels, tuple[I64Array, npt.NDArray[np.float64]]] = {}
    for i in range(len(data)):
        lbls, t, v = data.series(i)
        floats[lbls] = (t, v)
    hist_of = {labels_of(sid): h for sid, h in hist.by_series.items()}
    all_labels = sorted(set(floats) | set(hist_of))
    offsets = np.zeros(len(all_labels) + 1, dtype=np.int64)
    ts_parts: list[I64Array] = []
    v_parts: list[npt.NDArray[np.float64]] = []
    h_parts: list[npt.NDArray[np.object_]] = []
    for k, lbls in enumerate(all_labels):
        f = floats.get(lbls)
        h = hist_of.get(lbls)
        if h is None:
            assert f is not None
            t, v = f
            objs = np.full(t.shape[0], None, dtype=object)
        else:
            h_ts, h_list = h
            h_obj = np.empty(len(h_list), dtype=object)
            h_obj[:] = h_list
            if f is None:
                t, v, objs = h_ts, np.full(h_ts.shape[0], np.nan), h_obj
            else:
                f_keep = ~np.isin(f[0], h_ts)
                t = np.concatenate((f[0][f_keep], h_ts))
                v = np.concatenate((f[1][f_keep], np.full(h_ts.shape[0], np.nan)))
                objs = np.concatenate((np.full(int(f_keep.sum()), None, dtype=object), h_obj))
                order = np.argsort(t, kind="stable")
                t, v, objs = t[order], v[order], objs[order]
        ts_parts.append(t)
        v_parts.append(v)
        h_parts.append(objs)
        offsets[k + 1] = offsets[k] + t.shape[0]
    return SeriesData(
        all_labels,
        offsets,
        np.concatenate(ts_parts).astype(np.int64),
        np.concatenate(v_parts).astype(np.float64),
        histograms=np.concatenate(h_parts),
        start_timestamps=None,
    )
