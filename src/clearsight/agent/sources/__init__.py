"""Log sources: each ``read()`` returns the records that appeared since the last one; ``commit()`` persists
the position after those records are safely in the agent's buffer (so a restart resumes there)."""

from __future__ import annotations

from typing import Protocol

from clearsight.agent.logrecord import LogRecord


class LogSource(Protocol):
    name: str  # the collector name in the agent's metrics (journald, files, auth)
    service: str  # service.name of the records (their stream)
    errors: dict[str, int]

    def read(self) -> list[LogRecord]: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...
