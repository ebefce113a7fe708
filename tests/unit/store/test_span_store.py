"""The embedded span store in the log store's file: committed spans read back by trace id, per tenant
(hypothesis: any spans, every field exact),
across a reopen; group commit of concurrent appends; retention by day and per tenant; no span table
before the first span; acknowledged span batches survive ``kill -9`` of the process."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.model.logs import LogBatch, LogEntry
from clearsight.model.matchers import Matcher
from clearsight.model.spans import Span, SpanBatch
from clearsight.store.embedded.logs_store import EmbeddedLogStore
from clearsight.store.embedded.span_schema import DAY_NS, partition_name
from clearsight.store.embedded.span_store import EmbeddedSpanStore
from clearsight.store.interface import InvalidBatch, Overloaded, StoreClosed, StoreError
from tests.support.kill9 import kill_after_acks

T0 = 20_000 * DAY_NS


def _span(trace: int, span: int, start: int, *, parent: int = 0, name: str = "op") -> Span:
    return Span(trace_id=trace.to_bytes(16, "big"), span_id=span.to_bytes(8, "big"),
                parent_span_id=parent.to_bytes(8, "big") if parent else b"", name=name, kind=2, start_ns=start,
                end_ns=start + 1000, status_code=2, status_message="boom", service_name="svc",
                attr_keys=("http.route", "n"), attr_values=("/cart", "3"), resource_keys=("service.name",),
                resource_values=("svc",), scope_name="lib", scope_version="1", trace_state="k=v", events=2, links=1)


def _tables(path: Path) -> list[str]:
    con = duckdb.connect(str(path / "logs.duckdb"), read_only=True)
    try:
        return sorted(n for (n,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall())
    finally:
        con.close()


def test_round_trip_tenants_and_reopen(tmp_path: Path) -> None:
    logs = EmbeddedLogStore(tmp_path)
    spans = EmbeddedSpanStore(logs)
    a = [_span(1, 1, T0 + 50), _span(1, 2, T0 + 10, parent=1), _span(2, 3, T0 + 5)]
    assert spans.append("org-a", SpanBatch(a)).result().spans_written == 3
    spans.append("org-b", SpanBatch([_span(1, 9, T0 + 1)])).result()
    # log writes keep working beside the spans, in the same file and writer
    logs.append("org-a", LogBatch.from_entries([LogEntry(stream=(("app", "x"),), timestamp=T0, body="hi")])).result()
    got = spans.trace("org-a", (1).to_bytes(16, "big"))
    assert got == [a[1], a[0]]  # ordered by start time, every field back as written
    assert spans.trace("org-b", (1).to_bytes(16, "big")) == [_span(1, 9, T0 + 1)]
    assert spans.trace("org-c", (1).to_bytes(16, "big")) == []
    assert spans.trace("org-a", (7).to_bytes(16, "big")) == []
    spans.close()
    logs.close()
    logs = EmbeddedLogStore(tmp_path)
    spans = EmbeddedSpanStore(logs)
    assert [s.span_id for s in spans.trace("org-a", (1).to_bytes(16, "big"))] == [(2).to_bytes(8, "big"),
                                                                                 (1).to_bytes(8, "big")]
    got_logs = logs.select("org-a", [Matcher.of("=", "app", "x")], 0, 2**62)
    assert got_logs.body == ["hi"]
    spans.close()
    logs.close()


def test_no_span_table_until_the_first_span(tmp_path: Path) -> None:
    logs = EmbeddedLogStore(tmp_path)
    spans = EmbeddedSpanStore(logs)
    logs.append("t", LogBatch.from_entries([LogEntry(stream=(("app", "x"),), timestamp=T0, body="a")])).result()
    logs.close()
    assert not [t for t in _tables(tmp_path) if t.startswith("spans_")]
    logs = EmbeddedLogStore(tmp_path)
    spans = EmbeddedSpanStore(logs)
    spans.append("t", SpanBatch([_span(1, 1, T0 + 1), _span(1, 2, T0 + DAY_NS)])).result()
    spans.close()
    logs.close()
    assert [t for t in _tables(tmp_path) if t.startswith("spans_")] == [partition_name(20_000),
                                                                       partition_name(20_001)]


def test_concurrent_appends_all_commit(tmp_path: Path) -> None:
    # (that queued batches share one transaction is shown deterministically by the full-queue test below)
    with EmbeddedLogStore(tmp_path) as logs:
        spans = EmbeddedSpanStore(logs)

        def send(k: int) -> None:
            for i in range(20):
                spans.append("t", SpanBatch([_span(k + 1, i + 1, T0 + i)])).result()

        threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(len(spans.trace("t", (k + 1).to_bytes(16, "big"))) == 20 for k in range(4))
        st = spans.stats()
        assert st.spans_written_total == 80 and st.queue_depth == 0
        spans.close()
        with pytest.raises(StoreClosed):
            spans.append("t", SpanBatch([_span(1, 1, T0)]))


def test_invalid_batches_write_nothing(tmp_path: Path) -> None:
    with EmbeddedLogStore(tmp_path) as logs:
        spans = EmbeddedSpanStore(logs)
        with pytest.raises(InvalidBatch):
            spans.append("", SpanBatch([_span(1, 1, T0)])).result()
        with pytest.raises(InvalidBatch):
            spans.append("t", SpanBatch([_span(1, 1, T0), Span(b"\x01" * 16, b"\x01" * 8, b"", "x", 0, T0, T0 - 1, 0,
                                                               "", "s")])).result()
        assert spans.trace("t", (1).to_bytes(16, "big")) == []


def test_retention_drops_days_and_shorter_tenant_retention(tmp_path: Path) -> None:
    with EmbeddedLogStore(tmp_path) as logs:
        spans = EmbeddedSpanStore(logs, retention_ns=2 * DAY_NS, tenant_retention_ns={"short": DAY_NS // 2})
        for tenant in ("t", "short"):
            spans.append(tenant, SpanBatch([_span(1, d + 1, T0 + d * DAY_NS + 10) for d in range(4)])).result()
        now = T0 + 3 * DAY_NS + DAY_NS // 4  # day 3, 06:00: day 0 ended more than 2 days ago
        removed = spans.apply_retention(now)
        # t keeps days 1..3 (whole days); short keeps spans started after now - 12h: only day 3's
        assert [s.start_ns for s in spans.trace("t", (1).to_bytes(16, "big"))] == [
            T0 + d * DAY_NS + 10 for d in (1, 2, 3)]
        assert [s.start_ns for s in spans.trace("short", (1).to_bytes(16, "big"))] == [T0 + 3 * DAY_NS + 10]
        assert removed == 2 + 2  # day 0 of both tenants, then days 1 and 2 of "short"
        assert spans.apply_retention(now) == 0
        assert spans.stats().spans_removed_total == 4
        spans.close()


_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from clearsight.model.spans import Span, SpanBatch
    from clearsight.store.embedded.logs_store import EmbeddedLogStore
    from clearsight.store.embedded.span_store import EmbeddedSpanStore
    from tests.support.kill9 import print_acks
    data_dir, start, T0 = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    spans = EmbeddedSpanStore(EmbeddedLogStore(data_dir))
    def send(b):
        batch = [Span(b.to_bytes(16, "big"), (j + 1).to_bytes(8, "big"), b"", f"op {j}", 1, T0 + j, T0 + j + 5,
                      0, "", "k9") for j in range(20)]
        spans.append("default", SpanBatch(batch)).result()
    print_acks(send, [start, start + 10_000])
""")


def test_acked_span_batches_survive_kill9(tmp_path: Path) -> None:
    acked: list[int] = []
    for round_no in range(2):
        acked += kill_after_acks([sys.executable, "-c", _CHILD, str(tmp_path), str(1 + round_no * 100_000), str(T0)],
                                 20 + 15 * round_no)
    with EmbeddedLogStore(tmp_path) as logs:
        spans = EmbeddedSpanStore(logs)
        missing = [b for b in acked if len(spans.trace("default", b.to_bytes(16, "big"))) != 20]
        assert not missing, f"{len(missing)} acknowledged span batches lost, e.g. {missing[:5]}"
        spans.close()


def test_full_queue_is_overloaded_and_the_queued_batches_still_commit(tmp_path: Path) -> None:
    with EmbeddedLogStore(tmp_path) as logs:
        spans = EmbeddedSpanStore(logs, queue_max_batches=3)
        release = threading.Event()
        blocked = logs.run_on_writer(lambda _con: release.wait(30))  # the writer thread is busy
        futs = [spans.append("t", SpanBatch([_span(5, i + 1, T0 + i)])) for i in range(3)]
        with pytest.raises(Overloaded) as ei:
            spans.append("t", SpanBatch([_span(5, 9, T0)]))
        assert ei.value.retry_after >= 1
        assert spans.stats().queue_depth == 3
        release.set()
        assert blocked.result() is True
        assert [f.result().spans_written for f in futs] == [1, 1, 1]
        assert len(spans.trace("t", (5).to_bytes(16, "big"))) == 3
        assert spans.stats().commits_total == 1  # the three queued batches went in one transaction
        spans.close()


def test_a_batch_queued_before_the_log_store_closes_is_committed_by_the_close(tmp_path: Path) -> None:
    logs = EmbeddedLogStore(tmp_path)
    spans = EmbeddedSpanStore(logs)
    release = threading.Event()
    logs.run_on_writer(lambda _con: release.wait(30))
    fut = spans.append("t", SpanBatch([_span(6, 1, T0)]))  # its drain waits behind the busy writer
    closer = threading.Thread(target=logs.close)
    closer.start()  # the log store stops accepting; its writer still runs the queued drain
    release.set()
    closer.join(30)
    spans.close()
    assert fut.done()  # the log writer ran the queued drain before it stopped: never left hanging
    assert fut.result().spans_written == 1


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_spans = st.builds(
    Span,
    trace_id=st.sampled_from([bytes([1]) * 16, bytes([2]) * 16, bytes(range(1, 17))]),
    span_id=st.binary(min_size=8, max_size=8).filter(any),
    parent_span_id=st.one_of(st.just(b""), st.binary(min_size=8, max_size=8).filter(any)),
    name=_text, kind=st.integers(0, 5), start_ns=st.integers(T0, T0 + 3 * DAY_NS),
    end_ns=st.just(0), status_code=st.integers(0, 2), status_message=_text, service_name=_text,
    attr_keys=st.just(()), attr_values=st.just(()),
    resource_keys=st.lists(_text, max_size=3).map(tuple), resource_values=st.just(()),
    scope_name=_text, scope_version=_text, trace_state=_text,
    events=st.integers(0, 2**32 - 1), links=st.integers(0, 2**32 - 1),
).map(lambda s: dataclasses.replace(s, end_ns=s.start_ns + len(s.name), attr_keys=s.resource_keys[::-1],
                                    attr_values=s.resource_keys, resource_values=s.resource_keys))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.lists(_spans, min_size=1, max_size=6)), max_size=5))
def test_any_spans_read_back_exactly_per_tenant_and_trace(batches: list[tuple[str, list[Span]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedLogStore(Path(tmp)) as logs:
        spans = EmbeddedSpanStore(logs)
        futs = [spans.append(tenant, SpanBatch(batch)) for tenant, batch in batches]
        assert [f.result().spans_written for f in futs] == [len(b) for _, b in batches]
        for tenant in ("a", "b"):
            for tid in {s.trace_id for _, b in batches for s in b}:
                want = sorted((s for t, b in batches if t == tenant for s in b if s.trace_id == tid),
                              key=lambda s: (s.start_ns, s.span_id))
                got = spans.trace(tenant, tid)
                assert [(s.start_ns, s.span_id) for s in got] == [(s.start_ns, s.span_id) for s in want]
                assert sorted(got, key=repr) == sorted(want, key=repr)  # every field, ties in any order
        spans.close()


def test_a_batch_that_cannot_be_encoded_fails_its_future_and_the_store_keeps_working(tmp_path: Path) -> None:
    # a lone surrogate is not UTF-8: building the group's Arrow table fails on the writer thread; the
    # batch's future must fail (it hung before: the table was built outside the rolled-back transaction)
    with EmbeddedLogStore(tmp_path) as logs:
        spans = EmbeddedSpanStore(logs)
        bad = spans.append("t", SpanBatch([_span(8, 1, T0, name="\ud800")]))
        with pytest.raises(StoreError, match="span commit failed"):
            bad.result(timeout=30)
        assert spans.trace("t", (8).to_bytes(16, "big")) == []
        assert spans.append("t", SpanBatch([_span(8, 2, T0)])).result().spans_written == 1
        assert [s.span_id for s in spans.trace("t", (8).to_bytes(16, "big"))] == [(2).to_bytes(8, "big")]
        spans.close()


def test_a_trace_read_is_bounded_by_count_and_size_and_says_it_is_truncated(tmp_path: Path) -> None:
    with EmbeddedLogStore(tmp_path) as logs:
        spans = EmbeddedSpanStore(logs)
        # 6 spans whose names are 10,000 characters, written out of start order
        big = [_span(9, i + 1, T0 + 100 - i, name=str(i) * 10_000) for i in range(6)]
        spans.append("t", SpanBatch(big)).result()
        tid = (9).to_bytes(16, "big")
        by_start = sorted(big, key=lambda s: s.start_ns)
        whole = spans.read_trace("t", tid)
        assert (whole.spans, whole.truncated) == (by_start, False)
        assert (spans.read_trace("t", tid, limit=6).truncated, spans.read_trace("t", tid, limit=5).spans) == (
            False, by_start[:5])
        assert spans.read_trace("t", tid, limit=5).truncated is True
        # each span holds a bit over 10,000 (the name, ids, the other text): 35,000 fit three of them
        by_size = spans.read_trace("t", tid, max_bytes=35_000)
        assert (by_size.spans, by_size.truncated) == (by_start[:3], True)
        # a single span larger than the bound is still answered (a trace never reads as empty)
        one = spans.read_trace("t", tid, max_bytes=10)
        assert (one.spans, one.truncated) == (by_start[:1], True)
        assert spans.read_trace("other", tid).spans == []
        # the bound is in UTF-8 bytes: names of 6,000 "é" are 12,000 bytes, so 25,000 fit two such spans
        wide = [_span(10, i + 1, T0 + i, name="é" * 6_000) for i in range(4)]
        spans.append("t", SpanBatch(wide)).result()
        assert spans.read_trace("t", (10).to_bytes(16, "big"), max_bytes=25_000).spans == wide[:2]
        spans.close()


class _BrokenDatabase:
    """A writer connection whose every statement fails as a database DuckDB invalidated does."""

    def execute(self, sql: str, *args: object) -> None:
        raise duckdb.FatalException(f"database has been invalidated ({sql})")


class _HeldThenBrokenHost:
    """Holds the first writer call (the append's drain request, never run); runs later ones at once
    on a broken database (fault injection: a fatal commit error is not reproducible on a real file)."""

    def __init__(self) -> None:
        self.held: list[object] = []

    def run_on_writer(self, fn: Any) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if not self.held:
            self.held.append(fn)
            return fut
        try:
            fut.set_result(fn(_BrokenDatabase()))
        except Exception as e:  # as the log store's writer hands back what fn raised
            fut.set_exception(e)
        return fut

    def reader(self) -> Any:
        raise AssertionError("no read in this test")


def test_close_whose_last_commit_breaks_the_database_fails_those_batches_and_returns() -> None:
    # the server closes the log store, usage and auth after the span store: close must not raise
    spans = EmbeddedSpanStore(_HeldThenBrokenHost())
    fut = spans.append("t", SpanBatch([_span(4, 1, T0)]))
    spans.close()
    with pytest.raises(StoreError, match="invalidated"):
        fut.result(timeout=0)
    with pytest.raises(StoreClosed):
        spans.append("t", SpanBatch([_span(4, 2, T0)]))
