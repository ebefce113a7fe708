"""Log records and events as data: what the log decoders (``ingest/``) produce. No I/O.

``LogBatch`` is columnar, like ``SampleBatch``: ``n`` entries as numpy columns, with the label sets
that repeat (stream labels, resource attributes) stored once and referenced by index.

- ``timestamps``: int64 nanoseconds since the Unix epoch (exact; never a float on the way).
- ``streams[stream_idx[j]]``: the stream label set of entry ``j`` (a canonical ``Labels``: sorted,
  unique names, no empty values). Streams are what a LogQL stream selector matches and what the
  store indexes like series.
- ``resources[resource_idx[j]]``: resource attributes of entry ``j`` (host, container, service...:
  OTLP resource attributes, syslog host, Falco hostname), also a canonical ``Labels``.
- ``severity_number``: the OpenTelemetry severity number (0 unset, 1-4 TRACE, 5-8 DEBUG, 9-12 INFO,
  13-16 WARN, 17-20 ERROR, 21-24 FATAL) as uint8; ``severity_text`` is dictionary encoded:
  ``severity_texts[severity_text_idx[j]]`` (index 0 is always ``""``, unset).
- ``body``: the log line (``str``).
- attributes (Loki structured metadata, OTLP log record attributes, syslog structured data,
  Elasticsearch document fields) as key/value columns, not one JSON blob: the attributes of entry
  ``j`` are ``attr_keys[k]``/``attr_values[k]`` for ``k`` in ``attr_offsets[j]:attr_offsets[j+1]``
  (in wire order; string values, see each decoder for how other types are rendered).
- ``trace_ids``: ``(n, 16)`` uint8, ``span_ids``: ``(n, 8)`` uint8; all zero bytes means absent
  (the W3C trace context and OTLP treat an all-zero id as invalid, so it never names a real trace).

``Event`` is one Vigilant-style event (also Falco alerts, PulseSight ``network_flow`` /
``process_spawn`` / ``file_access``): an object per event, since events are few and wide.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from clearsight.model.labels import Labels

I64Array = npt.NDArray[np.int64]
I32Array = npt.NDArray[np.int32]
U8Array = npt.NDArray[np.uint8]

TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8
_ZERO_TRACE = bytes(TRACE_ID_BYTES)
_ZERO_SPAN = bytes(SPAN_ID_BYTES)

# --- severity ------------------------------------------------------------------------------------

SEVERITY_UNSET = 0
SEVERITY_TRACE = 1
SEVERITY_DEBUG = 5
SEVERITY_INFO = 9
SEVERITY_WARN = 13
SEVERITY_ERROR = 17
SEVERITY_FATAL = 21

_SEVERITY_WORDS: dict[str, int] = {
    "trace": SEVERITY_TRACE,
    "debug": SEVERITY_DEBUG,
    "dbug": SEVERITY_DEBUG,
    "info": SEVERITY_INFO,
    "information": SEVERITY_INFO,
    "informational": SEVERITY_INFO,
    "notice": SEVERITY_INFO + 1,
    "warn": SEVERITY_WARN,
    "warning": SEVERITY_WARN,
    "error": SEVERITY_ERROR,
    "err": SEVERITY_ERROR,
    "eror": SEVERITY_ERROR,
    "critical": SEVERITY_FATAL,
    "crit": SEVERITY_FATAL,
    "alert": SEVERITY_FATAL + 1,
    "emergency": SEVERITY_FATAL + 2,
    "emerg": SEVERITY_FATAL + 2,
    "fatal": SEVERITY_FATAL,
    "panic": SEVERITY_FATAL + 2,
}


def severity_number_of(text: str) -> int:
    """The OTLP severity number of a level word (``info``, ``WARNING``, ``err``, ``fatal``...),
    case-insensitive; 0 (unset) for a word it does not know."""
    return _SEVERITY_WORDS.get(text.strip().lower(), SEVERITY_UNSET)


def severity_range_name(number: int) -> str:
    """``TRACE``/``DEBUG``/``INFO``/``WARN``/``ERROR``/``FATAL`` for 1-24, ``""`` for 0/unknown."""
    if 1 <= number <= 24:
        return ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")[(number - 1) // 4]
    return ""


# --- the columnar batch --------------------------------------------------------------------------


@dataclass
class LogBatch:
    """``n`` decoded log entries as columns (see the module docstring for each column)."""

    streams: list[Labels]
    stream_idx: I32Array
    timestamps: I64Array
    severity_number: U8Array
    severity_texts: list[str]
    severity_text_idx: I32Array
    body: list[str]
    attr_offsets: I64Array
    attr_keys: list[str]
    attr_values: list[str]
    trace_ids: U8Array
    span_ids: U8Array
    resources: list[Labels]
    resource_idx: I32Array

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def num_entries(self) -> int:
        return len(self)

    @property
    def num_streams(self) -> int:
        return len(self.streams)

    @property
    def body_bytes(self) -> int:
        """UTF-8 size of all bodies (for the bytes-ingested counters)."""
        return sum(len(b.encode()) for b in self.body)

    def check(self) -> None:
        """Raises ``ValueError`` naming the first broken invariant of the columns (decoders' tests
        call it on every batch they produce; cheap: vectorized)."""
        n = len(self)
        problems = [
            (self.stream_idx.shape != (n,) or self.stream_idx.dtype != np.int32, "stream_idx shape/dtype"),
            (self.severity_number.shape != (n,) or self.severity_number.dtype != np.uint8, "severity_number"),
            (self.severity_text_idx.shape != (n,), "severity_text_idx shape"),
            (len(self.body) != n, "body length"),
            (self.attr_offsets.shape != (n + 1,) or int(self.attr_offsets[0]) != 0, "attr_offsets shape/start"),
            (bool(np.any(np.diff(self.attr_offsets) < 0)), "attr_offsets not monotonic"),
            (int(self.attr_offsets[-1]) != len(self.attr_keys) or len(self.attr_keys) != len(self.attr_values),
             "attr_offsets end / key and value counts"),
            (self.trace_ids.shape != (n, TRACE_ID_BYTES) or self.span_ids.shape != (n, SPAN_ID_BYTES), "id shapes"),
            (self.resource_idx.shape != (n,), "resource_idx shape"),
            (n > 0 and (int(self.stream_idx.min()) < 0 or int(self.stream_idx.max()) >= len(self.streams)),
             "stream_idx out of range"),
            (n > 0 and (int(self.resource_idx.min()) < 0 or int(self.resource_idx.max()) >= len(self.resources)),
             "resource_idx out of range"),
            (n > 0 and (int(self.severity_text_idx.min()) < 0
                        or int(self.severity_text_idx.max()) >= len(self.severity_texts)), "severity_text_idx range"),
            (n > 0 and int(self.severity_number.max()) > 24, "severity_number over 24"),
            (not self.severity_texts or self.severity_texts[0] != "", "severity_texts[0] must be ''"),
            (any(list(lbl) != sorted(set(lbl)) or any(v == "" for _, v in lbl) or len({k for k, _ in lbl}) != len(lbl)
                 for lbl in self.streams), "a stream label set is not canonical"),
            (len(set(self.streams)) != len(self.streams), "duplicate streams"),
            (not all(isinstance(b, str) for b in self.body), "a body is not a str"),
        ]
        for broken, what in problems:
            if broken:
                raise ValueError(f"invalid LogBatch: {what}")

    def severity_text(self, j: int) -> str:
        return self.severity_texts[int(self.severity_text_idx[j])]

    def attributes(self, j: int) -> list[tuple[str, str]]:
        a, b = int(self.attr_offsets[j]), int(self.attr_offsets[j + 1])
        return list(zip(self.attr_keys[a:b], self.attr_values[a:b], strict=True))

    def trace_id(self, j: int) -> bytes:
        """16 bytes, or ``b""`` when absent."""
        t = self.trace_ids[j].tobytes()
        return b"" if t == _ZERO_TRACE else t

    def span_id(self, j: int) -> bytes:
        """8 bytes, or ``b""`` when absent."""
        s = self.span_ids[j].tobytes()
        return b"" if s == _ZERO_SPAN else s

    def entry(self, j: int) -> LogEntry:
        """Entry ``j`` as one object (tests, small consumers; not for hot paths)."""
        return LogEntry(
            stream=self.streams[int(self.stream_idx[j])],
            timestamp=int(self.timestamps[j]),
            body=self.body[j],
            severity_number=int(self.severity_number[j]),
            severity_text=self.severity_text(j),
            attributes=tuple(self.attributes(j)),
            trace_id=self.trace_id(j),
            span_id=self.span_id(j),
            resource=self.resources[int(self.resource_idx[j])],
        )

    def entries(self) -> list[LogEntry]:
        return [self.entry(j) for j in range(len(self))]

    @staticmethod
    def from_entries(entries: list[LogEntry]) -> LogBatch:
        """Builds a batch from objects (tests, small writers)."""
        b = LogBatchBuilder()
        for e in entries:
            b.add(
                b.stream(e.stream), e.timestamp, e.body, e.severity_number, e.severity_text,
                e.attributes, e.trace_id, e.span_id, b.resource(e.resource),
            )
        return b.build()

    @staticmethod
    def empty() -> LogBatch:
        return LogBatchBuilder().build()


@dataclass(frozen=True)
class LogEntry:
    """One entry of a ``LogBatch`` as an object."""

    stream: Labels
    timestamp: int
    body: str
    severity_number: int = 0
    severity_text: str = ""
    attributes: tuple[tuple[str, str], ...] = ()
    trace_id: bytes = b""
    span_id: bytes = b""
    resource: Labels = ()


class LogBatchBuilder:
    """Accumulates entries into compact arrays; ``build()`` makes the numpy columns.

    ``stream(labels)``/``resource(labels)`` intern a canonical label set and return its index; the
    caller passes that index to ``add``. Trace/span ids must be 16/8 bytes or empty (the decoders
    check lengths and raise their own errors first).
    """

    __slots__ = (
        "_attr_keys", "_attr_offsets", "_attr_values", "_body", "_res_index", "_res_list", "_resource",
        "_sev", "_sev_index", "_sev_texts", "_sev_txt", "_span", "_stream", "_stream_index",
        "_stream_list", "_trace", "_ts",
    )

    def __init__(self) -> None:
        self._stream_index: dict[Labels, int] = {}
        self._stream_list: list[Labels] = []
        self._res_index: dict[Labels, int] = {(): 0}
        self._res_list: list[Labels] = [()]
        self._sev_index: dict[str, int] = {"": 0}
        self._sev_texts: list[str] = [""]
        self._stream = array("i")
        self._ts = array("q")
        self._sev = array("B")
        self._sev_txt = array("i")
        self._body: list[str] = []
        self._attr_offsets = array("q", [0])
        self._attr_keys: list[str] = []
        self._attr_values: list[str] = []
        self._trace = bytearray()
        self._span = bytearray()
        self._resource = array("i")

    def __len__(self) -> int:
        return len(self._ts)

    @property
    def num_streams(self) -> int:
        return len(self._stream_list)

    def stream(self, labels: Labels) -> int:
        i = self._stream_index.get(labels)
        if i is None:
            i = self._stream_index[labels] = len(self._stream_list)
            self._stream_list.append(labels)
        return i

    def resource(self, labels: Labels) -> int:
        i = self._res_index.get(labels)
        if i is None:
            i = self._res_index[labels] = len(self._res_list)
            self._res_list.append(labels)
        return i

    def severity_text_index(self, text: str) -> int:
        i = self._sev_index.get(text)
        if i is None:
            i = self._sev_index[text] = len(self._sev_texts)
            self._sev_texts.append(text)
        return i

    def add(
        self,
        stream: int,
        timestamp: int,
        body: str,
        severity_number: int = 0,
        severity_text: str = "",
        attributes: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
        trace_id: bytes = b"",
        span_id: bytes = b"",
        resource: int = 0,
    ) -> None:
        self._stream.append(stream)
        self._ts.append(timestamp)
        self._sev.append(severity_number)
        self._sev_txt.append(self.severity_text_index(severity_text))
        self._body.append(body)
        if attributes:
            for k, v in attributes:
                self._attr_keys.append(k)
                self._attr_values.append(v)
        self._attr_offsets.append(len(self._attr_keys))
        self._trace += trace_id or _ZERO_TRACE
        self._span += span_id or _ZERO_SPAN
        self._resource.append(resource)

    def add_kv(self, stream: int, timestamp: int, body: str, severity_number: int, severity_idx: int,
               keys: list[str], values: list[str], resource: int, trace_id: bytes = b"",
               span_id: bytes = b"") -> None:
        """``add`` for decoders that already hold the attribute keys and values as lists and the
        severity text's index (``severity_text_index``)."""
        self._stream.append(stream)
        self._ts.append(timestamp)
        self._sev.append(severity_number)
        self._sev_txt.append(severity_idx)
        self._body.append(body)
        if keys:
            self._attr_keys += keys
            self._attr_values += values
        self._attr_offsets.append(len(self._attr_keys))
        self._trace += trace_id or _ZERO_TRACE
        self._span += span_id or _ZERO_SPAN
        self._resource.append(resource)

    def build(self) -> LogBatch:
        n = len(self._ts)
        return LogBatch(
            streams=self._stream_list,
            stream_idx=np.frombuffer(self._stream, dtype=np.int32).copy() if n else np.zeros(0, np.int32),
            timestamps=np.frombuffer(self._ts, dtype=np.int64).copy() if n else np.zeros(0, np.int64),
            severity_number=np.frombuffer(self._sev, dtype=np.uint8).copy() if n else np.zeros(0, np.uint8),
            severity_texts=self._sev_texts,
            severity_text_idx=np.frombuffer(self._sev_txt, dtype=np.int32).copy() if n else np.zeros(0, np.int32),
            body=self._body,
            attr_offsets=np.frombuffer(self._attr_offsets, dtype=np.int64).copy(),
            attr_keys=self._attr_keys,
            attr_values=self._attr_values,
            trace_ids=np.frombuffer(bytes(self._trace), dtype=np.uint8).reshape(n, TRACE_ID_BYTES),
            span_ids=np.frombuffer(bytes(self._span), dtype=np.uint8).reshape(n, SPAN_ID_BYTES),
            resources=self._res_list,
            resource_idx=np.frombuffer(self._resource, dtype=np.int32).copy() if n else np.zeros(0, np.int32),
        )


# --- events --------------------------------------------------------------------------------------

EVENT_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
EVENT_SEVERITIES = ("low", "medium", "high", "critical")
FALCO_ALERT = "falco_alert"


@dataclass(frozen=True)
class Event:
    """One event (the Vigilant design). ``timestamp`` is int nanoseconds since the epoch; ``level``
    is one of ``EVENT_LEVELS``, ``severity`` one of ``EVENT_SEVERITIES``; ``data`` holds JSON
    values (str, int of any size, float, bool, None, lists, dicts) exactly as received;
    ``resource`` is a canonical label set (host, container, k8s namespace/pod...)."""

    id: str
    message: str
    level: str
    severity: str
    timestamp: int
    type: str = ""
    origin: str = ""
    source: str = ""
    group: str = ""
    tags: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    resource: Labels = ()
