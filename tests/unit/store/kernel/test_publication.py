"""Contract of the kernel's publication protocol (store/kernel/publication.py)."""

from __future__ import annotations

import threading

from clearsight.store.kernel.publication import Publication, Retry


def test_read_retries_when_a_publication_overlaps_and_finishes_under_the_lock() -> None:
    pub = Publication(optimistic_attempts=2)
    calls = 0

    def overlapping() -> int:
        nonlocal calls
        calls += 1
        if calls <= 2:  # a publication runs while each optimistic attempt reads
            with pub.publishing():
                pass
        return calls

    assert pub.read(overlapping) == 3
    assert pub.retries == 2


def test_read_retries_on_retry() -> None:
    pub = Publication()
    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Retry("snapshot gone")
        return "ok"

    assert pub.read(flaky) == "ok" and calls == 2


def test_readers_see_consistent_pairs_while_a_writer_publishes() -> None:
    pub = Publication()
    state = {"a": 0, "b": 0}  # the invariant a == b holds outside publications
    stop = threading.Event()
    seen: list[tuple[int, int]] = []

    def writer() -> None:
        for i in range(1, 2000):
            with pub.publishing():
                state["a"] = i
                state["b"] = i

    def reader() -> None:
        while not stop.is_set():
            seen.append(pub.read(lambda: (state["a"], state["b"])))

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for r in readers:
        r.start()
    w = threading.Thread(target=writer)
    w.start()
    w.join()
    stop.set()
    for r in readers:
        r.join()
    assert seen and all(a == b for a, b in seen)
    assert pub.generation % 2 == 0
