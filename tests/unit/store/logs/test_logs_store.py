"""Contract tests of the embedded log store (store/logs_interface.py)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

from clearsight.model.logs import LogBatch, LogEntry
from clearsight.model.matchers import Matcher
from clearsight.model.spans import Span, SpanBatch
from clearsight.store.embedded.logs_schema import DAY_NS, blocks_name, partition_name
from clearsight.store.embedded.logs_store import EmbeddedLogStore
from clearsight.store.embedded.span_store import EmbeddedSpanStore
from clearsight.store.interface import InvalidBatch, LimitExceeded, StoreClosed
from clearsight.store.logs_interface import LineFilter

T0 = 20_000 * DAY_NS  # 2024-10-04 00:00 UTC
ALL = (0, 2**62)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedLogStore]:
    s = EmbeddedLogStore(tmp_path, retention_ns=2 * DAY_NS, max_streams_per_tenant=5)
    try:
        yield s
    finally:
        s.close()


def _e(app: str, ts: int, body: str, **kw: object) -> LogEntry:
    return LogEntry(stream=(("app", app), ("env", "prod")), timestamp=ts, body=body, **kw)  # type: ignore[arg-type]


def test_roundtrip_every_column(store: EmbeddedLogStore) -> None:
    e = _e("api", T0 + 5, "GET /x 500", severity_number=17, severity_text="error",
           attributes=(("user", "alice"), ("status", "500"), ("user", "bob")),
           trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)),
           resource=(("host.name", "h1"), ("service.name", "api")))
    plain = _e("api", T0 + 6, "plain")
    res = store.append("t", LogBatch.from_entries([e, plain])).result()
    assert (res.entries_written, res.streams_created, res.bytes_written) == (2, 1, len("GET /x 500plain"))
    got = store.select("t", [], *ALL, limit=10, direction="forward")
    got.check()
    assert got.entries() == [e, plain]


def test_direction_limit_and_time_range(store: EmbeddedLogStore) -> None:
    entries = [_e("api", T0 + i * DAY_NS // 2, f"line {i}") for i in range(6)]  # three days
    store.append("t", LogBatch.from_entries(entries)).result()
    fwd = store.select("t", [], *ALL, limit=4, direction="forward")
    assert fwd.body == ["line 0", "line 1", "line 2", "line 3"]
    bwd = store.select("t", [], *ALL, limit=4, direction="backward")
    assert bwd.body == ["line 5", "line 4", "line 3", "line 2"]
    mid = store.select("t", [], T0 + DAY_NS // 2, T0 + 2 * DAY_NS, limit=100, direction="forward")
    assert mid.body == ["line 1", "line 2", "line 3", "line 4"]  # both ends inclusive
    assert store.stats().partitions == 3


def test_same_timestamp_keeps_write_order(store: EmbeddedLogStore) -> None:
    store.append("t", LogBatch.from_entries([_e("a", T0, "first"), _e("b", T0, "second")])).result()
    store.append("t", LogBatch.from_entries([_e("a", T0, "third")])).result()
    assert store.select("t", [], *ALL, limit=10, direction="forward").body == ["first", "second", "third"]
    assert store.select("t", [], *ALL, limit=10, direction="backward").body == ["third", "second", "first"]


def test_line_filters_are_pushed_down_and_chained(store: EmbeddedLogStore) -> None:
    bodies = ["level=error msg=boom", "level=info msg=ok", "level=ERROR msg=Boom", "level=warn msg=boom again"]
    store.append("t", LogBatch.from_entries([_e("a", T0 + i, b) for i, b in enumerate(bodies)])).result()

    def q(*filters: LineFilter) -> list[str]:
        return store.select("t", [], *ALL, filters, limit=10, direction="forward").body

    assert q(LineFilter("|=", "boom")) == [bodies[0], bodies[3]]
    assert q(LineFilter("!=", "boom")) == [bodies[1], bodies[2]]
    assert q(LineFilter("|~", "(?i)level=err")) == [bodies[0], bodies[2]]
    assert q(LineFilter("!~", "warn|info")) == [bodies[0], bodies[2]]
    assert q(LineFilter("|=", "boom"), LineFilter("!~", "again$")) == [bodies[0]]
    assert q(LineFilter("|=", "")) == bodies
    with pytest.raises(ValueError, match="invalid regular expression"):
        q(LineFilter("|~", "(unclosed"))


def test_stream_matchers_and_tenants(store: EmbeddedLogStore) -> None:
    store.append("t1", LogBatch.from_entries([_e("api", T0, "a1"), _e("db", T0 + 1, "d1")])).result()
    store.append("t2", LogBatch.from_entries([_e("api", T0, "other tenant")])).result()
    assert store.select("t1", [Matcher.of("=", "app", "db")], *ALL).body == ["d1"]
    assert store.select("t1", [Matcher.of("=~", "app", "a.*")], *ALL).body == ["a1"]
    assert store.select("t1", [Matcher.of("!=", "app", "api")], *ALL).body == ["d1"]
    assert store.select("t1", [Matcher.of("=", "app", "nope")], *ALL).body == []
    assert store.select("t2", [], *ALL).body == ["other tenant"]
    assert store.select("t3", [], *ALL).body == []
    assert store.label_names("t1", *ALL) == ["app", "env"]
    assert store.label_values("t1", "app", *ALL) == ["api", "db"]
    assert store.label_values("t2", "app", *ALL) == ["api"]
    assert store.label_values("t1", "app", *ALL, [Matcher.of("=", "app", "db")]) == ["db"]
    assert store.series("t1", [[Matcher.of("=", "app", "db")], [Matcher.of("=", "app", "api")]], *ALL) == [
        (("app", "api"), ("env", "prod")), (("app", "db"), ("env", "prod"))]
    # Time range: streams without entries in the range are not listed.
    assert store.label_values("t1", "app", T0 + 1, T0 + 1) == ["db"]
    assert store.stats().streams == {"t1": 2, "t2": 1}


def test_stream_limit_rejects_whole_batch(store: EmbeddedLogStore) -> None:
    store.append("t", LogBatch.from_entries([_e(f"s{i}", T0, "x") for i in range(4)])).result()
    with pytest.raises(LimitExceeded, match="max_streams_per_tenant"):
        store.append("t", LogBatch.from_entries([_e("s0", T0, "known"), _e("n1", T0, "y"),
                                                 _e("n2", T0, "z")])).result()
    assert len(store.select("t", [], *ALL)) == 4  # nothing of the rejected batch
    store.append("other", LogBatch.from_entries([_e(f"s{i}", T0, "x") for i in range(5)])).result()  # per tenant


def test_invalid_batches_write_nothing(store: EmbeddedLogStore) -> None:
    with pytest.raises(InvalidBatch, match="before 1970"):
        store.append("t", LogBatch.from_entries([_e("a", T0, "ok"), _e("a", -1, "bad")])).result()
    broken = LogBatch.from_entries([_e("a", T0, "ok")])
    broken.stream_idx = np.array([3], dtype=np.int32)
    with pytest.raises(InvalidBatch, match="stream_idx"):
        store.append("t", broken).result()
    with pytest.raises(InvalidBatch, match="tenant"):
        store.append("", LogBatch.from_entries([_e("a", T0, "ok")])).result()
    assert len(store.select("t", [], *ALL)) == 0
    assert store.series("t", [], *ALL) == []


def test_partitions_are_day_tables_and_retention_drops_them(store: EmbeddedLogStore, tmp_path: Path) -> None:
    entries = [_e("a", T0 + d * DAY_NS + 1, f"day {d}") for d in range(4)]
    store.append("t", LogBatch.from_entries(entries)).result()
    store.append("t", LogBatch.from_entries([_e("old", T0 + 2, "only on day 0")])).result()
    now = T0 + 3 * DAY_NS + 10  # retention 2 days: cutoff inside day 1, so day 0 goes
    assert store.apply_retention(now) == 2
    assert store.select("t", [], *ALL, limit=10, direction="forward").body == ["day 1", "day 2", "day 3"]
    assert store.label_values("t", "app", *ALL) == ["a"]  # the stream left without entries
    assert store.apply_retention(now) == 0
    store.close()
    con = duckdb.connect(str(tmp_path / "logs.duckdb"), read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()
    assert {partition_name(20_000 + d) for d in (1, 2, 3)} <= names
    assert partition_name(20_000) not in names


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    entries = [_e("a", T0 + i, f"l{i}", attributes=(("i", str(i)),)) for i in range(50)]
    with EmbeddedLogStore(tmp_path) as s:
        s.append("t", LogBatch.from_entries(entries)).result()
    with EmbeddedLogStore(tmp_path) as s:
        assert s.select("t", [], *ALL, limit=100, direction="forward").entries() == entries
        res = s.append("t", LogBatch.from_entries([_e("a", T0 + 99, "again"), _e("b", T0, "new")])).result()
        assert res.streams_created == 1  # "a" was known from the database


def test_concurrent_appends_share_commits_and_all_land(store: EmbeddedLogStore) -> None:
    def worker(k: int) -> None:
        for j in range(20):
            store.append("t", LogBatch.from_entries([_e(f"w{k % 3}", T0 + k * 1000 + j, f"{k}-{j}")])).result()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = store.select("t", [], *ALL, limit=1000)
    assert sorted(got.body) == sorted(f"{k}-{j}" for k in range(4) for j in range(20))
    assert store.stats().entries_written_total == 80


def test_closed_store_refuses(tmp_path: Path) -> None:
    s = EmbeddedLogStore(tmp_path)
    s.close()
    s.close()
    with pytest.raises(StoreClosed):
        s.append("t", LogBatch.from_entries([_e("a", T0, "x")]))
    with pytest.raises(StoreClosed):
        s.select("t", [], *ALL)


def test_head_rows_are_sealed_into_compressed_blocks(tmp_path: Path) -> None:
    """Once a day's head holds ``seal_rows`` rows they move into per-stream zstd blocks
    (docs/storage.md "Logs"): the head is left empty, the blocks hold every line in far fewer bytes
    than the raw text, and reads (filters, both directions, after a reopen) see the same entries."""
    rnd = random.Random(7)
    entries = [_e(("api", "web")[i % 2], T0 + i * 1000 + rnd.randrange(3),
                  f'{{"level":"{rnd.choice(["info", "warn", "error"])}","path":"/api/v1/orders/{rnd.randrange(97)}",'
                  f'"status":{rnd.choice([200, 200, 404, 500])},"took_ms":{rnd.random() * 900:.3f},'
                  f'"trace_id":"{rnd.getrandbits(128):032x}"}}',
                  attributes=(("user", str(i % 7)),) if i % 3 == 0 else (), severity_number=i % 24,
                  trace_id=bytes(range(1, 17)) if i % 5 == 0 else b"")
               for i in range(20_000)]
    raw = sum(len(e.body.encode()) + 1 for e in entries)
    s = EmbeddedLogStore(tmp_path, seal_rows=5_000)
    try:
        for k in range(0, len(entries), 2_500):
            s.append("t", LogBatch.from_entries(entries[k:k + 2_500])).result()
        got = s.select("t", [], *ALL, limit=30_000, direction="forward")
        assert got.entries() == sorted(entries, key=lambda e: e.timestamp)
    finally:
        s.close()
    con = duckdb.connect(str(tmp_path / "logs.duckdb"), read_only=True)
    try:
        head = con.execute(f"SELECT count(*) FROM {partition_name(T0 // DAY_NS)}").fetchall()[0][0]
        tables = [blocks_name(T0 // DAY_NS, k) for k in range(4)]  # 20,000 rows sealed 5,000 at a time
        lines, stored, streams = con.execute(
            "SELECT sum(n), sum(octet_length(meta) + octet_length(body)), count(DISTINCT stream_id) FROM ("
            + " UNION ALL ".join(f"SELECT * FROM {t}" for t in tables) + ")").fetchall()[0]
    finally:
        con.close()
    assert (head, lines, streams) == (0, 20_000, 2)
    assert stored * 3 < raw  # 128-bit random trace ids in ~120-byte lines: ~3.8x here
    again = EmbeddedLogStore(tmp_path, seal_rows=5_000)
    try:
        newest = sorted(entries, key=lambda e: e.timestamp)[::-1]
        assert again.select("t", [], *ALL, limit=3, direction="backward").entries() == newest[:3]
        errors = [e for e in newest if '"status":500' in e.body and dict(e.stream)["app"] == "web"]
        got = again.select("t", [Matcher.of("=", "app", "web")], *ALL, [LineFilter("|=", '"status":500')], limit=100)
        assert got.entries() == errors[:100]
        sizes = again.select_sizes("t", [], *ALL)
        assert sizes.sizes.tolist() == [len(e.body.encode()) for e in newest[::-1]]
    finally:
        again.close()


def test_a_version_1_file_is_upgraded_and_sealed_later(tmp_path: Path) -> None:
    """Version 1 had day tables of rows only: they open as heads, are sealed like any head, and the
    file says version 2 afterwards."""
    entries = [_e("a", T0 + i, f"v1 line {i}") for i in range(30)]
    with EmbeddedLogStore(tmp_path) as s:
        s.append("t", LogBatch.from_entries(entries)).result()
    con = duckdb.connect(str(tmp_path / "logs.duckdb"))
    try:
        con.execute("UPDATE logs_meta SET value = '1' WHERE key = 'schema_version'")
        assert not [n for (n,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
                    if n.startswith("logblk_")]  # 30 rows stayed in the head
    finally:
        con.close()
    with EmbeddedLogStore(tmp_path, seal_rows=10) as s:
        assert s.select("t", [], *ALL, limit=100, direction="forward").entries() == entries
        s.append("t", LogBatch.from_entries([_e("a", T0 + 100, "after")])).result()  # the head passes 10 rows
        assert s.select("t", [], *ALL, limit=2).body == ["after", "v1 line 29"]
    con = duckdb.connect(str(tmp_path / "logs.duckdb"), read_only=True)
    try:
        version = con.execute("SELECT value FROM logs_meta WHERE key = 'schema_version'").fetchall()
        head = con.execute(f"SELECT count(*) FROM {partition_name(T0 // DAY_NS)}").fetchall()[0][0]
        sealed = con.execute(f"SELECT sum(n) FROM {blocks_name(T0 // DAY_NS, 0)}").fetchall()[0][0]
    finally:
        con.close()
    assert (version, head, sealed) == ([("2",)], 0, 31)


def test_a_failed_seal_leaves_the_rows_in_the_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from clearsight.store.embedded import log_blocks

    def broken(*_a: object) -> None:
        raise RuntimeError("encoder broke")

    first = [_e("a", T0 + i, f"first {i}") for i in range(12)]
    later = [_e("a", T0 + 100 + i, f"later {i}") for i in range(12)]
    with EmbeddedLogStore(tmp_path, seal_rows=10) as s:
        with monkeypatch.context() as m:
            m.setattr(log_blocks, "encode", broken)
            s.append("t", LogBatch.from_entries(first)).result()
            s.sync()
        assert "sealing the log head" in caplog.text
        assert s.select("t", [], *ALL, limit=100, direction="forward").entries() == first
        s.append("t", LogBatch.from_entries(later)).result()  # the next seal takes the whole head
        s.sync()
        assert s.select("t", [], *ALL, limit=100, direction="forward").entries() == first + later
    con = duckdb.connect(str(tmp_path / "logs.duckdb"), read_only=True)
    try:
        head = con.execute(f"SELECT count(*) FROM {partition_name(T0 // DAY_NS)}").fetchall()[0][0]
        sealed = con.execute(f"SELECT sum(n) FROM {blocks_name(T0 // DAY_NS, 0)}").fetchall()[0][0]
    finally:
        con.close()
    assert (head, sealed) == (0, 24)


def test_no_file_until_the_first_write_and_reads_before_it_answer_empty(tmp_path: Path) -> None:
    path = tmp_path / "logs.duckdb"
    for _ in range(2):  # opened and closed without a write: nothing is ever created
        s = EmbeddedLogStore(tmp_path, retention_ns=DAY_NS)
        spans = EmbeddedSpanStore(s, retention_ns=DAY_NS)
        with pytest.raises(InvalidBatch):
            s.append("", LogBatch.from_entries([_e("api", T0, "x")])).result()
        s.append("t", LogBatch.from_entries([])).result()  # an empty batch adds nothing
        assert len(s.select("t", [], *ALL, limit=10)) == 0
        assert len(s.select("t", [], *ALL, line_filters=[LineFilter("|~", "a.c")], limit=10)) == 0
        assert s.select_sizes("t", [], *ALL).stream_idx.size == 0
        assert (s.series("t", [[]], *ALL), s.label_names("t", *ALL), s.label_values("t", "app", *ALL)) == ([], [], [])
        assert (s.apply_retention(T0 + 9 * DAY_NS), spans.apply_retention(T0 + 9 * DAY_NS)) == (0, 0)
        assert spans.trace("t", bytes(16)) == []
        s.flush()
        st = s.stats()
        assert (st.streams, st.partitions, st.bytes_on_disk) == ({}, 0, 0)
        spans.close()
        s.close()
        assert sorted(p.name for p in tmp_path.iterdir()) == []
    s = EmbeddedLogStore(tmp_path)
    with s.reader() as early:  # a read begun before the first write finishes on the stand-in
        s.append("t", LogBatch.from_entries([_e("api", T0, "first")])).result()
        assert path.exists()
        assert early.execute("SELECT count(*) FROM log_streams").fetchall() == [(0,)]
    assert s.select("t", [], *ALL, limit=10).body == ["first"]
    s.close()
    s = EmbeddedLogStore(tmp_path)  # the file is there now: opened as usual
    spans = EmbeddedSpanStore(s)
    assert s.select("t", [], *ALL, limit=10).body == ["first"]
    spans.close()
    s.close()
    s = EmbeddedLogStore(tmp_path / "spans-first")  # a span alone creates the file too
    spans = EmbeddedSpanStore(s)
    span_batch = SpanBatch([_span_of_trace(7)])
    assert spans.append("t", span_batch).result().spans_written == 1
    assert (tmp_path / "spans-first" / "logs.duckdb").exists()
    assert spans.trace("t", (7).to_bytes(16, "big")) == span_batch.spans
    spans.close()
    s.close()


def _span_of_trace(trace: int) -> Span:
    return Span(trace_id=trace.to_bytes(16, "big"), span_id=(1).to_bytes(8, "big"), parent_span_id=b"", name="op",
                kind=2, start_ns=T0 + 1, end_ns=T0 + 2, status_code=0, status_message="", service_name="svc")
