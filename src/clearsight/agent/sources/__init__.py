"""Log sources: each ``read()`` returns the records that appeared since the last one; ``commit(staged)``
persists the position after those records, together with the names of the spool requests that hold
them (staged, not yet published: agent/buffer.py), in one atomic write; ``staged()`` gives the names
saved by the last commit before a restart, so the agent publishes exactly those."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from clearsight.agent.logrecord import LogRecord


class LogSource(Protocol):
    name: str  # the collector name in the agent's metrics (journald, files, auth)
    service: str  # service.name of the records (their stream)
    errors: dict[str, int]

    def read(self) -> list[LogRecord]: ...
    def commit(self, staged: Sequence[str] = ()) -> None: ...
    def staged(self) -> list[str]: ...
    def close(self) -> None: ...
