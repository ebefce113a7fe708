"""The in-memory chunk catalogue: locating chunks, applying a transaction's changes, the bounded
blob cache."""

from __future__ import annotations

import numpy as np

from clearsight.store.embedded.catalog import CatalogDelta, ChunkCatalog, ChunkRows


def _rows(entries: list[tuple[int, int, int]]) -> ChunkRows:
    """(series id, min_ts, max_ts) entries; n = span + 1, codec 0, scale 0."""
    k = len(entries)
    return ChunkRows(
        np.asarray([e[0] for e in entries], dtype=np.uint32),
        np.asarray([e[1] for e in entries], dtype=np.int64),
        np.asarray([e[2] for e in entries], dtype=np.int64),
        np.asarray([e[2] - e[1] + 1 for e in entries], dtype=np.int64),
        np.zeros(k, dtype=np.uint8),
        np.zeros(k, dtype=np.uint8),
        np.zeros(k, dtype=np.int64),
    )


def _catalog(entries: list[tuple[int, int, int]], max_blob_bytes: int = 1 << 20) -> ChunkCatalog:
    cat = ChunkCatalog(max_blob_bytes)
    r = _rows(entries)
    cat.replace_all(r.series_id, r.min_ts, r.max_ts, r.n, r.codec, r.scale)
    return cat


def _listed(cat: ChunkCatalog) -> list[tuple[int, int, int]]:
    s = cat.snapshot()
    return list(zip(s.series_id.tolist(), s.min_ts.tolist(), s.max_ts.tolist(), strict=True))


def test_find_returns_overlapping_chunks_of_the_series_in_order() -> None:
    cat = _catalog([(3, 0, 9), (1, 10, 19), (1, 0, 9), (2, 0, 100), (1, 20, 29)])
    s = cat.snapshot()
    assert _listed(cat) == [(1, 0, 9), (1, 10, 19), (1, 20, 29), (2, 0, 100), (3, 0, 9)]
    pos = s.find(np.asarray([1, 3], dtype=np.uint32), 5, 15)
    assert [(int(s.series_id[p]), int(s.min_ts[p])) for p in pos] == [(1, 0), (1, 10), (3, 0)]
    assert s.find(np.asarray([2], dtype=np.uint32), 101, 200).size == 0
    assert s.find(np.asarray([4], dtype=np.uint32), 0, 200).size == 0


def test_apply_removes_by_key_and_cutoff_then_adds() -> None:
    cat = _catalog([(1, 0, 9), (1, 10, 19), (2, 0, 5), (2, 50, 60)])
    old = cat.snapshot()
    delta = CatalogDelta.new()
    delta.removed_sid.append(np.asarray([1], dtype=np.uint32))
    delta.removed_min_ts.append(np.asarray([10], dtype=np.int64))
    delta.removed_before = 6  # drops (2, 0, 5)
    delta.added.append((_rows([(1, 10, 30), (0, 1, 2)]), [b"x" * 3, b"y" * 4]))
    cat.apply(delta)
    assert _listed(cat) == [(0, 1, 2), (1, 0, 9), (1, 10, 30), (2, 50, 60)]
    # The old snapshot is untouched (readers holding it keep a consistent view).
    assert len(old) == 4
    new = cat.snapshot()
    uids = new.uid
    assert len(set(uids.tolist())) == 4
    # Added chunks' bytes are cached under their new uids; untouched chunks keep theirs.
    blobs = cat.blobs(uids)
    assert blobs[0] == b"y" * 4 and blobs[2] == b"x" * 3 and blobs[1] is None and blobs[3] is None
    assert set(old.uid.tolist()) & set(uids.tolist()) == {int(uids[1]), int(uids[3])}


def test_blob_cache_is_bounded_and_drops_removed_chunks() -> None:
    cat = _catalog([(1, 0, 9), (2, 0, 9), (3, 0, 9)], max_blob_bytes=10)
    uids = cat.snapshot().uid
    cat.remember(uids, [b"a" * 4, b"b" * 4, b"c" * 4])
    assert cat.blob_bytes <= 10
    assert cat.blobs(uids)[0] is None  # the least recently used went first
    cat.remember(uids[:1], [b"z" * 11])  # larger than the whole cache: not kept
    assert cat.blobs(uids[:1]) == [None]
    delta = CatalogDelta.new()
    delta.removed_before = 100
    cat.apply(delta)
    assert len(cat) == 0 and cat.blob_bytes == 0
