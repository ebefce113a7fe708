"""Reading and writing the events health and correlation work with, behind two narrow functions.

``EventReader`` returns events of given types in a time range (health reads recent security events,
the correlator change and security events and its own correlations). ``LogStoreEvents`` implements it
over the log store interface (events are log entries, ``pipeline/event_entries.py``).
``EventWriter`` stores events (the server wires it to the log ingestor, so they are validated and
committed like events posted to ``/api/v1/events``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from clearsight.model.logs import Event
from clearsight.model.matchers import Matcher
from clearsight.pipeline.event_entries import EVENT_TYPE_LABEL, event_of
from clearsight.store.logs_interface import LogStore

CHANGE = "change"
SECURITY_TYPES = ("falco_alert", "security")
CORRELATION = "correlation"

EventWriter = Callable[[str, list[Event]], None]


class EventReader(Protocol):
    def events(self, tenant: str, types: Sequence[str], start_ns: int, end_ns: int, limit: int) -> list[Event]:
        """Events whose type is one of ``types`` with ``start_ns <= timestamp <= end_ns``, newest first,
        at most ``limit``."""
        ...


def _re_escape(v: str) -> str:
    return "".join("\\" + c if c in r".^$*+?()[]{}|\\" else c for c in v)


class LogStoreEvents:
    def __init__(self, store: LogStore) -> None:
        self.store = store

    def events(self, tenant: str, types: Sequence[str], start_ns: int, end_ns: int, limit: int) -> list[Event]:
        m = Matcher.of("=~", EVENT_TYPE_LABEL, "|".join(_re_escape(t) for t in types))
        batch = self.store.select(tenant, [m], start_ns, end_ns, (), max(1, limit), "backward")
        return [event_of(batch.entry(j)) for j in range(len(batch))]
