"""Random appends, retention and reopens against the embedded log store vs a plain-Python model."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.logs import LogBatch, LogEntry
from clearsight.model.matchers import Matcher
from clearsight.store.embedded.logs_schema import DAY_NS
from clearsight.store.embedded.logs_store import EmbeddedLogStore
from clearsight.store.logs_interface import LineFilter

T0 = 20_000 * DAY_NS
RETENTION = 2 * DAY_NS
TENANTS = ["t1", "t2"]
WORDS = ["error", "info", "boom", "ok", "x"]

entry_st = st.builds(
    LogEntry,
    stream=st.sampled_from([(("app", "a"),), (("app", "b"), ("env", "p")), (("env", "p"),)]),
    timestamp=st.integers(0, 5 * DAY_NS).map(lambda d: T0 + d),
    body=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
    severity_number=st.integers(0, 24),
    severity_text=st.sampled_from(["", "info", "ERROR"]),
    attributes=st.lists(st.tuples(st.sampled_from(["k", "u"]), st.text("abc", max_size=2)), max_size=2).map(tuple),
    trace_id=st.sampled_from([b"", bytes(range(1, 17))]),
    span_id=st.sampled_from([b"", bytes(range(1, 9))]),
    resource=st.sampled_from([(), (("host.name", "h"),)]),
)
op_st = st.one_of(
    st.tuples(st.just("append"), st.sampled_from(TENANTS), st.lists(entry_st, min_size=1, max_size=8)),
    st.tuples(st.just("retention"), st.integers(0, 8 * DAY_NS).map(lambda d: T0 + d)),
    st.tuples(st.just("reopen")),
)


@dataclass
class Model:
    rows: list[tuple[str, LogEntry]] = field(default_factory=list)  # write order

    def retention(self, now: int) -> int:
        cutoff_day = (now - RETENTION) // DAY_NS
        keep = [(t, e) for t, e in self.rows if e.timestamp // DAY_NS >= cutoff_day]
        removed = len(self.rows) - len(keep)
        self.rows = keep
        return removed

    def select(self, tenant: str, app: str | None, word: str | None, start: int, end: int, limit: int,
               forward: bool) -> list[LogEntry]:
        out = [e for t, e in self.rows if t == tenant and start <= e.timestamp <= end
               and (app is None or dict(e.stream).get("app", "") == app) and (word is None or word in e.body)]
        out.sort(key=lambda e: e.timestamp)  # stable: write order among equal timestamps
        if not forward:
            out.reverse()
        return out[:limit]


def _check(s: EmbeddedLogStore, m: Model, data: Any) -> None:
    tenant = data.draw(st.sampled_from(TENANTS))
    app = data.draw(st.sampled_from([None, "a", "b", ""]))
    word = data.draw(st.sampled_from([None, *WORDS]))
    start = T0 + data.draw(st.integers(-DAY_NS, 5 * DAY_NS))
    end = start + data.draw(st.integers(0, 6 * DAY_NS))
    limit = data.draw(st.integers(1, 30))
    forward = data.draw(st.booleans())
    got = s.select(tenant, [Matcher.of("=", "app", app)] if app is not None else [], start, end,
                   [LineFilter("|=", word)] if word else [], limit, "forward" if forward else "backward")
    got.check()
    assert got.entries() == m.select(tenant, app, word, start, end, limit, forward)
    # series: the streams whose first..last timestamp overlaps the range (the contract allows that).
    bounds: dict[Any, tuple[int, int]] = {}
    for t, e in m.rows:
        if t == tenant:
            lo, hi = bounds.get(e.stream, (e.timestamp, e.timestamp))
            bounds[e.stream] = (min(lo, e.timestamp), max(hi, e.timestamp))
    assert s.series(tenant, [], start, end) == sorted(k for k, (lo, hi) in bounds.items() if lo <= end and hi >= start)


@pytest.mark.parametrize("seal_rows", [100_000, 3], ids=["head", "sealed"])  # rows stay in the head / in blocks
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op_st, min_size=1, max_size=6), data=st.data())
def test_store_matches_model(seal_rows: int, ops: list[tuple[Any, ...]], data: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        m = Model()
        s = EmbeddedLogStore(Path(tmp), retention_ns=RETENTION, seal_rows=seal_rows)
        try:
            for op in ops:
                if op[0] == "append":
                    res = s.append(op[1], LogBatch.from_entries(op[2])).result()
                    assert res.entries_written == len(op[2])
                    m.rows.extend((op[1], e) for e in op[2])
                elif op[0] == "retention":
                    assert s.apply_retention(op[1]) == m.retention(op[1])
                else:
                    s.close()
                    s = EmbeddedLogStore(Path(tmp), retention_ns=RETENTION, seal_rows=seal_rows)
                _check(s, m, data)
        finally:
            s.close()
