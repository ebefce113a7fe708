"""store/embedded/label_order.py: the label order of a set of series ids, remembered in a bounded
LRU; equal to sorting every time, and callers get lists of their own."""

from __future__ import annotations

import numpy as np
import pytest

from clearsight.model.labels import Labels
from clearsight.store.embedded.label_order import MIN_IDS, LabelOrder


def _labels(n: int) -> list[Labels]:
    rng = np.random.default_rng(3)
    out: list[Labels] = [()]
    for i in range(1, n + 1):
        out.append((("__name__", f"m{int(rng.integers(0, 20))}"), ("i", str(int(rng.integers(0, 1000)))),
                    ("id", str(i))))
    return out


def test_order_equals_sorting_and_is_remembered() -> None:
    labels = _labels(500)
    lo = LabelOrder()
    ids = np.arange(1, 501, dtype=np.uint32)
    for _ in range(2):
        got, perm = lo.order(ids, labels.__getitem__)
        want = sorted(labels[1:])
        assert got == want
        assert perm is not None
        assert [labels[int(s)] for s in ids[perm]] == want
    assert (lo.hits, lo.misses) == (1, 1)
    got.append(())  # the caller's own list
    assert lo.order(ids, labels.__getitem__)[0] == want
    with pytest.raises(ValueError):
        perm[0] = 1  # shared: read-only


def test_sorted_ids_give_no_permutation_and_small_sets_are_not_kept() -> None:
    labels: list[Labels] = [()] + [(("a", f"{i:04d}"),) for i in range(100)]
    lo = LabelOrder()
    got, perm = lo.order(np.arange(1, 101, dtype=np.uint32), labels.__getitem__)
    assert perm is None and got == labels[1:]
    lo.order(np.arange(1, MIN_IDS, dtype=np.uint32), labels.__getitem__)
    assert len(lo) == 1


def test_bounded_by_ids() -> None:
    labels = _labels(300)
    lo = LabelOrder(max_ids=250)
    a = np.arange(1, 101, dtype=np.uint32)
    b = np.arange(101, 201, dtype=np.uint32)
    c = np.arange(201, 301, dtype=np.uint32)
    for ids in (a, b, c):
        lo.order(ids, labels.__getitem__)
    assert len(lo) == 2  # a was dropped to stay within 250 ids
    misses = lo.misses
    lo.order(c, labels.__getitem__)
    assert lo.misses == misses
    lo.order(a, labels.__getitem__)
    assert lo.misses == misses + 1
    too_many = np.arange(1, 300, dtype=np.uint32)
    assert lo.order(too_many, labels.__getitem__)[0] == sorted(labels[1:300])
    assert all(len(k) // 4 <= 250 for k in lo._entries)


def test_any_set_orders_as_a_plain_sort() -> None:
    labels = _labels(40)
    lo = LabelOrder()
    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 3, 17):
        for _ in range(3):
            ids = np.sort(rng.choice(np.arange(1, 41, dtype=np.uint32), n, replace=False))
            want = sorted(labels[i] for i in ids.tolist())
            for _ in range(2):  # computed, then remembered
                got, perm = lo.order(ids, labels.__getitem__)
                assert got == want
                by_perm = ids if perm is None else ids[perm]
                assert [labels[i] for i in by_perm.tolist()] == want
