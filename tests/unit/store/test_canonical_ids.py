"""canonical_ids.py against a dict: label sets whose hashes collide (a hash function with three
values forces it) still get their own ids, also after removals and re-adds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.labels import Labels
from clearsight.store.embedded.canonical_ids import CanonicalIds

_labels = st.lists(st.tuples(st.sampled_from(["__name__", "a", "b"]), st.sampled_from(["x", "y", "z", ""])),
                   min_size=1, max_size=3, unique_by=lambda p: p[0]).map(lambda ps: tuple(sorted(ps)))


def _three_hashes(label_sets: Sequence[Labels]) -> np.ndarray:
    return np.array([len(ls) % 3 for ls in label_sets], dtype=np.uint64)


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.sets(_labels, max_size=6), st.integers(0, 5)), max_size=12),
       probes=st.lists(_labels, max_size=10), colliding=st.booleans())
def test_ids_follow_a_dict(steps: list[tuple[set[Labels], int]], probes: list[Labels], colliding: bool) -> None:
    by_id: dict[int, Labels] = {}
    ids = CanonicalIds(by_id.__getitem__, *([_three_hashes] if colliding else []))
    model: dict[Labels, int] = {}
    next_id = 1
    for new, remove_n in steps:
        fresh = sorted(ls for ls in new if ls not in model)
        sids = list(range(next_id, next_id + len(fresh)))
        next_id += len(fresh)
        for ls, sid in zip(fresh, sids, strict=True):
            by_id[sid] = ls
            model[ls] = sid
        ids.add(fresh, sids)
        dead = sorted(model.values())[:remove_n]
        ids.remove(dead)
        model = {ls: sid for ls, sid in model.items() if sid not in dead}
        assert len(ids) == len(model)
    asked = list(model) + probes
    assert ids.get(asked) == [model.get(ls, 0) for ls in asked]
