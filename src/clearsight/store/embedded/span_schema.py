"""The span tables of the embedded trace store, kept in the log store's file ``logs.duckdb``
(documented in docs/storage.md).

Spans live in one table per UTC day of their start time, ``spans_YYYYMMDD``, created by the first
write of that day: a server that never received a span has no span table at all (no schema version
change was needed: a log store that knows nothing of spans ignores these tables). Retention drops a
whole day's table. Every row carries its tenant.
"""

from __future__ import annotations

from clearsight.store.embedded import logs_schema
from clearsight.store.kernel.retention import DAY_MS, PartitionScheme

DAY_NS = logs_schema.DAY_NS
# One table per UTC day (storage kernel scheme: names, listing, expiry and drops).
SPAN_DAYS = PartitionScheme("spans", DAY_MS, unit=DAY_NS // DAY_MS)

COLUMNS = """(
    tenant VARCHAR NOT NULL,
    trace_id BLOB NOT NULL,
    span_id BLOB NOT NULL,
    parent_span_id BLOB,
    name VARCHAR NOT NULL,
    kind UTINYINT NOT NULL,
    start_ns BIGINT NOT NULL,
    end_ns BIGINT NOT NULL,
    status_code UTINYINT NOT NULL,
    status_message VARCHAR NOT NULL,
    service_name VARCHAR NOT NULL,
    attr_keys VARCHAR[] NOT NULL,
    attr_values VARCHAR[] NOT NULL,
    resource_keys VARCHAR[] NOT NULL,
    resource_values VARCHAR[] NOT NULL,
    scope_name VARCHAR NOT NULL,
    scope_version VARCHAR NOT NULL,
    trace_state VARCHAR NOT NULL,
    events UINTEGER NOT NULL,
    links UINTEGER NOT NULL
)"""
COLUMN_NAMES = ("tenant", "trace_id", "span_id", "parent_span_id", "name", "kind", "start_ns", "end_ns",
                "status_code", "status_message", "service_name", "attr_keys", "attr_values", "resource_keys",
                "resource_values", "scope_name", "scope_version", "trace_state", "events", "links")


def partition_name(day: int) -> str:
    return SPAN_DAYS.name(day * DAY_NS)


def day_of_partition(name: str) -> int | None:
    """The day number of a span table name, None when ``name`` is not one."""
    part = SPAN_DAYS.parse(name)
    return None if part is None else part.start // DAY_NS
