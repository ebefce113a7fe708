# cython: boundscheck=False, wraparound=False, cdivision=True
"""Native row selection in the head's segments (each sorted by (series id, ts)) and a read's assembly.

``rows_in``: the rows of the series ``ids`` (sorted, unique) with ``lo <= ts <= hi`` in one segment,
grouped by series, in one pass of binary searches (two per id for the series' rows, two for the time
range). ``head._Segment.rows_in`` uses it; its numpy equivalent is the reference
(``tests/unit/store/test_head.py`` compares them).

``Segments``: all of a head's segments as the compiled reads take them, built once per change of
the head (``head.HeadMirror``), so a read acquires no buffer per segment: ``bounds`` locates a
read's rows per series and segment, ``assemble`` copies a read's chunk samples and head rows into
the answer's columns, ``read_cached`` is a whole small read in one call (its chunks found in a
``Catalog`` and taken from the decoded-chunk cache). ``tests/unit/store/test_head_assemble.py`` compares them with a dict
reference."""

import numpy as np

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject


cdef extern from "Python.h":
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy
from libc.string cimport memset

from clearsight._bsearch cimport lower_bound, ptr_bound, upper_bound
from clearsight._ndarray cimport data_1d

cimport numpy as cnp

cnp.import_array()


def rows_in(const uint32_t[::1] sid, const int64_t[::1] ts, const uint32_t[::1] ids, int64_t lo, int64_t hi):
    """Row positions (intp) of series ``ids`` with lo <= ts <= hi, grouped by series in id order."""
    cdef Py_ssize_t n = sid.shape[0], k = ids.shape[0], i, a, b, start = 0, total = 0, w = 0, r
    cdef Py_ssize_t[::1] bounds = np.empty(2 * k, dtype=np.intp)
    with nogil:
        for i in range(k):
            a = lower_bound(sid, start, n, ids[i])
            if a == n:
                bounds[2 * i] = 0
                bounds[2 * i + 1] = 0
                start = n
                continue
            b = upper_bound(sid, a, n, ids[i])
            start = b
            if a < b:
                a = lower_bound(ts, a, b, lo)
                b = upper_bound(ts, a, b, hi)
            bounds[2 * i] = a
            bounds[2 * i + 1] = b
            total += b - a
    out = np.empty(total, dtype=np.intp)
    cdef Py_ssize_t[::1] o = out
    with nogil:
        for i in range(k):
            for r in range(bounds[2 * i], bounds[2 * i + 1]):
                o[w] = r
                w += 1
    return out


# Reads copying at least this many samples release the GIL while they copy (below, releasing and
# taking it back costs more than the copy).
cdef Py_ssize_t NOGIL_SAMPLES = 4096
# ... and a head's bounds of at least this many (series, segment) pairs search without it.
cdef Py_ssize_t NOGIL_SEARCHES = 2048
# A stale marker (model/samples.py STALE_NAN): a series' end, not a value.
cdef uint64_t STALE_BITS = 0x7FF0000000000002

_NO_SID = np.zeros(0, dtype=np.uint32)
_NO_I64 = np.zeros(0, dtype=np.int64)
_NO_F64 = np.zeros(0, dtype=np.float64)


cdef class _Seg:
    """One segment's columns as typed views (acquired once, when the head changed)."""
    cdef const uint32_t[::1] sid
    cdef const int64_t[::1] ts
    cdef const double[::1] vals
    cdef int64_t lo, hi


cdef class Segments:
    """A head's segments (``sids``, ``tss``, ``vals``: their columns, each segment sorted by
    (series id, ts); ``mins``/``maxs``: their min and max ts) for the compiled reads.

    ``bounds(ids, lo, hi)``: for each series of ``ids`` (sorted, unique) and each segment, its rows
    ``[a, b)`` with lo <= ts <= hi, as int64 ``[(i * count + s) * 2]`` = a, ``+ 1`` = b (empty, without
    a search, in segments wholly outside the range), and their total.

    ``assemble(ids, perm, bounds, c_sid, kept, c_ts, c_val)``: one read's series as columns, in one
    pass: per series of ``ids`` taken in the order ``perm`` (positions into ``ids``; None: as they
    are), its decoded chunk samples (chunks ordered by (series, min ts), ``kept[j]`` samples from chunk
    ``j``, series ``c_sid[j]``) then its head rows, segment after segment. Returns ``(offsets, ts,
    vals, empty)``: ``offsets`` (k + 1) delimit the series in output order, ``empty`` counts the
    series without a sample; or None when some series' pieces are not in strictly ascending time
    order as they come (late samples compacted after newer ones, or out-of-order rows in an older
    segment): the caller then sorts.

    ``read_cached(ids, perm, lo, hi, cap, catalog, entries, max_chunks)``: ``bounds``, the chunks'
    location and cut, and ``assemble`` in one call when every chunk the read needs is decoded in
    ``entries`` (or it needs none: an instant query at the data's end); the ``needed`` count
    instead when ``cap`` (an int, or None: no cap) refuses, before anything is copied."""

    cdef list _segs
    cdef readonly Py_ssize_t count
    cdef const int64_t** _tsp
    cdef const double** _vsp
    cdef const uint32_t** _sidp
    cdef Py_ssize_t* _len
    cdef int64_t* _lohi

    def __cinit__(self):
        self._segs = []
        self.count = 0
        self._tsp = NULL
        self._vsp = NULL
        self._sidp = NULL
        self._len = NULL
        self._lohi = NULL

    def __init__(self, tuple sids, tuple tss, tuple vals, tuple mins, tuple maxs):
        cdef Py_ssize_t n = len(sids), s
        cdef _Seg g
        if len(tss) != n or len(vals) != n or len(mins) != n or len(maxs) != n:
            raise ValueError("one column of each kind per segment")
        if self._tsp != NULL:
            raise ValueError("already initialised")
        self._tsp = <const int64_t**>PyMem_Malloc(max(n, 1) * sizeof(int64_t*))
        self._vsp = <const double**>PyMem_Malloc(max(n, 1) * sizeof(double*))
        self._sidp = <const uint32_t**>PyMem_Malloc(max(n, 1) * sizeof(uint32_t*))
        self._len = <Py_ssize_t*>PyMem_Malloc(max(n, 1) * sizeof(Py_ssize_t))
        self._lohi = <int64_t*>PyMem_Malloc(max(2 * n, 1) * sizeof(int64_t))
        if self._tsp == NULL or self._vsp == NULL or self._sidp == NULL or self._len == NULL or self._lohi == NULL:
            raise MemoryError()
        for s in range(n):
            g = _Seg()
            g.sid = sids[s]
            g.ts = tss[s]
            g.vals = vals[s]
            g.lo = mins[s]
            g.hi = maxs[s]
            if g.sid.shape[0] != g.ts.shape[0] or g.ts.shape[0] != g.vals.shape[0]:
                raise ValueError("a segment's columns differ in length")
            self._tsp[s] = &g.ts[0] if g.ts.shape[0] else NULL
            self._vsp[s] = &g.vals[0] if g.vals.shape[0] else NULL
            self._sidp[s] = &g.sid[0] if g.sid.shape[0] else NULL
            self._len[s] = g.ts.shape[0]
            self._lohi[2 * s] = g.lo
            self._lohi[2 * s + 1] = g.hi
            self._segs.append(g)  # keeps the views, hence the pointers above, alive
        self.count = n

    def __dealloc__(self):
        PyMem_Free(self._tsp)
        PyMem_Free(self._vsp)
        PyMem_Free(self._sidp)
        PyMem_Free(self._len)
        PyMem_Free(self._lohi)

    def bounds(self, object ids, int64_t lo, int64_t hi):
        cdef const void* d
        cdef Py_ssize_t k
        data_1d(ids, cnp.NPY_UINT32, &d, &k)
        out = np.empty(2 * k * self.count, dtype=np.int64)
        cdef int64_t[::1] ov = out
        total = self._bounds(<const uint32_t*>d, k, lo, hi, &ov[0]) if ov.shape[0] else 0
        return out, total

    cdef int64_t _bounds(self, const uint32_t* ids, Py_ssize_t k, int64_t lo, int64_t hi, int64_t* o):
        cdef int64_t total
        if k * self.count >= NOGIL_SEARCHES:
            with nogil:
                total = _seg_bounds(ids, k, self.count, self._sidp, self._tsp, self._len, self._lohi, lo, hi, o)
        else:
            total = _seg_bounds(ids, k, self.count, self._sidp, self._tsp, self._len, self._lohi, lo, hi, o)
        return total

    cdef object _locate(self, const uint32_t* ids, Py_ssize_t k, int64_t lo, int64_t hi, object cap,
                        Catalog catalog, object entries, Py_ssize_t max_chunks, _Block* blk, list found,
                        const void*** ptrs, Py_ssize_t* nc, int64_t* n_head, int64_t* ctotal):
        """A cached read's location (``latest``, ``read_cached``): the head rows of the ``k`` series
        ``ids`` in [lo, hi] (``blk.bounds``, ``n_head`` of them), then their chunks
        (``_take_chunks``). None when located; the ``needed`` count when ``cap`` refuses; False
        when a chunk is not in ``entries`` or there are more than ``max_chunks``."""
        if k * self.count:
            n_head[0] = self._bounds(ids, k, lo, hi, blk.bounds)
        if cap is not None and n_head[0] > cap:
            return n_head[0]
        return _take_chunks(ids, k, lo, hi, cap, catalog, entries, max_chunks, n_head[0], blk.cfirst, blk.ccount,
                            blk.cpos, blk.cbeg, blk.ckept, found, ptrs, nc, ctotal)

    def assemble(self, const uint32_t[::1] ids, object perm, const int64_t[::1] bounds, const uint32_t[::1] c_sid,
                 const int64_t[::1] kept, const int64_t[::1] c_ts, const double[::1] c_val):
        cdef Py_ssize_t k = ids.shape[0], nseg = self.count, s, i
        cdef int64_t a, b
        if bounds.shape[0] != 2 * k * nseg:
            raise ValueError("bounds, segments or chunks do not match")
        for s in range(nseg):
            for i in range(k):
                a = bounds[(i * nseg + s) * 2]
                b = bounds[(i * nseg + s) * 2 + 1]
                if a < b and (a < 0 or b > self._len[s]):
                    raise ValueError("bounds outside a segment")
        return self._assemble(ids, perm, bounds, c_sid, kept, c_ts, c_val)

    def latest(self, object ids, object perm, int64_t lo, int64_t hi, object cap, Catalog catalog,
               object entries, Py_ssize_t max_chunks):
        """An instant selector's read in one call: per series of ``ids`` (sorted, unique) in the order
        ``perm`` (positions into ``ids``; None: as they are), the value of its newest sample with
        lo <= ts <= hi, from its head rows and its chunks overlapping the range (decoded in the
        cache's ``entries``, as ``read_cached`` takes them, each hit touched), as a float64 array of
        shape (m, 1) for the m series with a sample in the range; with the samples in the range of
        all of them (what ``read_cached`` would have copied), the chunks taken and the positions (in
        ``perm`` order) of the series left out for having no sample in the range (None: none left
        out): ``(values, samples, chunks, dropped)``. The ``needed`` count (an int) when ``cap``
        refuses, where and as ``read_cached`` refuses. None, before any touch, when a chunk is not in
        ``entries`` or there are more than ``max_chunks``; None too when a series' newest timestamp
        is held twice (in two pieces, or twice in one) or its newest sample is a stale marker: the
        caller then reads the columns. ``ids`` is read in place (``_ndarray.data_1d``: uint32, 1-d,
        contiguous)."""
        cdef const void* d
        cdef Py_ssize_t k
        data_1d(ids, cnp.NPY_UINT32, &d, &k)
        cdef const uint32_t* idp = <const uint32_t*>d
        cdef Py_ssize_t nseg = self.count, nb = 2 * k * nseg
        cdef Py_ssize_t i, j, jj, s, a, b, nc = 0, best, best_at
        cdef int64_t n_head = 0, ctotal = 0, t, bt
        cdef uint64_t bits
        cdef double v
        cdef const double* best_vals
        cdef Py_ssize_t np_
        cdef bint have_perm = perm is not None, twice
        cdef const int64_t* pv = NULL
        cdef const int64_t* tp
        cdef double* vo
        cdef list dropped = None
        cdef Py_ssize_t w = 0
        cdef list found = []  # the chunks' (ts, values), held while their columns are read in place
        cdef const void** ptrs = NULL
        cdef cnp.npy_intp dims[2]
        if not isinstance(entries, dict):
            raise TypeError("entries must be a dict (the cache's OrderedDict)")
        if max_chunks < 0:
            raise ValueError("max_chunks must not be negative")
        if have_perm:
            data_1d(perm, cnp.NPY_INT64, &d, &np_)
            if np_ != k:
                raise ValueError("perm must hold one position per id")
            pv = <const int64_t*>d
        cdef _Block blk
        _block(&blk, nb, k, max_chunks)
        cdef int64_t* mem = blk.mem
        try:
            if have_perm:
                for jj in range(k):
                    if pv[jj] < 0 or pv[jj] >= k:
                        raise ValueError("perm out of range")
            r = self._locate(idp, k, lo, hi, cap, catalog, entries, max_chunks, &blk, found, &ptrs, &nc, &n_head,
                             &ctotal)
            if r is not None:
                return None if r is False else r
            dims[0] = k
            dims[1] = 1
            out = cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT64, 0)  # (numpy's C API: no arguments parsed)
            vo = <double*>cnp.PyArray_DATA(<cnp.ndarray>out)
            for jj in range(k):
                i = pv[jj] if have_perm else jj
                best = 0  # pieces with a row in the range seen
                twice = False
                best_at = 0
                best_vals = NULL
                bt = 0
                for j in range(blk.cfirst[i], blk.cfirst[i] + blk.ccount[i]):
                    if blk.ckept[j]:
                        tp = <const int64_t*>ptrs[2 * j]
                        b = blk.cbeg[j] + blk.ckept[j]
                        t = tp[b - 1]
                        if not best or t > bt:
                            best_vals, best_at, bt = <const double*>ptrs[2 * j + 1], b - 1, t
                            twice = blk.ckept[j] >= 2 and tp[b - 2] == t
                        elif t == bt:
                            twice = True
                        best += 1
                for s in range(nseg):
                    a = blk.bounds[(i * nseg + s) * 2]
                    b = blk.bounds[(i * nseg + s) * 2 + 1]
                    if a < b:
                        t = self._tsp[s][b - 1]
                        if not best or t > bt:
                            best_vals, best_at, bt = self._vsp[s], b - 1, t
                            twice = b - a >= 2 and self._tsp[s][b - 2] == t
                        elif t == bt:
                            twice = True
                        best += 1
                if twice:  # the newest timestamp held twice: which value a read keeps is select's to say
                    return None
                if not best:  # no sample in the range: not one of the read's series
                    if dropped is None:
                        dropped = []
                    dropped.append(jj)
                    continue
                v = best_vals[best_at]
                memcpy(&bits, &v, 8)
                if bits == STALE_BITS:
                    return None
                vo[w] = v
                w += 1
            for j in range(nc):
                entries.move_to_end(catalog.uid[blk.cpos[j]])
            return (out if w == k else out[:w]), n_head + ctotal, nc, dropped
        finally:
            PyMem_Free(ptrs)
            PyMem_Free(mem)

    def read_cached(self, object ids, object perm, int64_t lo, int64_t hi, object cap,
                    Catalog catalog, object entries, Py_ssize_t max_chunks):
        """A read over chunks and head in one call, when every chunk it needs is decoded already: per
        series of ``ids`` (sorted, unique, uint32) in the order ``perm``, the samples with
        lo <= ts <= hi of its chunks in ``catalog`` (a ``Catalog``) overlapping the range, then its
        head rows (``assemble``'s layout, plus the chunks taken: ``(offsets, ts, vals, empty,
        chunks)``). The decoded chunks come from ``entries`` (``chunks.DecodedChunkCache``'s dict,
        chunk uid -> ``(ts, values)``; the caller holds the cache's lock), each hit moved to its end
        (``move_to_end``, the LRU's touch). Refuses as the step by step read does, returning the
        ``needed`` count (an int) instead of a tuple: head rows over ``cap``, then head rows plus the
        samples of chunks wholly inside the range, then head rows plus every chunk sample kept. None,
        touching nothing, when a chunk is not in ``entries`` or there are more than ``max_chunks``;
        None too (after the touches) when a series' pieces are not strictly ascending: the caller
        then takes the step by step path, which decodes or sorts. Copying at least ``NOGIL_SAMPLES``
        samples, it lets the GIL go (the lookups and touches before hold it). ``ids`` is read in place
        (``_ndarray.data_1d``: uint32, 1-d, contiguous)."""
        cdef const void* d
        cdef Py_ssize_t k
        data_1d(ids, cnp.NPY_UINT32, &d, &k)
        cdef const uint32_t* idp = <const uint32_t*>d
        cdef Py_ssize_t nseg = self.count, nb = 2 * k * nseg
        cdef Py_ssize_t nc = 0, i, j, jj
        cdef Py_ssize_t s, w = 0, empty = 0
        cdef int64_t n_head = 0, ctotal = 0, total, t
        cdef const int64_t[::1] pv
        cdef int64_t[::1] offs, to
        cdef double[::1] vo
        if not isinstance(entries, dict):
            raise TypeError("entries must be a dict (the cache's OrderedDict)")
        if max_chunks < 0:
            raise ValueError("max_chunks must not be negative")
        if perm is not None:
            pv = perm
            if pv.shape[0] != k:
                raise ValueError("perm must hold one position per id")
            for jj in range(k):
                if pv[jj] < 0 or pv[jj] >= k:
                    raise ValueError("perm out of range")
        cdef list found = []  # the chunks' (ts, values), held while their columns are read in place
        cdef _Block blk
        _block(&blk, nb, k, max_chunks)
        cdef int64_t* mem = blk.mem
        cdef const void** ptrs = NULL
        try:
            r = self._locate(idp, k, lo, hi, cap, catalog, entries, max_chunks, &blk, found, &ptrs, &nc, &n_head,
                             &ctotal)
            if r is not None:
                return None if r is False else r
            for j in range(nc):
                entries.move_to_end(catalog.uid[blk.cpos[j]])
            offsets_a = np.empty(k + 1, dtype=np.int64)
            offs = offsets_a
            offs[0] = 0
            total = 0
            for jj in range(k):
                i = pv[jj] if perm is not None else jj
                t = 0
                for j in range(blk.cfirst[i], blk.cfirst[i] + blk.ccount[i]):
                    t += blk.ckept[j]
                for s in range(nseg):
                    t += blk.bounds[(i * nseg + s) * 2 + 1] - blk.bounds[(i * nseg + s) * 2]
                empty += t == 0
                total += t
                offs[jj + 1] = total
            ts_out = np.empty(total, dtype=np.int64)
            val_out = np.empty(total, dtype=np.float64)
            to = ts_out
            vo = val_out
            # the chunks' columns are pointers (``found`` holds their arrays; the head's segments are
            # held by self), so a large copy can run without the GIL
            if perm is None:
                pv = None
            if total >= NOGIL_SAMPLES:
                with nogil:
                    w = _fill_cached(k, pv, blk.bounds, nseg, self._tsp, self._vsp, blk.cfirst, blk.ccount,
                                     blk.cbeg, blk.ckept, ptrs, to, vo)
            else:
                w = _fill_cached(k, pv, blk.bounds, nseg, self._tsp, self._vsp, blk.cfirst, blk.ccount,
                                 blk.cbeg, blk.ckept, ptrs, to, vo)
            if w < 0:
                return None
            return offsets_a, ts_out, val_out, empty, nc
        finally:
            PyMem_Free(ptrs)
            PyMem_Free(mem)

    cdef object _assemble(self, const uint32_t[::1] ids, object perm, const int64_t[::1] bounds,
                          const uint32_t[::1] c_sid, const int64_t[::1] kept, const int64_t[::1] c_ts,
                          const double[::1] c_val):
        cdef Py_ssize_t k = ids.shape[0], nseg = self.count, nc = c_sid.shape[0]
        cdef Py_ssize_t i, j, jj, s, pos = 0, empty = 0
        cdef int64_t t, total = 0
        cdef const int64_t[::1] pv
        if perm is not None:
            pv = perm
            if pv.shape[0] != k:
                raise ValueError("perm must hold one position per id")
            for jj in range(k):
                if pv[jj] < 0 or pv[jj] >= k:
                    raise ValueError("perm out of range")
        if kept.shape[0] != nc:
            raise ValueError("bounds, segments or chunks do not match")
        cdef int64_t* cstart = <int64_t*>PyMem_Malloc(max(2 * k, 1) * sizeof(int64_t))
        if cstart == NULL:
            raise MemoryError()
        cdef int64_t* ccount = cstart + k
        cdef int64_t[::1] offs, to
        cdef double[::1] vo
        cdef Py_ssize_t w
        try:
            memset(cstart, 0, max(2 * k, 1) * sizeof(int64_t))
            i = 0
            for j in range(nc):
                while i < k and ids[i] < c_sid[j]:
                    i += 1
                if i == k or ids[i] != c_sid[j] or kept[j] < 0:
                    raise ValueError("a chunk's series is not among the ids")
                if ccount[i] == 0:
                    cstart[i] = pos
                elif cstart[i] + ccount[i] != pos:
                    raise ValueError("a series' chunks are not consecutive")
                ccount[i] += kept[j]
                pos += kept[j]
            if pos > c_ts.shape[0] or pos > c_val.shape[0]:
                raise ValueError("kept counts exceed the decoded samples")
            offsets_a = np.empty(k + 1, dtype=np.int64)
            offs = offsets_a
            offs[0] = 0
            for jj in range(k):
                i = pv[jj] if perm is not None else jj
                t = ccount[i]
                for s in range(nseg):
                    t += bounds[(i * nseg + s) * 2 + 1] - bounds[(i * nseg + s) * 2]
                empty += t == 0
                total += t
                offs[jj + 1] = total
            ts_out = np.empty(total, dtype=np.int64)
            val_out = np.empty(total, dtype=np.float64)
            to = ts_out
            vo = val_out
            if perm is None:
                pv = None
            if total >= NOGIL_SAMPLES:
                with nogil:
                    w = _fill(k, pv, bounds, nseg, self._tsp, self._vsp, cstart, ccount, c_ts, c_val, to, vo)
            else:
                w = _fill(k, pv, bounds, nseg, self._tsp, self._vsp, cstart, ccount, c_ts, c_val, to, vo)
        finally:
            PyMem_Free(cstart)
        if w < 0:
            return None
        return offsets_a, ts_out, val_out, empty


cdef inline Py_ssize_t _append(const int64_t* tp, const double* vp, Py_ssize_t a, Py_ssize_t b, int64_t* to,
                               double* vo, Py_ssize_t w, bint* started, int64_t* last) noexcept nogil:
    """Copies samples ``a:b`` of one piece (``tp``/``vp``) to ``to``/``vo`` from ``w`` on; the next
    ``w``, or -1 at the first sample not after its series' previous one (``started``, ``last``)."""
    cdef Py_ssize_t r
    cdef int64_t t
    for r in range(a, b):
        t = tp[r]
        if started[0] and t <= last[0]:
            return -1
        started[0] = True
        last[0] = t
        to[w] = t
        vo[w] = vp[r]
        w += 1
    return w


cdef Py_ssize_t _fill(Py_ssize_t k, const int64_t[::1] pv, const int64_t[::1] bounds, Py_ssize_t nseg,
                      const int64_t** tsp, const double** vsp, const int64_t* cstart, const int64_t* ccount,
                      const int64_t[::1] c_ts, const double[::1] c_val, int64_t[::1] to,
                      double[::1] vo) noexcept nogil:
    """Copies the pieces in order (series ``pv[jj]``, or ``jj`` when ``pv`` is None); -1 at the
    first sample not after its series' previous one."""
    cdef Py_ssize_t i, jj, s, w = 0
    cdef int64_t last = 0
    cdef bint started
    cdef bint ident = pv is None
    cdef const int64_t* ctp = &c_ts[0] if c_ts.shape[0] else NULL
    cdef const double* cvp = &c_val[0] if c_val.shape[0] else NULL
    cdef int64_t* top = &to[0] if to.shape[0] else NULL
    cdef double* vop = &vo[0] if vo.shape[0] else NULL
    for jj in range(k):
        i = jj if ident else pv[jj]
        started = False
        w = _append(ctp, cvp, cstart[i], cstart[i] + ccount[i], top, vop, w, &started, &last)
        if w < 0:
            return -1
        for s in range(nseg):
            w = _append(tsp[s], vsp[s], bounds[(i * nseg + s) * 2], bounds[(i * nseg + s) * 2 + 1], top, vop, w,
                        &started, &last)
            if w < 0:
                return -1
    return w


cdef inline Py_ssize_t _sid_bound(const uint32_t* a, Py_ssize_t lo, Py_ssize_t hi, uint32_t x,
                                  bint after) noexcept nogil:
    """First position in a[lo:hi] (sorted) holding a value > x (``after``) or >= x (not ``after``)."""
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x or (after and a[mid] == x):
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int64_t _seg_bounds(const uint32_t* ids, Py_ssize_t k, Py_ssize_t nseg, const uint32_t** sidp,
                         const int64_t** tsp, const Py_ssize_t* lens, const int64_t* lohi, int64_t lo, int64_t hi,
                         int64_t* o) noexcept nogil:
    """``Segments.bounds``' rows per series (the ``k`` of ``ids``) and segment, written to ``o``; their total."""
    cdef Py_ssize_t s, i, a, b, start, n
    cdef int64_t total = 0
    for s in range(nseg):
        if lohi[2 * s + 1] < lo or lohi[2 * s] > hi:
            for i in range(k):
                o[(i * nseg + s) * 2] = 0
                o[(i * nseg + s) * 2 + 1] = 0
            continue
        n = lens[s]
        start = 0
        for i in range(k):
            a = _sid_bound(sidp[s], start, n, ids[i], False)
            b = _sid_bound(sidp[s], a, n, ids[i], True) if a < n else a
            start = b
            if a < b:
                a = a + ptr_bound(tsp[s] + a, b - a, lo, False)
                b = a + ptr_bound(tsp[s] + a, b - a, hi, True)
            o[(i * nseg + s) * 2] = a
            o[(i * nseg + s) * 2 + 1] = b
            total += b - a
    return total


cdef Py_ssize_t _fill_cached(Py_ssize_t k, const int64_t[::1] pv, const int64_t* bounds, Py_ssize_t nseg,
                             const int64_t** tsp, const double** vsp, const int64_t* cfirst,
                             const int64_t* ccount, const int64_t* cbeg, const int64_t* ckept,
                             const void** ptrs, int64_t[::1] to, double[::1] vo) noexcept nogil:
    """``read_cached``'s copy (series ``pv[jj]``, or ``jj`` when ``pv`` is None): per series its kept
    chunk samples (chunk ``j``: ``ckept[j]`` samples from ``cbeg[j]`` of the columns ``ptrs[2 * j]``,
    ``ptrs[2 * j + 1]``), then its head rows segment after segment; -1 at the first sample not after
    its series' previous one."""
    cdef Py_ssize_t i, j, jj, s, w = 0
    cdef int64_t last = 0
    cdef bint started
    cdef bint ident = pv is None
    cdef int64_t* top = &to[0] if to.shape[0] else NULL
    cdef double* vop = &vo[0] if vo.shape[0] else NULL
    for jj in range(k):
        i = jj if ident else pv[jj]
        started = False
        for j in range(cfirst[i], cfirst[i] + ccount[i]):
            w = _append(<const int64_t*>ptrs[2 * j], <const double*>ptrs[2 * j + 1], cbeg[j], cbeg[j] + ckept[j],
                        top, vop, w, &started, &last)
            if w < 0:
                return -1
        for s in range(nseg):
            w = _append(tsp[s], vsp[s], bounds[(i * nseg + s) * 2], bounds[(i * nseg + s) * 2 + 1], top, vop, w,
                        &started, &last)
            if w < 0:
                return -1
    return w


cdef struct _Block:
    int64_t* mem
    int64_t* bounds  # head bounds (2 * ids * segments)
    int64_t* cfirst  # per series, its first chunk
    int64_t* ccount  # per series, its chunk count
    int64_t* cpos  # per chunk (max_chunks at most), its catalogue position
    int64_t* cbeg  # ... its first sample kept
    int64_t* ckept  # ... and the samples kept


cdef int _block(_Block* r, Py_ssize_t nb, Py_ssize_t k, Py_ssize_t max_chunks) except -1:
    """One allocation for a cached read's bookkeeping (``_Block``), freed with ``PyMem_Free(r.mem)``."""
    r.mem = <int64_t*>PyMem_Malloc(max(nb + 2 * k + 3 * max_chunks, 1) * sizeof(int64_t))
    if r.mem == NULL:
        raise MemoryError()
    r.bounds = r.mem
    r.cfirst = r.mem + nb
    r.ccount = r.cfirst + k
    r.cpos = r.ccount + k
    r.cbeg = r.cpos + max_chunks
    r.ckept = r.cbeg + max_chunks
    return 0


cdef object _take_chunks(const uint32_t* ids, Py_ssize_t k, int64_t lo, int64_t hi, object cap, Catalog catalog,
                         object entries,
                         Py_ssize_t max_chunks, int64_t n_head, int64_t* cfirst, int64_t* ccount, int64_t* cpos,
                         int64_t* cbeg, int64_t* ckept, list found, const void*** ptrs_out, Py_ssize_t* nc_out,
                         int64_t* ctotal_out):
    """The chunk part of a cached read (``Segments.read_cached``, ``Segments.latest``): the chunks of
    the ``k`` series ``ids`` (sorted, unique) overlapping [lo, hi], located in ``catalog`` (per series its
    first and count, ``cfirst``/``ccount``; their catalogue positions, ``cpos``: ``nc_out`` of them),
    found in ``entries`` (appended to ``found``, which the caller holds while it reads them), the read's
    refusals checked (with ``n_head`` head rows in the range), their columns' data read in place
    (``_ndarray.data_1d``: int64 timestamps, float64 values) into ``*ptrs_out`` (two per chunk; freed
    with the block by the caller) and cut to the range (``cbeg``/``ckept``, ``ctotal_out`` samples in all). None when done; False,
    nothing taken, when a chunk is not in ``entries`` or there are more than ``max_chunks``; the
    ``needed`` count when ``cap`` refuses (as the step by step read counts it)."""
    cdef Py_ssize_t ncat = catalog.sid.shape[0], nc = 0, start = 0, i, j, a, b, p, m
    cdef int64_t certain, ctotal = 0
    cdef PyObject* hit
    cdef const int64_t* tp
    cdef const void** ptrs
    cdef const void* d
    cdef Py_ssize_t mv
    for i in range(k):  # the chunks overlapping the range, by (series, min ts)
        a = lower_bound(catalog.sid, start, ncat, ids[i])
        b = upper_bound(catalog.sid, a, ncat, ids[i]) if a < ncat else a
        start = b
        cfirst[i] = nc
        for p in range(a, b):
            if catalog.max_ts[p] >= lo and catalog.min_ts[p] <= hi:
                if nc == max_chunks:
                    return False
                cpos[nc] = p
                nc += 1
        ccount[i] = nc - cfirst[i]
    nc_out[0] = nc
    for j in range(nc):
        hit = PyDict_GetItemWithError(entries, catalog.uid[cpos[j]])
        if hit == NULL:
            return False  # (an error raised by the lookup propagates)
        found.append(<object>hit)
    if cap is not None and nc:
        certain = n_head
        for j in range(nc):
            p = cpos[j]
            if catalog.min_ts[p] >= lo and catalog.max_ts[p] <= hi:
                certain += catalog.n[p]
        if certain > cap:
            return certain
    ptrs = ptrs_out[0] = <const void**>PyMem_Malloc(max(2 * nc, 1) * sizeof(void*))
    if ptrs == NULL:
        raise MemoryError()
    for j in range(nc):
        pair = found[j]
        data_1d(pair[0], cnp.NPY_INT64, &d, &m)
        ptrs[2 * j] = d
        data_1d(pair[1], cnp.NPY_FLOAT64, &d, &mv)
        ptrs[2 * j + 1] = d
        if mv != m:
            raise ValueError("a chunk's timestamps and values differ in length")
        tp = <const int64_t*>ptrs[2 * j]
        a = ptr_bound(tp, m, lo, False)
        b = a + ptr_bound(tp + a, m - a, hi, True)
        cbeg[j] = a
        ckept[j] = b - a
        ctotal += b - a
    ctotal_out[0] = ctotal
    if cap is not None and nc and n_head + ctotal > cap:
        return n_head + ctotal
    return None


cdef class Catalog:
    """A chunk catalogue snapshot's columns as ``Segments.read_cached`` takes them (``catalog.ChunkRows``
    builds it once per snapshot): per chunk, sorted by (series id, min ts), its series id, min and
    max ts, sample count and uid."""
    cdef const uint32_t[::1] sid
    cdef const int64_t[::1] min_ts
    cdef const int64_t[::1] max_ts
    cdef const int64_t[::1] n
    cdef const int64_t[::1] uid

    def __init__(self, const uint32_t[::1] sid, const int64_t[::1] min_ts, const int64_t[::1] max_ts,
                 const int64_t[::1] n, const int64_t[::1] uid):
        cdef Py_ssize_t c = sid.shape[0]
        if min_ts.shape[0] != c or max_ts.shape[0] != c or n.shape[0] != c or uid.shape[0] != c:
            raise ValueError("one entry of each column per chunk")
        self.sid = sid
        self.min_ts = min_ts
        self.max_ts = max_ts
        self.n = n
        self.uid = uid
