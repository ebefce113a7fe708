"""Publication: how readers pair in-memory state with a database snapshot while the writer moves
data between them, without a lock on the read path.

A store keeps part of its data in memory (a head, a catalogue of chunks) and part in the database.
A commit that moves data between the two (compaction, retention, a rewrite) and the in-memory
update after it form a *publication*: the writer wraps both in ``publishing()``. A reader calls
``read(fn)``: ``fn`` runs optimistically; if a publication overlapped it (the generation counter
moved, or was odd), or ``fn`` raised ``Retry``, it runs again; the last attempt holds publications
off while it runs, so a read always finishes. Plain appends that only add to memory after their
commit need no publication: a reader sees either state consistently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class Retry(Exception):
    """Raised by a read that found its snapshots inconsistent; ``Publication.read`` runs it again."""


class Publication:
    def __init__(self, optimistic_attempts: int = 2) -> None:
        self._lock = threading.Lock()
        self._gen = 0  # odd while a publication runs
        self.optimistic_attempts = optimistic_attempts
        self.retries = 0

    @property
    def generation(self) -> int:
        return self._gen

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """Wraps a commit and the in-memory update that follows it. Writer thread only; never
        nested."""
        with self._lock:
            self._gen += 1
            try:
                yield
            finally:
                self._gen += 1

    def read(self, fn: Callable[[], T]) -> T:
        for _ in range(self.optimistic_attempts):
            gen = self._gen
            if gen & 1:  # a publication is running: wait for it
                with self._lock:
                    pass
                self.retries += 1
                continue
            try:
                out = fn()
            except Retry:
                self.retries += 1
                continue
            if self._gen == gen:
                return out
            self.retries += 1
        with self._lock:
            return fn()
