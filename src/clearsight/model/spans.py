"""Spans: the unit of trace ingestion (``ingest/otlp_traces.py`` and ``ingest/simple_json.py`` make
them, ``store/spans_interface.py`` keeps them).

One ``Span`` per OTLP span, flattened: the resource's attributes and the instrumentation scope are
copied onto every span of their resource (a store may deduplicate them). Attribute values are text,
rendered as the OTLP decoders render log attributes (``otlp_common.any_value_to_str``).
"""

from __future__ import annotations

from dataclasses import dataclass

TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8
# OTLP Span.SpanKind and Status.StatusCode (the numbers are the wire values).
SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES = ("unset", "ok", "error")
UNKNOWN_SERVICE = "unknown_service"


@dataclass(frozen=True, slots=True)
class Span:
    trace_id: bytes  # 16 bytes, not all zero
    span_id: bytes  # 8 bytes, not all zero
    parent_span_id: bytes  # b"" for a root span, else 8 bytes
    name: str
    kind: int  # index into SPAN_KINDS
    start_ns: int  # Unix epoch nanoseconds, > 0
    end_ns: int  # >= start_ns
    status_code: int  # index into STATUS_CODES
    status_message: str
    service_name: str  # the resource's service.name, UNKNOWN_SERVICE when it has none
    attr_keys: tuple[str, ...] = ()
    attr_values: tuple[str, ...] = ()
    resource_keys: tuple[str, ...] = ()
    resource_values: tuple[str, ...] = ()
    scope_name: str = ""
    scope_version: str = ""
    trace_state: str = ""
    events: int = 0  # how many span events were sent (their contents are not kept)
    links: int = 0  # how many span links were sent (not kept)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass
class SpanBatch:
    spans: list[Span]

    def __len__(self) -> int:
        return len(self.spans)
