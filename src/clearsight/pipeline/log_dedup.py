"""Dedup of identical log lines: entries of one batch with the same stream and body whose
timestamps fall within ``window_ns`` of the first of them are collapsed into that first entry,
which gets a ``repeat_count`` attribute (how many entries it stands for). Nothing is silently
dropped: the collapsed count is reported to ``on_collapsed(tenant, n)`` (a counter in /metrics).

Limit: the window applies inside one push (shippers batch by time or size); a repeat arriving in a
later push is stored as its own entry, since the earlier one is already committed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clearsight.model.logs import LogBatch, LogBatchBuilder

REPEAT_COUNT = "repeat_count"


def dedup_batch(batch: LogBatch, window_ns: int) -> tuple[LogBatch, int]:
    """``(batch with repeats collapsed, entries removed)``; the batch itself when none were."""
    n = len(batch)
    if n < 2 or window_ns <= 0:
        return batch, 0
    ts = batch.timestamps
    order = range(n) if bool(np.all(ts[1:] >= ts[:-1])) else np.argsort(ts, kind="stable").tolist()
    sidx = batch.stream_idx.tolist()
    tsl = ts.tolist()
    body = batch.body
    first: dict[tuple[int, str], tuple[int, int]] = {}  # (stream, body) -> (kept entry, its ts)
    counts: dict[int, int] = {}
    kept: list[int] = []
    for j in order:
        key = (sidx[j], body[j])
        g = first.get(key)
        if g is not None and tsl[j] - g[1] < window_ns:
            counts[g[0]] = counts.get(g[0], 1) + 1
            continue
        first[key] = (j, tsl[j])
        kept.append(j)
    if not counts:
        return batch, 0
    removed = n - len(kept)
    b = LogBatchBuilder()
    for j in sorted(kept):
        attrs = batch.attributes(j)
        c = counts.get(j)
        if c is not None:
            attrs.append((REPEAT_COUNT, str(c)))
        b.add(b.stream(batch.streams[sidx[j]]), tsl[j], body[j], int(batch.severity_number[j]),
              batch.severity_text(j), attrs, batch.trace_id(j), batch.span_id(j),
              b.resource(batch.resources[int(batch.resource_idx[j])]))
    return b.build(), removed


def make_dedup_step(window_of: Callable[[str], int],
                    on_collapsed: Callable[[str, int], None]) -> Callable[[str, LogBatch], LogBatch]:
    """A ``LogStep``: dedup with the tenant's window (0: off)."""

    def step(tenant: str, batch: LogBatch) -> LogBatch:
        out, removed = dedup_batch(batch, window_of(tenant))
        if removed:
            on_collapsed(tenant, removed)
        return out

    return step
