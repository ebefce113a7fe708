"""OTLP metrics (``ExportMetricsServiceRequest``) to the Prometheus data model, as a ``SampleBatch``.

The mapping follows the OpenTelemetry specification "Prometheus and OpenMetrics Compatibility"
(section "OTLP Metric points to Prometheus"):

- **Metric names**: invalid characters become ``_``, runs of ``_`` collapse to one, a leading digit
  gets a ``_`` prefix. The unit is converted to a Prometheus word (``s`` -> ``seconds``, ``By`` ->
  ``bytes``, ``{packets}`` -> nothing, ``By/s`` -> ``bytes_per_second``, ``1`` -> ``ratio`` for
  gauges only: a counter or histogram of unit ``1`` counts things, it is not a ratio) and appended
  unless the name already ends with it. Monotonic cumulative sums get ``_total`` (after the unit).
- **Labels**: data point attributes, sanitized like names; when several attributes map to one
  label name their values are joined with ``;`` in the order of the original keys. Non-string
  values follow the attribute spec (``true``, ``42``, ``0.5``, JSON for arrays and maps).
  ``otel_scope_name``/``otel_scope_version`` carry the instrumentation scope (the spec requires
  them by default; ``OtlpOptions(scope_labels=False)`` turns them off).
- **Resource**: ``service.namespace``/``service.name`` -> ``job`` (``ns/name``, or ``name``),
  ``service.instance.id`` -> ``instance``; they override data point attributes of the same name.
  The other resource attributes go to one ``target_info`` series per resource (value 1, labels
  ``job``, ``instance`` and those attributes) at the newest timestamp of the resource's points.
  ``OtlpOptions(promote_resource_attributes=(...))`` also copies chosen resource attributes onto
  every series (a data point attribute of the same name wins), so queries need no target_info join.
- **Types**: gauge -> gauge; cumulative monotonic sum -> counter; cumulative non-monotonic sum ->
  gauge; cumulative histogram -> ``_bucket{le}`` (cumulative counts, always ending with
  ``le="+Inf"`` = count), ``_count`` and ``_sum`` (when the point has a sum); summary ->
  ``{quantile}`` series, ``_sum``, ``_count``. ``MetricMetadata`` (type, help = description,
  unit = the Prometheus unit word) once per family.
- **Delta temporality is rejected per metric**: a delta (or unspecified) sum or histogram has its
  points dropped and reported in the partial success (field path and metric named); the rest of the
  request is kept. Converting delta to cumulative needs per-series state across requests, which a
  pure decoder does not have; senders should use cumulative temporality
  (``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative``, the SDK default).
- **Exponential histograms become native histograms** (``OtlpOptions(exponential_histograms=
  "native")``, the default): one series named like the family (no suffix) with one native
  histogram sample per point, converted as Prometheus' OTLP translator does
  (``ingest/otlp_native_histogram.py``: scale -> schema, scales above 8 reduced to 8, below -4
  refused); ``NoRecordedValue`` -> a stale marker; exemplars on that series. ``"classic"`` converts
  them to classic histograms instead: buckets merged down to scale ``min(scale,
  exponential_max_scale)`` (default 0: ``le`` at powers of two, a resolution like the classic
  default buckets and stable when the SDK rescales), ``_bucket{le}``/``_count``/``_sum`` as above;
  see ``exponential_buckets``. Delta ones are rejected like other delta metrics either way.
  ``"drop"`` drops them, counted in ``histograms_dropped`` and reported as rejected points
  (partial success).
- Exemplars become ``SampleBatch.exemplars`` of their series (a histogram's go to the ``_bucket``
  series whose ``le`` is the first bound at or above the exemplar's value), labelled with their
  filtered attributes plus ``trace_id``/``span_id`` in hex, as Prometheus' OTLP translator does.
- Data points with neither ``asDouble`` nor ``asInt`` are dropped and reported as rejected.
- ``NoRecordedValue`` flag -> the Prometheus stale marker on every series of the point. Any other
  NaN becomes the ordinary NaN (a NaN payload cannot smuggle in a stale marker).
- Timestamps: nanoseconds -> milliseconds (floor); a zero ``timeUnixNano`` means "now".

Not done: ``_created`` series (start times), ``otel_scope_info``.

Speed: requests are parsed by upb with a wire-compatible "lite" schema that keeps each data
point's attributes as raw bytes, and the finished series keys are memoized across requests by
(family, resource/scope labels, raw attributes): exporters resend the same series every interval,
so in the steady state a point costs a few attribute reads and dict lookups, not attribute decoding
(see "wire schema" below).

Errors: ``OtlpInvalidInput`` (400) with the field path, ``PayloadTooLarge`` (413),
``UnsupportedMediaType`` (415), ``LimitExceeded`` (400) when the request expands past
``max_series_per_request``/``max_samples_per_request`` or has more data points than
``max_samples_per_request`` (counted per metric before its points are converted). Nothing else
escapes.
"""

from __future__ import annotations

import bisect
import math
import re
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from typing import Any, Literal

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from clearsight.ingest.otlp_common import (
    MalformedWire,
    OtlpInvalidInput,
    any_value_to_str,
    check_counts,
    decompress,
    encoding_of,
    format_float,
    next_field,
    parse_message,
    read_varint,
)
from clearsight.ingest.otlp_json import json_to_wire, too_many_points
from clearsight.ingest.otlp_native_histogram import native_histogram
from clearsight.model.exemplars import Exemplar
from clearsight.model.histogram import FloatHistogram
from clearsight.model.labels import METRIC_NAME
from clearsight.model.samples import (
    STALE_NAN,
    HistogramSamples,
    MetricMetadata,
    SampleBatch,
    _labels_from_canonical,
)
from clearsight.pipeline.errors import InvalidInput, LimitExceeded
from clearsight.pipeline.limits import WriteLimits

ExportMetricsServiceRequest = metrics_service_pb2.ExportMetricsServiceRequest

DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

TARGET_INFO = "target_info"
SERVICE_NAME = "service.name"
SERVICE_NAMESPACE = "service.namespace"
SERVICE_INSTANCE_ID = "service.instance.id"
_PROMOTED = frozenset({SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID})

_MAX_MESSAGES = 10
_NAN = float("nan")


def _plain(v: float) -> float:
    """``v`` with any NaN made the ordinary NaN: only the NoRecordedValue flag makes stale markers."""
    return _NAN if v != v else v


ExponentialMode = Literal["native", "classic", "drop"]
EXPONENTIAL_MODES: tuple[ExponentialMode, ...] = ("native", "classic", "drop")


def exponential_mode(name: str) -> ExponentialMode:
    """The ``OtlpOptions.exponential_histograms`` value named ``name`` (config:
    ``server.otlp_exponential_histograms``); ValueError for another name."""
    for mode in EXPONENTIAL_MODES:
        if mode == name:
            return mode
    raise ValueError(f"exponential histogram mode must be one of {', '.join(EXPONENTIAL_MODES)}, got {name!r}")


@dataclass(frozen=True)
class OtlpOptions:
    """Switches the spec allows ("exporters SHOULD provide a configuration option ...")."""

    scope_labels: bool = True  # otel_scope_name / otel_scope_version on every series
    unit_suffixes: bool = True  # append the unit word to metric names
    total_suffix: bool = True  # append _total to counters
    target_info: bool = True  # one target_info series per resource with other attributes
    # Resource attributes (OpenTelemetry keys, e.g. "k8s.namespace.name") also copied, sanitized,
    # onto every series of the resource; a data point attribute of the same label name wins.
    promote_resource_attributes: tuple[str, ...] = ()
    # Exponential histograms: "native" stores them as native histograms, "classic" converts them to
    # classic _bucket{le} series at scale min(scale, exponential_max_scale) (scale 0: le at powers of
    # two), "drop" drops and counts them.
    exponential_histograms: ExponentialMode = "native"
    exponential_max_scale: int = 0


DEFAULT_OPTIONS = OtlpOptions()


@dataclass
class DecodedMetrics:
    """The batch plus what the client is told in an OTLP partial success."""

    batch: SampleBatch
    rejected_points: int = 0
    messages: list[str] = field(default_factory=list)

    def error_message(self) -> str:
        return "; ".join(self.messages)


# --- names -------------------------------------------------------------------------------------

_INVALID_METRIC_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")
_ANNOTATION = re.compile(r"\{[^}]*\}")

# UCUM units (as used by OpenTelemetry semantic conventions) to Prometheus base-unit words.
_UNIT_WORDS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "bit": "bits",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
_PER_UNIT_WORDS = {
    "s": "second",
    "min": "minute",
    "h": "hour",
    "d": "day",
    "wk": "week",
    "w": "week",
    "mo": "month",
    "a": "year",
    "y": "year",
}


@lru_cache(maxsize=8192)
def sanitize_label_name(key: str) -> str:
    """An attribute key as a Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``); "" stays ""."""
    s = _INVALID_LABEL_CHARS.sub("_", key)
    if s and s[0].isdigit():
        s = "_" + s
    return _UNDERSCORES.sub("_", s)


def _sanitize_metric_name(name: str) -> str:
    s = _INVALID_METRIC_CHARS.sub("_", name)
    if s and s[0].isdigit():
        s = "_" + s
    return _UNDERSCORES.sub("_", s)


def _unit_word(word: str, table: dict[str, str]) -> str:
    word = word.strip()
    if word in table:
        return table[word]
    return _INVALID_LABEL_CHARS.sub("_", word).strip("_")


@lru_cache(maxsize=4096)
def prometheus_unit(unit: str, gauge: bool) -> str:
    """The Prometheus unit word of an OTLP unit ("" when none): ``s`` -> ``seconds``,
    ``By/s`` -> ``bytes_per_second``, ``{packet}`` -> "", ``1`` -> ``ratio`` (gauges only)."""
    unit = unit.strip()
    if unit == "1":
        return "ratio" if gauge else ""
    unit = _ANNOTATION.sub("", unit)
    main, _, per = unit.partition("/")
    main_w = "" if main.strip() == "1" else _unit_word(main, _UNIT_WORDS)
    per_w = _unit_word(per, _PER_UNIT_WORDS) if per else ""
    if per_w:
        return f"{main_w}_per_{per_w}" if main_w else f"per_{per_w}"
    return main_w


@lru_cache(maxsize=8192)
def prometheus_metric_name(
    name: str, unit: str, *, counter: bool, gauge: bool, unit_suffixes: bool = True, total_suffix: bool = True
) -> tuple[str, str]:
    """(family name, unit word) of an OTLP metric; counters end in ``_total``."""
    base = _sanitize_metric_name(name)
    unit_w = prometheus_unit(unit, gauge)
    had_total = counter and base.endswith("_total")
    if had_total:
        base = base[: -len("_total")]
    if unit_suffixes and unit_w and base != unit_w and not base.endswith("_" + unit_w):
        base = f"{base}_{unit_w}"
    if counter and (total_suffix or had_total):
        base += "_total"
    return _UNDERSCORES.sub("_", base), unit_w


# --- labels ------------------------------------------------------------------------------------


def attributes_to_labels(attrs: Sequence[common_pb2.KeyValue]) -> dict[str, str]:
    """Attributes as labels: names sanitized, colliding names' values joined with ``;`` in the
    lexicographic order of the original keys, empty values dropped."""
    out: dict[str, str] = {}
    for kv in attrs:
        name = sanitize_label_name(kv.key)
        if not name:
            continue
        value = any_value_to_str(kv.value)
        if value == "":
            continue
        if name in out:
            return _attributes_with_collisions(attrs)
        out[name] = value
    return out


def _attributes_with_collisions(attrs: Sequence[common_pb2.KeyValue]) -> dict[str, str]:
    groups: dict[str, list[tuple[str, str]]] = {}
    for kv in attrs:
        name = sanitize_label_name(kv.key)
        value = any_value_to_str(kv.value)
        if name and value != "":
            groups.setdefault(name, []).append((kv.key, value))
    return {name: ";".join(v for _, v in sorted(group, key=_first_str)) for name, group in groups.items()}


def _first_str(p: tuple[str, str]) -> str:
    return p[0]


def _encoded(labels: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(n, n.encode() + b"\xfe" + v.encode()) for n, v in labels.items()]


# --- wire schema -------------------------------------------------------------------------------
#
# Requests are parsed (by upb, in C) with a "lite" view of metrics.proto: the same field numbers and
# wire types, but a data point's attributes and exemplars stay raw bytes. A point's attribute set
# is then a hashable tuple of bytes, and the finished series key of (metric family, resource and
# scope labels, attributes) is memoized across requests: an exporter sends the same series every
# interval, so in the steady state a point costs a dict lookup instead of decoding its attributes.
# Attributes are fully parsed (and their UTF-8 checked) when a key is computed. Resource and scope
# use the real message types. OTLP/JSON is parsed into the real message, re-serialized and parsed
# with the lite view, so both encodings share this one converter.

_LITE_FILE = "clearsight/ingest/otlp_metrics_lite.proto"
_LITE_PKG = "clearsight.otlp_metrics_lite"
_F = descriptor_pb2.FieldDescriptorProto
_COMMON = ".opentelemetry.proto.common.v1."

# (message, [(field, number, type, repeated, message type or "", oneof index or -1)], [oneofs])
_LITE_SCHEMA: list[tuple[str, list[tuple[str, int, int, bool, str, int]], list[str]]] = [
    (
        "ExportMetricsServiceRequest",
        [("resource_metrics", 1, _F.TYPE_MESSAGE, True, "ResourceMetrics", -1)],
        [],
    ),
    (
        "ResourceMetrics",
        [
            ("resource", 1, _F.TYPE_MESSAGE, False, ".opentelemetry.proto.resource.v1.Resource", -1),
            ("scope_metrics", 2, _F.TYPE_MESSAGE, True, "ScopeMetrics", -1),
        ],
        [],
    ),
    (
        "ScopeMetrics",
        [
            ("scope", 1, _F.TYPE_MESSAGE, False, _COMMON + "InstrumentationScope", -1),
            ("metrics", 2, _F.TYPE_MESSAGE, True, "Metric", -1),
        ],
        [],
    ),
    (
        "Metric",
        [
            ("name", 1, _F.TYPE_STRING, False, "", -1),
            ("description", 2, _F.TYPE_STRING, False, "", -1),
            ("unit", 3, _F.TYPE_STRING, False, "", -1),
            ("gauge", 5, _F.TYPE_MESSAGE, False, "Gauge", 0),
            ("sum", 7, _F.TYPE_MESSAGE, False, "Sum", 0),
            ("histogram", 9, _F.TYPE_MESSAGE, False, "Histogram", 0),
            ("exponential_histogram", 10, _F.TYPE_MESSAGE, False, "ExponentialHistogram", 0),
            ("summary", 11, _F.TYPE_MESSAGE, False, "Summary", 0),
            ("metadata", 12, _F.TYPE_MESSAGE, True, _COMMON + "KeyValue", -1),
        ],
        ["data"],
    ),
    ("Gauge", [("data_points", 1, _F.TYPE_MESSAGE, True, "NumberDataPoint", -1)], []),
    (
        "Sum",
        [
            ("data_points", 1, _F.TYPE_MESSAGE, True, "NumberDataPoint", -1),
            ("aggregation_temporality", 2, _F.TYPE_INT32, False, "", -1),
            ("is_monotonic", 3, _F.TYPE_BOOL, False, "", -1),
        ],
        [],
    ),
    (
        "Histogram",
        [
            ("data_points", 1, _F.TYPE_MESSAGE, True, "HistogramDataPoint", -1),
            ("aggregation_temporality", 2, _F.TYPE_INT32, False, "", -1),
        ],
        [],
    ),
    (
        "ExponentialHistogram",
        [
            ("data_points", 1, _F.TYPE_MESSAGE, True, "ExponentialHistogramDataPoint", -1),
            ("aggregation_temporality", 2, _F.TYPE_INT32, False, "", -1),
        ],
        [],
    ),
    ("Summary", [("data_points", 1, _F.TYPE_MESSAGE, True, "SummaryDataPoint", -1)], []),
    (
        "ExponentialHistogramDataPoint",
        [
            ("attributes", 1, _F.TYPE_BYTES, True, "", -1),
            ("time_unix_nano", 3, _F.TYPE_FIXED64, False, "", -1),
            ("count", 4, _F.TYPE_FIXED64, False, "", -1),
            ("sum", 5, _F.TYPE_DOUBLE, False, "", 0),
            ("scale", 6, _F.TYPE_SINT32, False, "", -1),
            ("zero_count", 7, _F.TYPE_FIXED64, False, "", -1),
            ("positive", 8, _F.TYPE_MESSAGE, False, "Buckets", -1),
            ("negative", 9, _F.TYPE_MESSAGE, False, "Buckets", -1),
            ("flags", 10, _F.TYPE_UINT32, False, "", -1),
            ("exemplars", 11, _F.TYPE_BYTES, True, "", -1),
            ("zero_threshold", 14, _F.TYPE_DOUBLE, False, "", -1),
        ],
        ["optional_sum"],
    ),
    (
        "Buckets",
        [
            ("offset", 1, _F.TYPE_SINT32, False, "", -1),
            ("bucket_counts", 2, _F.TYPE_UINT64, True, "", -1),
        ],
        [],
    ),
    (
        "NumberDataPoint",
        [
            ("attributes", 7, _F.TYPE_BYTES, True, "", -1),
            ("time_unix_nano", 3, _F.TYPE_FIXED64, False, "", -1),
            ("as_double", 4, _F.TYPE_DOUBLE, False, "", 0),
            ("as_int", 6, _F.TYPE_SFIXED64, False, "", 0),
            ("exemplars", 5, _F.TYPE_BYTES, True, "", -1),
            ("flags", 8, _F.TYPE_UINT32, False, "", -1),
        ],
        ["value"],
    ),
    (
        "HistogramDataPoint",
        [
            ("attributes", 9, _F.TYPE_BYTES, True, "", -1),
            ("time_unix_nano", 3, _F.TYPE_FIXED64, False, "", -1),
            ("count", 4, _F.TYPE_FIXED64, False, "", -1),
            ("sum", 5, _F.TYPE_DOUBLE, False, "", 0),
            ("bucket_counts", 6, _F.TYPE_FIXED64, True, "", -1),
            ("explicit_bounds", 7, _F.TYPE_DOUBLE, True, "", -1),
            ("exemplars", 8, _F.TYPE_BYTES, True, "", -1),
            ("flags", 10, _F.TYPE_UINT32, False, "", -1),
        ],
        ["optional_sum"],
    ),
    (
        "SummaryDataPoint",
        [
            ("attributes", 7, _F.TYPE_BYTES, True, "", -1),
            ("time_unix_nano", 3, _F.TYPE_FIXED64, False, "", -1),
            ("count", 4, _F.TYPE_FIXED64, False, "", -1),
            ("sum", 5, _F.TYPE_DOUBLE, False, "", -1),
            ("quantile_values", 6, _F.TYPE_MESSAGE, True, "ValueAtQuantile", -1),
            ("flags", 8, _F.TYPE_UINT32, False, "", -1),
        ],
        [],
    ),
    (
        "ValueAtQuantile",
        [("quantile", 1, _F.TYPE_DOUBLE, False, "", -1), ("value", 2, _F.TYPE_DOUBLE, False, "", -1)],
        [],
    ),
]


def _lite_request_class(
    file: str = _LITE_FILE,
    pkg: str = _LITE_PKG,
    schema: list[tuple[str, list[tuple[str, int, int, bool, str, int]], list[str]]] = _LITE_SCHEMA,
) -> type[Message]:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(file)
    except KeyError:
        fdp = descriptor_pb2.FileDescriptorProto(name=file, package=pkg, syntax="proto3")
        fdp.dependency.extend([common_pb2.DESCRIPTOR.name, resource_pb2.DESCRIPTOR.name])
        for msg_name, fields, oneofs in schema:
            m = fdp.message_type.add(name=msg_name)
            for o in oneofs:
                m.oneof_decl.add(name=o)
            for fname, number, ftype, repeated, type_name, oneof in fields:
                f = m.field.add(
                    name=fname,
                    number=number,
                    type=ftype,
                    label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
                )
                if type_name:
                    f.type_name = type_name if type_name.startswith(".") else f".{pkg}.{type_name}"
                if oneof >= 0:
                    f.oneof_index = oneof
        pool.AddSerializedFile(fdp.SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{pkg}.ExportMetricsServiceRequest"))


LiteExportMetricsServiceRequest = _lite_request_class()


def _lite_class(name: str) -> type[Message]:
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(f"{_LITE_PKG}.{name}"))


# --- large bodies: points parsed in slices ------------------------------------------------------
#
# upb holds the GIL while it parses, 25-100 ns per message: 6 MB of 3 million empty data points
# would stall every other thread (the event loop included) for 0.2-0.6 s. Bodies over
# ``_SLICE_ABOVE`` decompressed bytes are first parsed with a "shallow" schema in which each metric
# stays raw bytes (a copy, not a parse). A metric up to ``_SLICE_ABOVE`` bytes is then parsed at
# once; a larger one has its top-level fields walked in Python (which lets other threads run) and
# its data points cut into slices of at most ``_SLICE_ABOVE`` bytes, parsed one at a time while they
# are converted. The walk stops counting past ``max_samples_per_request`` points, so the point
# limit fails such a request before any point is parsed. Protobuf's merge rules are kept: the
# occurrences of a metric's data field merge, the last oneof member on the wire wins.

_SLICE_ABOVE = 1 << 20
_DATA_KINDS = {"gauge": "Gauge", "sum": "Sum", "histogram": "Histogram",
               "exponential_histogram": "ExponentialHistogram", "summary": "Summary"}
_SHALLOW_SCHEMA = [
    (
        name,
        [
            (f, n, _F.TYPE_BYTES, rep, "", o) if name == "ScopeMetrics" and f == "metrics" else (f, n, t, rep, tn, o)
            for f, n, t, rep, tn, o in fields
        ],
        oneofs,
    )
    for name, fields, oneofs in _LITE_SCHEMA
]
ShallowExportMetricsServiceRequest = _lite_request_class(
    "clearsight/ingest/otlp_metrics_shallow.proto", "clearsight.otlp_metrics_shallow", _SHALLOW_SCHEMA
)
_CONTAINERS = {kind: _lite_class(name) for kind, name in _DATA_KINDS.items()}
_KIND_OF_FIELD = {5: "gauge", 7: "sum", 9: "histogram", 10: "exponential_histogram", 11: "summary"}
LiteMetric = _lite_class("Metric")
_MALFORMED = "cannot parse protobuf ExportMetricsServiceRequest: malformed data points"


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    try:
        return read_varint(buf, pos)
    except MalformedWire:
        raise InvalidInput(_MALFORMED) from None


def _next_field(buf: bytes, pos: int) -> tuple[int, int, int]:
    try:
        return next_field(buf, pos)
    except MalformedWire:
        raise InvalidInput(_MALFORMED) from None


def _split_points(blob: bytes, max_points: int) -> tuple[bytes, list[bytes], int]:
    """(the container's other fields, slices of its data points (field 1) of at most
    ``_SLICE_ABOVE`` bytes, the number of points; counting stops past ``max_points``)."""
    head: list[bytes] = []
    slices: list[bytes] = []
    n = 0
    run_start = pos = 0
    end = len(blob)
    while pos < end:
        entry = pos
        if blob[pos] == 0x0A and pos + 1 < end and blob[pos + 1] < 0x80:  # a point under 128 bytes
            pos += 2 + blob[pos + 1]
            if pos > end:
                raise InvalidInput(_MALFORMED)
            n += 1
            if n > max_points:
                return b"", [], n
            if pos - run_start > _SLICE_ABOVE and entry > run_start:
                slices.append(blob[run_start:entry])
                run_start = entry
            continue
        key, _, pos = _next_field(blob, pos)
        if pos > end:
            raise InvalidInput(_MALFORMED)
        if key == 0x0A:  # field 1, length-delimited: a data point
            n += 1
            if n > max_points:
                return b"", [], n
            if pos - run_start > _SLICE_ABOVE and entry > run_start:
                slices.append(blob[run_start:entry])
                run_start = entry
        else:
            if entry > run_start:
                slices.append(blob[run_start:entry])
            head.append(blob[entry:pos])
            run_start = pos
    if end > run_start:
        slices.append(blob[run_start:end])
    return b"".join(head), slices, n


def _check_counts(data: bytes, limits: WriteLimits) -> None:
    """``otlp_common.check_counts`` for metrics: at most ``max_series_per_request`` resources,
    scopes and metrics (an entry with data yields at least one series; an empty one carries
    nothing)."""
    check_counts(data, entries="metrics", max_entries=limits.max_series_per_request,
                 limit="max_series_per_request", refuse=_refuse_count)


def _refuse_count(attributes: bool, message: str) -> LimitExceeded:
    return LimitExceeded("labels_per_series" if attributes else "series_per_request", message)


def _parse_container(container: type[Message], data: bytes) -> Any:
    try:
        return container.FromString(data)
    except Exception as e:
        raise InvalidInput(f"cannot parse protobuf ExportMetricsServiceRequest: {e}") from None


class _SlicedPoints:
    """A large metric's data points, parsed one slice at a time while iterated."""

    def __init__(self, container: type[Message], slices: list[bytes], n: int) -> None:
        self._container = container
        self._slices = slices
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Any:
        for data in self._slices:
            yield from _parse_container(self._container, data).data_points


class _SlicedData:
    """A large Gauge/Sum/...: its other fields parsed, its ``data_points`` sliced."""

    def __init__(self, head: Any, points: _SlicedPoints) -> None:
        self._head = head
        self.data_points = points

    def __getattr__(self, name: str) -> Any:
        return getattr(self._head, name)


def _entries(blob: bytes) -> Any:
    """(field number, wire type, entry start, payload start, end) of each top-level field."""
    pos, end = 0, len(blob)
    while pos < end:
        entry = pos
        key, pos = _read_varint(blob, pos)
        wire = key & 7
        start = pos
        if wire == 2:
            size, start = _read_varint(blob, pos)
            pos = start + size
        elif wire == 0:
            _, pos = _read_varint(blob, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise InvalidInput(_MALFORMED)
        if pos > end:
            raise InvalidInput(_MALFORMED)
        yield key >> 3, wire, entry, start, pos


class _BigMetric:
    """A Metric over ``_SLICE_ABOVE`` bytes that reads like a lite one: its top-level fields are
    walked in Python; the data (gauge, sum, ...: a oneof, so the last kind on the wire wins and the
    occurrences of that kind since the last other kind merge) is kept raw and its points sliced."""

    def __init__(self, raw: bytes, max_points: int) -> None:
        head: list[bytes] = []
        kind: str | None = None
        parts: list[bytes] = []
        for number, wire, entry, start, end in _entries(raw):
            k = _KIND_OF_FIELD.get(number) if wire == 2 else None
            if k is None:
                head.append(raw[entry:end])
                continue
            if k != kind:
                kind, parts = k, []
            parts.append(raw[start:end])
        self._head = _parse_container(LiteMetric, b"".join(head))
        self._kind = kind
        self._data: Any = None
        if kind is not None:
            container = _CONTAINERS[kind]
            blob = b"".join(parts)
            if len(blob) <= _SLICE_ABOVE:
                self._data = _parse_container(container, blob)
            else:
                rest, slices, n = _split_points(blob, max_points)
                self._data = _SlicedData(_parse_container(container, rest), _SlicedPoints(container, slices, n))

    def WhichOneof(self, name: str) -> str | None:
        return self._kind if name == "data" else self._head.WhichOneof(name)

    def __getattr__(self, name: str) -> Any:
        if name == self._kind:
            return self._data
        return getattr(self._head, name)


def _metric_of(raw: bytes, max_points: int) -> Any:
    """A raw Metric from the shallow parse, parsed (at once when small, see ``_BigMetric``)."""
    if len(raw) <= _SLICE_ABOVE:
        return _parse_container(LiteMetric, raw)
    return _BigMetric(raw, max_points)


# --- memoized series keys ----------------------------------------------------------------------


class _Memo:
    """A bounded memo shared by all requests (and threads: single dict operations are atomic under
    the GIL). It only caches a pure function of its key, so it cannot change any result. Bounded by
    entries and by approximate bytes (a hostile client's huge attribute sets cannot grow it past
    ``max_bytes``); when full it is simply cleared."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.items: dict[Any, Any] = {}
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.bytes = 0

    def put(self, key: Any, value: Any, size: int) -> None:
        if len(self.items) >= self.max_items or self.bytes + size > self.max_bytes:
            self.items.clear()
            self.bytes = 0
        self.items[key] = value
        self.bytes += size


# Per entry: the raw attributes in the key, the finished key(s), tuple/dict overhead.
_ENTRY_OVERHEAD = 200
_NUMBER_KEYS = _Memo(1 << 17, 64 << 20)  # (family, context id, raw attributes) -> series key
_HISTOGRAM_KEYS = _Memo(1 << 15, 64 << 20)  # (family, context id, raw attributes, bounds) -> keys
_BASE_LABELS = _Memo(1 << 16, 64 << 20)  # (context id, raw attributes) -> sorted encoded labels


@dataclass(frozen=True)
class _HistogramKeys:
    with_buckets: tuple[bytes, ...]  # le=<each finite bound>..., le="+Inf", _count
    no_buckets: tuple[bytes, ...]  # le="+Inf", _count (a point without bucket counts)
    sum: bytes
    inf_bounds: tuple[int, ...]  # positions of explicit bounds equal to +Inf (no series of their own)


@dataclass(frozen=True)
class _Context:
    """Labels every point of a scope gets: ``labels`` (otel_scope_*, job, instance) override the
    point's attributes, ``defaults`` (promoted resource attributes) yield to them."""

    labels: dict[str, str]
    defaults: dict[str, str]
    ident: tuple[bytes, bytes]


def _context(labels: dict[str, str], defaults: dict[str, str]) -> _Context:
    def enc(d: dict[str, str]) -> bytes:
        return b"\xff".join(e for _, e in sorted(_encoded(d)))

    return _Context(labels, defaults, (enc(labels), enc(defaults)))


def _series_key(base: list[tuple[str, bytes]], name: str, extra: tuple[str, str] | None) -> bytes:
    """The canonical key (``model.labels.canonical_bytes`` of the sorted labels) of ``base`` plus
    ``__name__`` and an optional generated label, which replaces a same-named attribute."""
    if extra is None:
        parts = [*base, (METRIC_NAME, b"__name__\xfe" + name.encode())]
    else:
        parts = [p for p in base if p[0] != extra[0]]
        parts.append((METRIC_NAME, b"__name__\xfe" + name.encode()))
        parts.append((extra[0], extra[0].encode() + b"\xfe" + extra[1].encode()))
    parts.sort(key=_first)
    return b"\xff".join(p[1] for p in parts)


def _first(p: tuple[str, bytes]) -> str:
    return p[0]


def _point_labels(raw_attrs: tuple[bytes, ...], ctx: _Context, path: str) -> list[tuple[str, bytes]]:
    """A point's labels without ``__name__``, as (name, encoded pair) sorted by name. Memoized by
    (context, raw attributes): many metric families share the same attribute sets. The returned
    list is shared: callers must not modify it."""
    mk = (ctx.ident, raw_attrs)
    hit: list[tuple[str, bytes]] | None = _BASE_LABELS.items.get(mk)
    if hit is not None:
        return hit
    kvs = []
    for j, raw in enumerate(raw_attrs):
        try:
            kvs.append(common_pb2.KeyValue.FromString(raw))
        except Exception as e:
            raise OtlpInvalidInput(f"{path}.attributes[{j}]", f"cannot parse attribute: {e}") from None
    labels = attributes_to_labels(kvs)
    if ctx.defaults:
        labels = {**ctx.defaults, **labels}
    labels.update(ctx.labels)
    base = sorted(_encoded(labels), key=_first)
    _BASE_LABELS.put(mk, base, 2 * sum(len(e) for _, e in base) + _ENTRY_OVERHEAD)
    return base


# --- the converter -----------------------------------------------------------------------------


class _Builder:
    def __init__(self, limits: WriteLimits, now_ms: int, options: OtlpOptions) -> None:
        self.limits = limits
        self.now_ms = now_ms
        self.options = options
        self.keys: list[bytes] = []
        self.key_index: dict[bytes, int] = {}
        self.idx = array("i")
        self.ts = array("q")
        self.vals = array("d")
        self.metadata: dict[str, MetricMetadata] = {}
        self.rejected = 0
        self.messages: list[str] = []
        self.exemplars_dropped = 0
        self.exemplars: list[Exemplar] = []
        self.histograms_dropped = 0
        self.points = 0
        self.h_idx = array("i")
        self.h_ts = array("q")
        self.hists: list[FloatHistogram] = []

    def count_points(self, n: int) -> None:
        """Counts a metric's data points before any is converted: every point with a value yields
        at least one sample, so more points than ``max_samples_per_request`` fail the request at once
        (a few KB of gzip can hold millions of empty points; converting them would cost seconds)."""
        self.points += n
        if self.points > self.limits.max_samples_per_request:
            raise too_many_points(self.limits.max_samples_per_request)

    def reject(self, points: int, message: str) -> None:
        self.rejected += points
        if len(self.messages) < _MAX_MESSAGES:
            self.messages.append(message)
        elif len(self.messages) == _MAX_MESSAGES:
            self.messages.append("(further messages omitted)")

    def new_key(self, key: bytes) -> int:
        i = len(self.keys)
        if i >= self.limits.max_series_per_request:
            raise LimitExceeded(
                "series_per_request", f"request has more than {self.limits.max_series_per_request} series"
            )
        self.keys.append(key)
        self.key_index[key] = i
        return i

    def check_samples(self) -> None:
        if len(self.vals) + len(self.hists) > self.limits.max_samples_per_request:
            raise LimitExceeded(
                "samples_per_request", f"request has more than {self.limits.max_samples_per_request} samples"
            )

    def add(self, key: bytes, ts: int, value: float) -> None:
        i = self.key_index.get(key)
        if i is None:
            i = self.new_key(key)
        self.idx.append(i)
        self.ts.append(ts)
        self.vals.append(value)

    def add_histogram(self, key: bytes, ts: int, h: FloatHistogram) -> None:
        i = self.key_index.get(key)
        if i is None:
            i = self.new_key(key)
        self.h_idx.append(i)
        self.h_ts.append(ts)
        self.hists.append(h)

    def meta(self, family: str, type_: str, help_: str, unit: str) -> None:
        if family not in self.metadata:
            self.metadata[family] = MetricMetadata(metric=family, type=type_, help=help_, unit=unit)

    def batch(self) -> SampleBatch:
        return SampleBatch(
            keys=self.keys,
            key_kind="canon",
            decode_labels=_labels_from_canonical,
            series_idx=np.frombuffer(self.idx, dtype=np.int32).copy(),
            timestamps=np.frombuffer(self.ts, dtype=np.int64).copy(),
            values=np.frombuffer(self.vals, dtype=np.float64).copy(),
            metadata=list(self.metadata.values()),
            exemplars_dropped=self.exemplars_dropped,
            exemplars=self.exemplars,
            histograms_dropped=self.histograms_dropped,
            histograms=HistogramSamples(np.frombuffer(self.h_idx, dtype=np.int32).copy(),
                                        np.frombuffer(self.h_ts, dtype=np.int64).copy(), self.hists)
            if self.hists else None,
        )


def _resource_labels(attrs: Iterable[common_pb2.KeyValue]) -> tuple[dict[str, str], dict[str, str]]:
    """(job/instance labels, the other resource attributes as labels)."""
    promoted: dict[str, str] = {}
    others: list[common_pb2.KeyValue] = []
    for kv in attrs:
        if kv.key in _PROMOTED:
            promoted[kv.key] = any_value_to_str(kv.value)
        else:
            others.append(kv)
    target: dict[str, str] = {}
    name = promoted.get(SERVICE_NAME, "")
    ns = promoted.get(SERVICE_NAMESPACE, "")
    if name:
        target["job"] = f"{ns}/{name}" if ns else name
    inst = promoted.get(SERVICE_INSTANCE_ID, "")
    if inst:
        target["instance"] = inst
    return target, attributes_to_labels(others)


def convert_protobuf(
    data: bytes, *, limits: WriteLimits, now_ms: int, options: OtlpOptions = DEFAULT_OPTIONS
) -> DecodedMetrics:
    """Parses a binary ``ExportMetricsServiceRequest`` and maps it (the OTLP/gRPC entry point)."""
    _check_counts(data, limits)
    if len(data) > _SLICE_ABOVE:
        shallow = parse_message(data, "protobuf", ShallowExportMetricsServiceRequest)
        cap = limits.max_samples_per_request
        return _convert(shallow, limits=limits, now_ms=now_ms, options=options,
                        wrap=lambda m: _metric_of(m, cap))
    req = parse_message(data, "protobuf", LiteExportMetricsServiceRequest)
    return _convert(req, limits=limits, now_ms=now_ms, options=options)


def convert_request(
    req: metrics_service_pb2.ExportMetricsServiceRequest,
    *,
    limits: WriteLimits,
    now_ms: int,
    options: OtlpOptions = DEFAULT_OPTIONS,
) -> DecodedMetrics:
    """Maps an already parsed request (see the module docstring for the rules)."""
    return convert_protobuf(req.SerializeToString(), limits=limits, now_ms=now_ms, options=options)


def _convert(
    req: Any, *, limits: WriteLimits, now_ms: int, options: OtlpOptions, wrap: Any = None
) -> DecodedMetrics:
    b = _Builder(limits, now_ms, options)
    for ri, rm in enumerate(req.resource_metrics):
        target, other_attrs = _resource_labels(rm.resource.attributes)
        defaults: dict[str, str] = {}
        if options.promote_resource_attributes:
            promote = set(options.promote_resource_attributes) - _PROMOTED
            defaults = attributes_to_labels([kv for kv in rm.resource.attributes if kv.key in promote])
        before = len(b.vals)
        max_ts: int | None = None
        for si, sm in enumerate(rm.scope_metrics):
            labels = {}
            if options.scope_labels:
                if sm.scope.name:
                    labels["otel_scope_name"] = sm.scope.name
                if sm.scope.version:
                    labels["otel_scope_version"] = sm.scope.version
            labels.update(target)
            ctx = _context(labels, defaults)
            for mi, metric in enumerate(sm.metrics):
                path = f"resourceMetrics[{ri}].scopeMetrics[{si}].metrics[{mi}]"
                if wrap is not None:
                    metric = wrap(metric)
                t = _convert_metric(b, metric, ctx, path)
                if t is not None and (max_ts is None or t > max_ts):
                    max_ts = t
        if options.target_info and other_attrs and len(b.vals) > before and max_ts is not None:
            b.add(_series_key(_encoded({**other_attrs, **target}), TARGET_INFO, None), max_ts, 1.0)
            b.meta(TARGET_INFO, "gauge", "Target metadata", "")
    return DecodedMetrics(b.batch(), b.rejected, b.messages)


def _metric_type_hint(metric: Any) -> str:
    for kv in metric.metadata:
        if kv.key == "prometheus.type":
            return any_value_to_str(kv.value)
    return ""


def _convert_metric(b: _Builder, metric: Any, ctx: _Context, path: str) -> int | None:
    """Adds the metric's samples; returns the newest timestamp (ms) it added, if any."""
    kind = metric.WhichOneof("data")
    if kind is None:
        return None
    if not metric.name:
        raise OtlpInvalidInput(f"{path}.name", "metric name is empty")
    b.count_points(len(getattr(metric, kind).data_points))
    opts = b.options
    if kind == "gauge":
        hint = _metric_type_hint(metric)
        family, unit = prometheus_metric_name(
            metric.name,
            metric.unit,
            counter=False,
            gauge=True,
            unit_suffixes=opts.unit_suffixes,
            total_suffix=opts.total_suffix,
        )
        b.meta(family, "unknown" if hint == "unknown" else "gauge", metric.description, unit)
        return _numbers(b, metric.gauge.data_points, family, ctx, f"{path}.gauge", metric.name)
    if kind == "sum":
        s = metric.sum
        if _rejected_temporality(b, s.aggregation_temporality, metric.name, f"{path}.sum", s.data_points):
            return None
        counter = s.is_monotonic
        family, unit = prometheus_metric_name(
            metric.name,
            metric.unit,
            counter=counter,
            gauge=not counter,
            unit_suffixes=opts.unit_suffixes,
            total_suffix=opts.total_suffix,
        )
        if counter:
            type_ = "counter"
        else:
            hint = _metric_type_hint(metric)
            type_ = hint if hint in ("info", "stateset") else "gauge"
        b.meta(family, type_, metric.description, unit)
        return _numbers(b, s.data_points, family, ctx, f"{path}.sum", metric.name)
    if kind == "histogram":
        h = metric.histogram
        if _rejected_temporality(b, h.aggregation_temporality, metric.name, f"{path}.histogram",
                                 h.data_points):
            return None
        family, unit = prometheus_metric_name(
            metric.name,
            metric.unit,
            counter=False,
            gauge=False,
            unit_suffixes=opts.unit_suffixes,
            total_suffix=opts.total_suffix,
        )
        b.meta(family, "histogram", metric.description, unit)
        return _histograms(b, h.data_points, family, ctx, f"{path}.histogram")
    if kind == "summary":
        family, unit = prometheus_metric_name(
            metric.name,
            metric.unit,
            counter=False,
            gauge=False,
            unit_suffixes=opts.unit_suffixes,
            total_suffix=opts.total_suffix,
        )
        b.meta(family, "summary", metric.description, unit)
        return _summaries(b, metric.summary.data_points, family, ctx, f"{path}.summary")
    # exponential_histogram
    eh = metric.exponential_histogram
    if opts.exponential_histograms != "drop":
        if _rejected_temporality(b, eh.aggregation_temporality, metric.name, f"{path}.exponentialHistogram",
                                 eh.data_points):
            return None
        family, unit = prometheus_metric_name(
            metric.name,
            metric.unit,
            counter=False,
            gauge=False,
            unit_suffixes=opts.unit_suffixes,
            total_suffix=opts.total_suffix,
        )
        b.meta(family, "histogram", metric.description, unit)
        if opts.exponential_histograms == "native":
            return _native_histograms(b, eh.data_points, family, ctx, f"{path}.exponentialHistogram")
        return _histograms(b, eh.data_points, family, ctx, f"{path}.exponentialHistogram", exponential=True)
    n = len(eh.data_points)
    if n:
        b.histograms_dropped += n
        b.reject(
            n,
            f"metric {metric.name!r}: exponential histograms are not accepted by this server, "
            f"{n} data point(s) dropped (configure an explicit-bucket histogram aggregation)",
        )
    return None


def _rejected_temporality(b: _Builder, t: int, name: str, path: str, data_points: Any) -> bool:
    """True (and the metric's points counted as rejected) unless ``t`` is cumulative.

    Only this metric is refused: the rest of the request is kept and the client is told in an OTLP
    partial success (``rejectedDataPoints`` + ``errorMessage``), which senders do not retry.
    """
    if t == CUMULATIVE:
        return False
    if isinstance(data_points, _SlicedPoints):
        for _ in data_points:  # still parsed: a damaged body is refused whichever way it was parsed
            pass
    points = len(data_points)
    if t == DELTA:
        b.reject(
            points,
            f"{path}.aggregationTemporality: metric {name!r} uses delta temporality, which is not "
            f"supported, {points} data point(s) dropped: Clearsight stores Prometheus-style cumulative "
            "series; configure the exporter for cumulative temporality "
            "(e.g. OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative)",
        )
    else:
        b.reject(
            points,
            f"{path}.aggregationTemporality: metric {name!r} has an unspecified or unknown aggregation "
            f"temporality ({t}), {points} data point(s) dropped",
        )
    return True


def _numbers(b: _Builder, points: Any, family: str, ctx: _Context, path: str, metric_name: str) -> int | None:
    max_ts = -1
    missing = 0
    memo = _NUMBER_KEYS.items
    now_ms = b.now_ms
    key_index = b.key_index
    idx_append, ts_append, val_append = b.idx.append, b.ts.append, b.vals.append
    for pi, p in enumerate(points):
        which = p.WhichOneof("value")
        if p.flags & NO_RECORDED_VALUE:
            v = STALE_NAN
        elif which == "as_double":
            v = p.as_double
            if v != v:
                v = _NAN  # one NaN: a payload could otherwise spell a stale marker
        elif which == "as_int":
            v = float(p.as_int)
        else:
            missing += 1
            continue
        attrs = tuple(p.attributes)
        mk = (family, ctx.ident, attrs)
        key = memo.get(mk)
        if key is None:
            key = _series_key(_point_labels(attrs, ctx, f"{path}.dataPoints[{pi}]"), family, None)
            _NUMBER_KEYS.put(mk, key, 2 * len(key) + _ENTRY_OVERHEAD)
        if p.exemplars:
            _exemplars(b, p.exemplars, key, f"{path}.dataPoints[{pi}]")
        t = p.time_unix_nano
        ts = t // 1_000_000 if t else now_ms
        i = key_index.get(key)
        if i is None:
            i = b.new_key(key)
        idx_append(i)
        ts_append(ts)
        val_append(v)
        if ts > max_ts:
            max_ts = ts
    b.check_samples()  # one sample per point: memory is bounded by the body until here
    if missing:
        b.reject(
            missing,
            f"metric {metric_name!r} ({path}): {missing} data point(s) without a value "
            "(neither asDouble nor asInt) dropped",
        )
    return max_ts if max_ts >= 0 else None


def _exemplars(b: _Builder, raws: Any, key: bytes, path: str) -> None:
    """A point's exemplars (raw ``Exemplar`` messages) as exemplars of the series ``key``, labelled
    like Prometheus' OTLP translator: the filtered attributes plus ``trace_id``/``span_id`` (hex)."""
    series = _labels_from_canonical(key)
    for j, raw in enumerate(raws):
        try:
            ex = metrics_pb2.Exemplar.FromString(raw)
        except Exception as e:
            raise OtlpInvalidInput(f"{path}.exemplars[{j}]", f"cannot parse exemplar: {e}") from None
        labels = attributes_to_labels(list(ex.filtered_attributes))
        if ex.trace_id:
            labels["trace_id"] = ex.trace_id.hex()
        if ex.span_id:
            labels["span_id"] = ex.span_id.hex()
        which = ex.WhichOneof("value")
        value = ex.as_double if which == "as_double" else float(ex.as_int)
        t = ex.time_unix_nano
        b.exemplars.append(Exemplar(series=series, labels=tuple(sorted(labels.items())), value=value,
                                    ts=t // 1_000_000 if t else b.now_ms))


def _histogram_exemplars(b: _Builder, raws: Any, keys: _HistogramKeys, bounds: tuple[float, ...],
                         has_buckets: bool, path: str) -> None:
    """A histogram point's exemplars go to the ``_bucket`` series whose ``le`` is the first bound at
    or above the exemplar's value (``le="+Inf"`` without bucket counts), as Prometheus does."""
    before = len(b.exemplars)
    _exemplars(b, raws, keys.no_buckets[0], path)
    if not has_buckets:
        return
    finite = [x for i, x in enumerate(bounds) if i not in keys.inf_bounds]
    for j in range(before, len(b.exemplars)):
        e = b.exemplars[j]
        key = keys.with_buckets[bisect.bisect_left(finite, e.value)]
        b.exemplars[j] = Exemplar(series=_labels_from_canonical(key), labels=e.labels, value=e.value, ts=e.ts)


def _histogram_keys(
    raw_attrs: tuple[bytes, ...], bounds: tuple[float, ...], family: str, ctx: _Context, path: str
) -> _HistogramKeys:
    prev = None
    for bound in bounds:
        if bound != bound or (prev is not None and bound <= prev):
            raise OtlpInvalidInput(
                f"{path}.explicitBounds",
                f"histogram {family!r}: explicit bounds must be strictly increasing and not NaN",
            )
        prev = bound
    base = _point_labels(raw_attrs, ctx, path)
    bucket = family + "_bucket"
    tail = (_series_key(base, bucket, ("le", "+Inf")), _series_key(base, family + "_count", None))
    finite = tuple(
        _series_key(base, bucket, ("le", format_float(bound))) for bound in bounds if bound != math.inf
    )
    return _HistogramKeys(
        with_buckets=finite + tail,
        no_buckets=tail,
        sum=_series_key(base, family + "_sum", None),
        inf_bounds=tuple(i for i, bound in enumerate(bounds) if bound == math.inf),
    )


_MIN_SCALE, _MAX_SCALE = -10, 20  # the OpenTelemetry data model's range


def exponential_buckets(p: Any, max_scale: int, path: str) -> tuple[tuple[float, ...], list[int]]:
    """An exponential histogram point as classic buckets: (upper bounds, counts per bucket plus a
    last overflow slot of 0). Buckets are merged down to scale ``t = min(scale, max_scale)``, where
    positive bucket ``j`` holds (2^(j*2^-t), 2^((j+1)*2^-t)] and gets that upper bound as ``le``;
    negative bucket ``j`` holds [-2^((j+1)*2^-t), -2^(j*2^-t)) and gets ``le`` = -2^(j*2^-t); the
    zero bucket gets ``le`` = the zero threshold. Empty buckets at the ends of each side are left out
    (SDKs send their whole backing range), except one empty bucket just outside the populated range
    (below it for positive values, beyond it for negative ones): its ``le`` is the populated range's
    lower bound, which histogram_quantile interpolates from. Positive bounds past the float range
    fold into +Inf, negative ones into the most negative float."""
    scale = p.scale
    if not _MIN_SCALE <= scale <= _MAX_SCALE:
        raise OtlpInvalidInput(f"{path}.scale", f"scale {scale} is outside [{_MIN_SCALE}, {_MAX_SCALE}]")
    t = min(scale, max_scale)
    shift = scale - t
    width = 2.0**-t  # exponent step of one bucket at scale t
    merged: dict[float, int] = {}
    for side, positive in ((p.positive, True), (p.negative, False)):
        counts = side.bucket_counts
        lo = next((k for k, c in enumerate(counts) if c), len(counts))
        hi = next((k for k in range(len(counts) - 1, lo - 1, -1) if counts[k]), lo - 1)
        coarse: dict[int, int] = {}
        for k in range(lo, hi + 1):
            j = (side.offset + k) >> shift
            coarse[j] = coarse.get(j, 0) + counts[k]
        if not coarse:
            continue
        if positive:
            coarse.setdefault(min(coarse) - 1, 0)
        else:
            coarse.setdefault(max(coarse) + 1, 0)
        for j, c in coarse.items():
            if positive:
                e = (j + 1) * width
                if e >= 1024:
                    continue  # beyond the largest float: counted by +Inf only
                le = 2.0**e
            else:
                e = j * width
                le = -(2.0**e) if e < 1024 else -sys.float_info.max
            merged[le] = merged.get(le, 0) + c
    if p.zero_count:
        zt = p.zero_threshold
        if not math.isfinite(zt) or zt < 0:
            raise OtlpInvalidInput(
                f"{path}.zeroThreshold", f"zero threshold {zt} is not a finite >= 0 number"
            )
        merged[zt] = merged.get(zt, 0) + p.zero_count
    bounds = tuple(sorted(merged))
    counts_out = [merged[x] for x in bounds]
    counts_out.append(0)
    return bounds, counts_out


def _histograms(
    b: _Builder, points: Any, family: str, ctx: _Context, path: str, exponential: bool = False
) -> int | None:
    max_ts = -1
    memo = _HISTOGRAM_KEYS.items
    now_ms = b.now_ms
    key_index = b.key_index
    max_scale = b.options.exponential_max_scale
    for pi, p in enumerate(points):
        if exponential:
            bounds, counts = exponential_buckets(p, max_scale, f"{path}.dataPoints[{pi}]")
        else:
            bounds = tuple(p.explicit_bounds)
            counts = p.bucket_counts
        attrs = tuple(p.attributes)
        mk = (family, ctx.ident, attrs, bounds)
        keys: _HistogramKeys | None = memo.get(mk)
        if keys is None:
            keys = _histogram_keys(attrs, bounds, family, ctx, f"{path}.dataPoints[{pi}]")
            size = sum(map(len, keys.with_buckets)) + 2 * len(keys.sum) + 8 * len(bounds)
            _HISTOGRAM_KEYS.put(mk, keys, size + _ENTRY_OVERHEAD)
        if counts and len(counts) != len(bounds) + 1:
            raise OtlpInvalidInput(
                f"{path}.dataPoints[{pi}].bucketCounts",
                f"histogram {family!r} has {len(counts)} bucket counts for {len(bounds)} explicit "
                f"bounds (expected {len(bounds) + 1})",
            )
        if p.exemplars:
            _histogram_exemplars(b, p.exemplars, keys, bounds, bool(counts), f"{path}.dataPoints[{pi}]")
        t = p.time_unix_nano
        ts = t // 1_000_000 if t else now_ms
        count = float(p.count)
        if counts:
            series = keys.with_buckets
            values: list[float] = list(accumulate(counts))
            values[-1] = count  # the last slot is le="+Inf": the point's count
            if keys.inf_bounds:
                values = [v for i, v in enumerate(values) if i not in keys.inf_bounds]
            values.append(count)
        else:
            series = keys.no_buckets
            values = [count, count]
        if p.flags & NO_RECORDED_VALUE:
            values = [STALE_NAN] * len(series)
        ids = [key_index.get(k) for k in series]
        if None in ids:
            ids = [b.new_key(k) if i is None else i for k, i in zip(series, ids, strict=True)]
        b.idx.extend(ids)  # type: ignore[arg-type]
        b.ts.extend([ts] * len(series))
        b.vals.extend(values)
        if p.HasField("sum"):
            b.add(keys.sum, ts, STALE_NAN if p.flags & NO_RECORDED_VALUE else _plain(p.sum))
        if ts > max_ts:
            max_ts = ts
        b.check_samples()
    return max_ts if max_ts >= 0 else None


def _native_histograms(b: _Builder, points: Any, family: str, ctx: _Context, path: str) -> int | None:
    """Exponential histogram points as native histogram samples of one series each."""
    max_ts = -1
    for pi, p in enumerate(points):
        where = f"{path}.dataPoints[{pi}]"
        key = _series_key(_point_labels(tuple(p.attributes), ctx, where), family, None)
        t = p.time_unix_nano
        ts = t // 1_000_000 if t else b.now_ms
        if p.flags & NO_RECORDED_VALUE:
            b.add(key, ts, STALE_NAN)
        else:
            b.add_histogram(key, ts, native_histogram(p, where))
        if p.exemplars:
            _exemplars(b, p.exemplars, key, where)
        if ts > max_ts:
            max_ts = ts
        b.check_samples()
    return max_ts if max_ts >= 0 else None


def _summaries(b: _Builder, points: Any, family: str, ctx: _Context, path: str) -> int | None:
    max_ts = -1
    for pi, p in enumerate(points):
        t = p.time_unix_nano
        ts = t // 1_000_000 if t else b.now_ms
        base = _point_labels(tuple(p.attributes), ctx, f"{path}.dataPoints[{pi}]")
        stale = bool(p.flags & NO_RECORDED_VALUE)
        for qi, q in enumerate(sorted(p.quantile_values, key=lambda q: q.quantile)):
            if not 0.0 <= q.quantile <= 1.0:
                raise OtlpInvalidInput(
                    f"{path}.dataPoints[{pi}].quantileValues[{qi}].quantile",
                    f"summary {family!r}: quantile {q.quantile} is not in [0, 1]",
                )
            b.add(
                _series_key(base, family, ("quantile", format_float(q.quantile))),
                ts,
                STALE_NAN if stale else _plain(q.value),
            )
        b.add(_series_key(base, family + "_sum", None), ts, STALE_NAN if stale else _plain(p.sum))
        b.add(_series_key(base, family + "_count", None), ts, STALE_NAN if stale else float(p.count))
        if ts > max_ts:
            max_ts = ts
        b.check_samples()
    return max_ts if max_ts >= 0 else None


# --- entry points ------------------------------------------------------------------------------


def decode_otlp_metrics_report(
    body: bytes,
    *,
    content_type: str,
    limits: WriteLimits,
    now_ms: int,
    content_encoding: str | None = None,
    options: OtlpOptions = DEFAULT_OPTIONS,
) -> DecodedMetrics:
    """Like ``decode_otlp_metrics`` and also says which points were rejected (partial success)."""
    encoding = encoding_of(content_type)
    data = decompress(body, content_encoding, limits)
    if encoding == "json":
        data = json_to_wire(data, limits.max_samples_per_request)
    return convert_protobuf(data, limits=limits, now_ms=now_ms, options=options)


def decode_otlp_metrics(
    body: bytes,
    *,
    content_type: str,
    limits: WriteLimits,
    now_ms: int,
    content_encoding: str | None = None,
    options: OtlpOptions = DEFAULT_OPTIONS,
) -> SampleBatch:
    """An OTLP/HTTP metrics body (``application/x-protobuf`` or ``application/json``, optionally
    gzip/deflate ``content_encoding``) as a ``SampleBatch`` with ``canon`` keys."""
    return decode_otlp_metrics_report(
        body,
        content_type=content_type,
        limits=limits,
        now_ms=now_ms,
        content_encoding=content_encoding,
        options=options,
    ).batch
