"""gc_policy.settle: garbage made before it is collected, what survives is frozen (out of every
later collection's walk), and objects made afterwards are collected as usual."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from clearsight import gc_policy


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session collects as before


def test_settle_collects_then_freezes(unfrozen: None) -> None:
    dead = _cycle()  # garbage, held only by its own cycle
    kept = [_Node() for _ in range(100)]
    before = gc.get_freeze_count()
    frozen = gc_policy.settle()
    assert dead() is None  # collected before freezing, not frozen as garbage
    assert frozen == gc.get_freeze_count() > before
    assert not any(gc.is_tracked(x) and x in gc.get_objects(generation=2) for x in kept[:3])
    later = _cycle()
    gc.collect()
    assert later() is None  # made after settle: collected as usual


def test_starting_turns_the_collector_off_until_settle(unfrozen: None) -> None:
    assert gc.isenabled()
    try:
        gc_policy.starting()
        assert not gc.isenabled()
        dead = _cycle()
        gc_policy.settle()
        assert dead() is None  # what start-up dropped is collected by settle
        assert gc.isenabled()
    finally:
        gc.enable()
