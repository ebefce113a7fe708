"""The event gRPC service (``clearsight.events.v1.EventService``, published as
``docs/clearsight_events.proto``): ``Log`` (one event), ``LogStream`` (client streaming) and
``Query``. Served beside OTLP on the OTLP/gRPC listener (``api/otlp_grpc.py``), authenticated by
the same interceptor (``auth/grpc_interceptor.py``: events:write for Log/LogStream, events:read
for Query).

A message becomes the same dict ``POST /api/v1/events`` decodes and goes through the same
validator (``ingest.events.event_from_dict``), so every rule and error text is shared; an invalid
event ends the call with INVALID_ARGUMENT naming the field (``event.level``, ``events[3].message``)
in the message and in a ``google.rpc.BadRequest``. A stream is read whole, bounded by
``max_entries_per_request`` events and ``max_decompressed_bytes`` bytes, validated, and committed
as one batch: nothing of a refused stream is written. Answers come after the commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import DecodeError

from clearsight.api.otlp_grpc import TenantOfMetadata, abort_ingest
from clearsight.api.proto import clearsight_events_pb2 as pb
from clearsight.ingest.events import EventValidationError, event_from_dict
from clearsight.ingest.log_common import LogLimits, too_many_entries
from clearsight.lazy_module import lazy_module
from clearsight.model.logs import Event
from clearsight.model.matchers import Matcher
from clearsight.pipeline.errors import IngestError, PayloadTooLarge

if TYPE_CHECKING:
    import grpc
else:  # imported on first use (a gRPC listener): the log query API imports EventQuery from here
    grpc = lazy_module("grpc")

SERVICE = "clearsight.events.v1.EventService"

# (tenant, events) -> None once committed; raises IngestError.
LogEvents = Callable[[str, list[Event]], None]
_INT_EXACT = 2**53


@dataclass(frozen=True)
class EventQuery:
    """A ``Query`` request, times in int ns (0: the default)."""

    types: tuple[str, ...]
    levels: tuple[str, ...]
    origins: tuple[str, ...]
    start_ns: int
    end_ns: int
    limit: int
    forward: bool


# (tenant, query) -> events; raises ValueError with the message for a bad query.
QueryEvents = Callable[[str, EventQuery, Sequence[Matcher]], list[Event]]
# the label matchers narrowing the caller (a label-narrowed role, auth/label_scope.py); () when none;
# PermissionError when the caller's selector cannot narrow an event query
NarrowOfCall = Callable[[], Sequence[Matcher]]


def _json_value(v: Any) -> Any:
    """Struct numbers are doubles: integral ones within +-2^53 back to int (as JSON would carry them)."""
    if isinstance(v, float) and v.is_integer() and -_INT_EXACT <= v <= _INT_EXACT:
        return int(v)
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def _ns(ts: Any) -> int:
    return int(ts.seconds) * 1_000_000_000 + int(ts.nanos)


def message_dict(m: pb.Event) -> dict[str, Any]:
    """The JSON-shaped dict of an ``Event`` message (empty strings and unset fields are absent)."""
    d: dict[str, Any] = {
        k: v for k in ("id", "level", "severity", "origin", "source", "type", "group") if (v := getattr(m, k))
    }
    d["message"] = m.message  # proto3 cannot tell "" from unset: an empty message is accepted, as over HTTP
    if m.HasField("timestamp"):
        d["timestamp"] = _ns(m.timestamp)
    if m.tags:
        d["tags"] = list(m.tags)
    if m.HasField("data"):
        d["data"] = _json_value(json_format.MessageToDict(m.data))
    if m.resource:
        d["resource"] = dict(m.resource)
    return d


def event_message(ev: Event) -> pb.Event:
    m = pb.Event(
        id=ev.id,
        message=ev.message,
        level=ev.level,
        severity=ev.severity,
        origin=ev.origin,
        source=ev.source,
        type=ev.type,
        group=ev.group,
        tags=list(ev.tags),
        resource=dict(ev.resource),
    )
    secs, nanos = divmod(ev.timestamp, 1_000_000_000)
    m.timestamp.seconds, m.timestamp.nanos = secs, nanos
    if ev.data:
        s = struct_pb2.Struct()
        s.update(ev.data)
        m.data.CopyFrom(s)
    return m


def decode_event(raw: bytes, where: str, *, now_ns: int, limits: LogLimits) -> Event:
    """One serialized ``Event`` -> a validated ``Event`` (``EventValidationError`` names the field)."""
    try:
        m = pb.Event.FromString(raw)
    except DecodeError as e:
        raise EventValidationError(where, f"not a clearsight.events.v1.Event message: {e}") from None
    return event_from_dict(message_dict(m), where, now_ns=now_ns, limits=limits)


def decode_stream(messages: Iterable[bytes], *, now_ns: int, limits: LogLimits) -> list[Event]:
    """The events of a ``LogStream`` call, all validated before any is written."""
    out: list[Event] = []
    total = 0
    for i, raw in enumerate(messages):
        if i >= limits.max_entries_per_request:
            raise too_many_entries(limits)
        total += len(raw)
        if total > limits.max_decompressed_bytes:
            raise PayloadTooLarge(
                f"stream of more than {limits.max_decompressed_bytes} bytes exceeds the limit of "
                f"{limits.max_decompressed_bytes} bytes (max_decompressed_bytes)"
            )
        out.append(decode_event(raw, f"events[{i}]", now_ns=now_ns, limits=limits))
    return out


def query_of(raw: bytes) -> EventQuery:
    try:
        m = pb.QueryRequest.FromString(raw)
    except DecodeError as e:
        raise ValueError(f"not a clearsight.events.v1.QueryRequest message: {e}") from None
    return EventQuery(
        tuple(m.type),
        tuple(m.level),
        tuple(m.origin),
        _ns(m.start) if m.HasField("start") else 0,
        _ns(m.end) if m.HasField("end") else 0,
        m.limit,
        m.forward,
    )


class EventService:
    """The handlers; ``handler()`` is the generic handler the gRPC server mounts."""

    def __init__(
        self,
        log_events: LogEvents,
        query_events: QueryEvents,
        tenant_of_metadata: TenantOfMetadata,
        limits: LogLimits,
        clock_ns: Callable[[], int] = time.time_ns,
        narrow_of_call: NarrowOfCall = lambda: (),
    ) -> None:
        self._log = log_events
        self._query = query_events
        self._tenant_of = tenant_of_metadata
        self._limits = limits
        self._clock_ns = clock_ns
        self._narrow_of_call = narrow_of_call

    def _tenant(self, context: grpc.ServicerContext) -> str:
        return self._tenant_of([(m[0], m[1]) for m in (context.invocation_metadata() or ())])

    def _commit(self, context: grpc.ServicerContext, decode: Callable[[int], list[Event]]) -> bytes:
        try:
            tenant = self._tenant(context)
            evs = decode(self._clock_ns())
            if evs:
                self._log(tenant, evs)
        except IngestError as e:
            abort_ingest(context, e)
        return pb.LogResponse(accepted=len(evs), ids=[ev.id for ev in evs]).SerializeToString()

    def log(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        return self._commit(
            context, lambda now: [decode_event(request, "event", now_ns=now, limits=self._limits)]
        )

    def log_stream(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return self._commit(context, lambda now: decode_stream(requests, now_ns=now, limits=self._limits))

    def query(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            narrow = self._narrow_of_call()
        except PermissionError as e:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(e))
        try:
            tenant = self._tenant(context)
            evs = self._query(tenant, query_of(request), narrow)
        except (ValueError, IngestError) as e:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, e.message if isinstance(e, IngestError) else str(e)
            )
        return pb.QueryResponse(events=[event_message(ev) for ev in evs]).SerializeToString()

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Log": grpc.unary_unary_rpc_method_handler(self.log),
                "LogStream": grpc.stream_unary_rpc_method_handler(self.log_stream),
                "Query": grpc.unary_unary_rpc_method_handler(self.query),
            },
        )
