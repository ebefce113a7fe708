"""Bounded buffers of encoded requests between the collectors and the shipper.

The collectors ``put`` a compressed request; the shipper ``peek``s the oldest, sends it and ``ack``s it.
A log source that must commit its read position together with what it read uses two phases:
``stage`` the requests (not yet visible to senders), save the position with the staged names in the
same state file, then ``publish`` them. After a crash, ``recover`` publishes the staged requests that
some source's saved state names (their position was committed, so they must be sent) and deletes
the others (their position was not, so the source reads those lines again): neither a gap nor a
second copy, whichever instant the process was killed at.
Several senders share one buffer with ``claim`` (the oldest request no other sender holds) and
``release`` (give it back undelivered); ``ack`` removes a request wherever it is.
When the bytes held exceed ``max_bytes`` the oldest requests are dropped and counted (never silently).
``MemoryBuffer`` lives in the process; ``DiskBuffer`` keeps one file per request in a spool directory,
so what was not yet delivered survives an agent restart. Both are thread-safe.

Every entry carries its idempotency key (``batch_key``: a hash of the request's bytes, sent as
``x-idempotency-key``), so a request re-sent after a lost answer, a timeout or an agent restart is
acknowledged by the server without being written again. The key is derived from the stored bytes
rather than from a counter: a spool emptied before a restart would start a counter again at 1 and
reuse keys the server still remembers (24 h), and the server would then acknowledge new data
without writing it. Two requests with the same bytes are the same data (one collection's
timestamp, one poll's observed time are inside them).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

log = logging.getLogger("clearsight.agent.buffer")


class Entry(NamedTuple):
    seq: int
    payload: bytes
    samples: int
    key: str  # the idempotency key (batch_key(payload))


def batch_key(payload: bytes) -> str:
    """The idempotency key of a request: stable across retries and restarts (``cs1-`` + 32 hex)."""
    return "cs1-" + hashlib.blake2b(payload, digest_size=16).hexdigest()


def _entry(seq: int, payload: bytes, samples: int) -> Entry:
    return Entry(seq, payload, samples, batch_key(payload))


class Buffer(Protocol):
    dropped_requests: int
    dropped_samples: int

    def put(self, payload: bytes, samples: int) -> None: ...
    def stage(self, payload: bytes, samples: int) -> str: ...
    def publish(self, names: Sequence[str]) -> None: ...
    def discard(self, names: Sequence[str]) -> None: ...
    def recover(self, referenced: Iterable[str]) -> None: ...
    def peek(self) -> Entry | None: ...
    def claim(self) -> Entry | None: ...
    def release(self, seq: int) -> None: ...
    def ack(self, seq: int) -> None: ...
    def wait(self, timeout: float) -> bool: ...
    def wake(self) -> None: ...
    def size_bytes(self) -> int: ...
    def __len__(self) -> int: ...


class _Base:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.dropped_requests = 0
        self.dropped_samples = 0
        self._cond = threading.Condition()
        self._claimed: set[int] = set()

    def release(self, seq: int) -> None:
        with self._cond:
            self._claimed.discard(seq)

    def wait(self, timeout: float) -> bool:
        """Block until something is buffered or ``wake()`` is called (True if something is buffered)."""
        with self._cond:
            if not self._has():
                self._cond.wait(timeout)
            return self._has()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _has(self) -> bool:
        raise NotImplementedError

    def _dropped(self, samples: int) -> None:
        self.dropped_requests += 1
        self.dropped_samples += samples
        log.warning("buffer full (%d bytes): dropped the oldest request (%d samples; %d dropped so far)",
                    self.max_bytes, samples, self.dropped_samples)


class MemoryBuffer(_Base):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self._q: deque[Entry] = deque()
        self._staged: dict[str, tuple[bytes, int]] = {}
        self._bytes = 0
        self._seq = 0

    def _has(self) -> bool:
        return bool(self._q)

    def put(self, payload: bytes, samples: int) -> None:
        with self._cond:
            self._append(payload, samples)

    def stage(self, payload: bytes, samples: int) -> str:
        with self._cond:
            name = secrets.token_hex(8)
            self._staged[name] = (payload, samples)
            return name

    def publish(self, names: Sequence[str]) -> None:
        with self._cond:
            for name in names:
                staged = self._staged.pop(name, None)
                if staged is not None:
                    self._append(*staged)

    def discard(self, names: Sequence[str]) -> None:
        with self._cond:
            for name in names:
                self._staged.pop(name, None)

    def recover(self, referenced: Iterable[str]) -> None:
        """Nothing survives a restart in memory: nothing to recover."""

    def _append(self, payload: bytes, samples: int) -> None:  # the caller holds the lock
        self._seq += 1
        self._q.append(_entry(self._seq, payload, samples))
        self._bytes += len(payload)
        while self._bytes > self.max_bytes and len(self._q) > 1:
            old = self._q.popleft()
            self._bytes -= len(old.payload)
            self._dropped(old.samples)
        self._cond.notify_all()

    def peek(self) -> Entry | None:
        with self._cond:
            return self._q[0] if self._q else None

    def claim(self) -> Entry | None:
        with self._cond:
            for e in self._q:
                if e.seq not in self._claimed:
                    self._claimed.add(e.seq)
                    return e
            return None

    def ack(self, seq: int) -> None:
        with self._cond:
            self._claimed.discard(seq)
            if self._q and self._q[0].seq == seq:
                self._bytes -= len(self._q.popleft().payload)
                return
            for i, e in enumerate(self._q):
                if e.seq == seq:
                    del self._q[i]
                    self._bytes -= len(e.payload)
                    return

    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._q)


class DiskBuffer(_Base):
    """One file per request, ``<seq>-<samples>.rw``, written to a temp name and renamed into place."""

    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._files: deque[tuple[int, int, int]] = deque()  # (seq, samples, size)
        self._bytes = 0
        for p in self.dir.iterdir():
            if p.suffix == ".tmp":
                p.unlink(missing_ok=True)  # a write interrupted by a crash: never acknowledged to anyone
                continue
            if p.suffix == ".staged":
                continue  # kept for recover(): published if a source's saved state names it
            seq, samples = self._parse(p.name)
            if seq is not None:
                size = p.stat().st_size
                self._files.append((seq, samples, size))
                self._bytes += size
        self._files = deque(sorted(self._files))
        self._seq = self._files[-1][0] if self._files else 0
        if self._files:
            log.info("spool %s: %d requests (%d bytes) from before the restart", self.dir, len(self._files),
                     self._bytes)

    @staticmethod
    def _parse(name: str) -> tuple[int | None, int]:
        stem, _, ext = name.partition(".")
        seq, _sep, samples = stem.partition("-")
        if ext != "rw" or not seq.isdigit() or not samples.isdigit():
            return None, 0
        return int(seq), int(samples)

    def _path(self, seq: int, samples: int) -> Path:
        return self.dir / f"{seq:016d}-{samples}.rw"

    def _has(self) -> bool:
        return bool(self._files)

    def put(self, payload: bytes, samples: int) -> None:
        with self._cond:
            self._seq += 1
            path = self._path(self._seq, samples)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, path)
            self._published(self._seq, samples, len(payload))

    def stage(self, payload: bytes, samples: int) -> str:
        """Write the request as ``<random>-<samples>.staged`` (written whole, then renamed): the name
        is random so a name some old state file still holds never matches a later request."""
        name = f"{secrets.token_hex(8)}-{samples}"
        path = self.dir / f"{name}.staged"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
        return name

    def publish(self, names: Sequence[str]) -> None:
        with self._cond:
            for name in names:
                staged = self.dir / f"{name}.staged"
                try:
                    size = staged.stat().st_size
                except FileNotFoundError:  # published before a restart (and maybe delivered since)
                    continue
                samples = int(name.rpartition("-")[2])
                self._seq += 1
                os.replace(staged, self._path(self._seq, samples))
                self._published(self._seq, samples, size)

    def discard(self, names: Sequence[str]) -> None:
        for name in names:
            (self.dir / f"{name}.staged").unlink(missing_ok=True)

    def recover(self, referenced: Iterable[str]) -> None:
        wanted = set(referenced)
        staged = sorted(self.dir.glob("*.staged"), key=lambda p: p.stat().st_mtime_ns)
        keep = [p.stem for p in staged if p.stem in wanted]
        for p in staged:
            if p.stem not in wanted:
                p.unlink(missing_ok=True)  # its source's position was not saved: it reads them again
        if keep:
            log.info("spool %s: %d staged requests whose read position was saved before the restart",
                     self.dir, len(keep))
            self.publish(keep)

    def _published(self, seq: int, samples: int, size: int) -> None:  # the caller holds the lock
        self._files.append((seq, samples, size))
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._files) > 1:
            old, n, old_size = self._files.popleft()
            self._path(old, n).unlink(missing_ok=True)
            self._bytes -= old_size
            self._dropped(n)
        self._cond.notify_all()

    def peek(self) -> Entry | None:
        with self._cond:
            while self._files:
                seq, samples, size = self._files[0]
                try:
                    return _entry(seq, self._path(seq, samples).read_bytes(), samples)
                except FileNotFoundError:  # removed behind our back: skip it
                    self._files.popleft()
                    self._bytes -= size
            return None

    def claim(self) -> Entry | None:
        with self._cond:
            for i, (seq, samples, size) in enumerate(self._files):
                if seq in self._claimed:
                    continue
                try:
                    payload = self._path(seq, samples).read_bytes()
                except FileNotFoundError:  # removed behind our back: forget it
                    del self._files[i]
                    self._bytes -= size
                    return None
                self._claimed.add(seq)
                return _entry(seq, payload, samples)
            return None

    def ack(self, seq: int) -> None:
        with self._cond:
            self._claimed.discard(seq)
            if self._files and self._files[0][0] == seq:
                _, samples, size = self._files.popleft()
                self._path(seq, samples).unlink(missing_ok=True)
                self._bytes -= size
                return
            for i, (s, samples, size) in enumerate(self._files):
                if s == seq:
                    del self._files[i]
                    self._path(seq, samples).unlink(missing_ok=True)
                    self._bytes -= size
                    return

    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._files)
