"""What a log source produces: one record (a line, a journal entry), before the agent adds host metadata."""

from __future__ import annotations

from typing import NamedTuple

AttrValue = str | int
Attributes = tuple[tuple[str, AttrValue], ...]

# journald/syslog priority 0-7 -> severity text and OTLP severity number (the mapping of
# clearsight.ingest.syslog, repeated here so the agent does not import the server's log model)
PRIORITY_TEXT = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
PRIORITY_OTLP = (24, 23, 21, 17, 13, 10, 9, 5)


class LogRecord(NamedTuple):
    time_ns: int  # when it happened (0 = unknown: the server uses the observed time)
    body: str
    severity_number: int = 0  # OTLP SeverityNumber, 0 = unspecified
    severity_text: str = ""
    attributes: Attributes = ()
