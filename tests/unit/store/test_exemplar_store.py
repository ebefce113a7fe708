"""The embedded exemplar store: Prometheus' circular-buffer semantics, tenancy, and its log on disk."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.exemplars import MAX_LABEL_SET_LENGTH, Exemplar
from clearsight.model.matchers import Matcher, MatchType
from clearsight.store.embedded.exemplar_store import COMPACT_FACTOR, LOG_NAME, EmbeddedExemplarStore

UP = (("__name__", "up"), ("job", "a"))
REQ = (("__name__", "req_total"), ("job", "b"))


def ex(series: tuple[tuple[str, str], ...], ts: int, value: float = 1.0, trace: str = "t") -> Exemplar:
    return Exemplar(series=series, labels=(("trace_id", trace),), value=value, ts=ts)


def name_is(n: str) -> list[Matcher]:
    return [Matcher.of(MatchType.EQ, "__name__", n)]


ALL = [[Matcher.of(MatchType.RE, "__name__", ".+")]]


def test_select_by_matchers_time_range_and_tenant(tmp_path: Path) -> None:
    s = EmbeddedExemplarStore(tmp_path, 100)
    r = s.append("t1", [ex(UP, 10), ex(UP, 20, 2.0), ex(REQ, 15)])
    assert (r.appended, r.duplicates, r.out_of_order, r.invalid) == (3, 0, 0, 0)
    s.append("t2", [ex(UP, 30)])
    assert s.select("t1", [name_is("up")], 0, 100) == [(UP, [ex(UP, 10), ex(UP, 20, 2.0)])]
    assert s.select("t1", [name_is("up")], 11, 20) == [(UP, [ex(UP, 20, 2.0)])]
    assert [series for series, _ in s.select("t1", ALL, 0, 100)] == [REQ, UP]  # sorted by labels
    assert s.select("t2", ALL, 0, 100) == [(UP, [ex(UP, 30)])]
    assert s.select("nobody", ALL, 0, 100) == []
    s.close()


def test_duplicates_ignored_and_out_of_order_refused(tmp_path: Path) -> None:
    s = EmbeddedExemplarStore(tmp_path, 100)
    s.append("t", [ex(UP, 10)])
    r = s.append("t", [ex(UP, 10), ex(UP, 5), ex(UP, 10, 9.0), ex(UP, 11)])
    assert (r.appended, r.duplicates, r.out_of_order) == (1, 1, 2)
    nan = Exemplar(series=UP, labels=(), value=math.nan, ts=12)
    assert s.append("t", [nan, nan]).duplicates == 1
    s.close()


def test_invalid_exemplars_are_counted_not_kept(tmp_path: Path) -> None:
    s = EmbeddedExemplarStore(tmp_path, 100)
    long = Exemplar(series=UP, labels=(("trace_id", "x" * MAX_LABEL_SET_LENGTH),), value=1, ts=1)
    bad_name = Exemplar(series=UP, labels=(("0bad", "x"),), value=1, ts=2)
    no_series = Exemplar(series=(), labels=(), value=1, ts=3)
    assert s.append("t", [long, bad_name, no_series]).invalid == 3
    assert len(s) == 0
    s.close()


def test_series_labels_are_canonicalized(tmp_path: Path) -> None:
    s = EmbeddedExemplarStore(tmp_path, 10)
    s.append("t", [Exemplar(series=(("job", "a"), ("empty", ""), ("__name__", "up")), labels=(), value=1, ts=1)])
    assert [series for series, _ in s.select("t", ALL, 0, 10)] == [UP]
    s.close()


def test_oldest_exemplar_leaves_first_across_series(tmp_path: Path) -> None:
    s = EmbeddedExemplarStore(tmp_path, 3)
    s.append("t", [ex(UP, 1), ex(REQ, 2), ex(UP, 3), ex(REQ, 4)])
    assert len(s) == 3
    assert s.select("t", ALL, 0, 10) == [(REQ, [ex(REQ, 2), ex(REQ, 4)]), (UP, [ex(UP, 3)])]
    s.append("t", [ex(UP, 5), ex(UP, 6)])
    assert s.select("t", ALL, 0, 10) == [(REQ, [ex(REQ, 4)]), (UP, [ex(UP, 5), ex(UP, 6)])]
    s.close()


def test_reopen_replays_the_log(tmp_path: Path) -> None:
    s = EmbeddedExemplarStore(tmp_path, 100)
    s.append("t", [ex(UP, 1), ex(UP, 2, math.inf), ex(REQ, 3, -0.5)])
    s.close()
    again = EmbeddedExemplarStore(tmp_path, 100)
    assert again.select("t", ALL, 0, 10) == [(REQ, [ex(REQ, 3, -0.5)]), (UP, [ex(UP, 1), ex(UP, 2, math.inf)])]
    r = again.append("t", [ex(UP, 2, math.inf)])  # the replayed state still knows the newest per series
    assert r.duplicates == 1
    again.close()


def test_unclosed_store_is_replayed_too(tmp_path: Path) -> None:
    """``append`` hands records to the OS before returning: a process killed without close keeps them."""
    s = EmbeddedExemplarStore(tmp_path, 100)
    s.append("t", [ex(UP, 1)])
    again = EmbeddedExemplarStore(tmp_path, 100)  # the first one never closed
    assert again.select("t", ALL, 0, 10) == [(UP, [ex(UP, 1)])]
    again.close()
    s.close()


def test_damaged_tail_is_cut_and_the_intact_records_kept(tmp_path: Path) -> None:
    s = EmbeddedExemplarStore(tmp_path, 100)
    s.append("t", [ex(UP, 1), ex(UP, 2), ex(UP, 3)])
    s.close()
    path = tmp_path / LOG_NAME
    data = bytearray(path.read_bytes())
    size = len(data) // 3
    data[2 * size + 10] ^= 0xFF  # damage the third record
    path.write_bytes(bytes(data) + b"\x01\x02")
    again = EmbeddedExemplarStore(tmp_path, 100)
    assert again.select("t", ALL, 0, 10) == [(UP, [ex(UP, 1), ex(UP, 2)])]
    assert again.lost_bytes == size + 2
    assert path.stat().st_size == 2 * size
    again.append("t", [ex(UP, 4)])  # appends continue after the cut
    again.close()
    third = EmbeddedExemplarStore(tmp_path, 100)
    assert third.select("t", ALL, 0, 10) == [(UP, [ex(UP, 1), ex(UP, 2), ex(UP, 4)])]
    third.close()


def test_truncated_log_keeps_whole_records(tmp_path: Path) -> None:
    s = EmbeddedExemplarStore(tmp_path, 100)
    s.append("t", [ex(UP, 1), ex(UP, 2)])
    s.close()
    path = tmp_path / LOG_NAME
    path.write_bytes(path.read_bytes()[:-3])
    again = EmbeddedExemplarStore(tmp_path, 100)
    assert again.select("t", ALL, 0, 10) == [(UP, [ex(UP, 1)])]
    again.close()


def test_log_is_compacted_and_stays_bounded(tmp_path: Path) -> None:
    s = EmbeddedExemplarStore(tmp_path, 5)
    for i in range(100):
        s.append("t", [ex(UP, i)])
    log_size = (tmp_path / LOG_NAME).stat().st_size
    assert len(s) == 5
    s.close()
    again = EmbeddedExemplarStore(tmp_path, 5)
    assert [e.ts for _, es in again.select("t", ALL, 0, 1000) for e in es] == [95, 96, 97, 98, 99]
    again.close()
    assert log_size <= 5 * COMPACT_FACTOR * 80  # at most COMPACT_FACTOR x capacity records of ~70 bytes


def test_capacity_zero_keeps_nothing_and_writes_no_file(tmp_path: Path) -> None:
    s = EmbeddedExemplarStore(tmp_path / "x", 0)
    assert s.append("t", [ex(UP, 1)]).appended == 0
    assert s.select("t", ALL, 0, 10) == []
    assert not (tmp_path / "x").exists()
    s.close()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([UP, REQ]), st.integers(0, 30)), max_size=40), st.integers(1, 8))
def test_ring_matches_a_simple_model(ops: list[tuple[tuple[tuple[str, str], ...], int]], capacity: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        s = EmbeddedExemplarStore(Path(d), capacity)
        kept: list[Exemplar] = []
        for series, ts in ops:
            e = ex(series, ts)
            s.append("t", [e])
            # refused when not newer than the series' newest still kept (an evicted series starts over)
            if any(k.series == series and k.ts >= ts for k in kept):
                continue
            kept.append(e)
            kept = kept[-capacity:]
        want: dict[object, list[Exemplar]] = {}
        for e in kept:
            want.setdefault(e.series, []).append(e)
        assert s.select("t", ALL, 0, 100) == sorted(want.items(), key=lambda kv: kv[0])  # type: ignore[arg-type]
        s.close()
        reopened = EmbeddedExemplarStore(Path(d), capacity)
        assert reopened.select("t", ALL, 0, 100) == s.select("t", ALL, 0, 100)
        reopened.close()
