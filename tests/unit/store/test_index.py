"""The in-memory label index against brute-force matcher evaluation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.labels import Labels, make_labels
from clearsight.model.matchers import Matcher, MatchType, matches_all
from clearsight.store.embedded.index import TenantIndex

names = st.sampled_from(["__name__", "job", "instance", "mode"])
vals = st.sampled_from(["a", "b", "ab", "a.b", "cpu", "x|y", "10", ""])
label_sets = st.dictionaries(names, vals).map(make_labels)
patterns = st.sampled_from(
    ["a", "a|b", "a.*", ".*", ".+", "", "b|", "(a|ab)", "[ab]+", "c.u", "x\\|y", "10|cpu"]
)
matchers = st.one_of(
    st.builds(lambda n, v: Matcher.of(MatchType.EQ, n, v), names, vals),
    st.builds(lambda n, v: Matcher.of(MatchType.NEQ, n, v), names, vals),
    st.builds(lambda n, p: Matcher.of(MatchType.RE, n, p), names, patterns),
    st.builds(lambda n, p: Matcher.of(MatchType.NRE, n, p), names, patterns),
)


def _build(series: list[Labels]) -> TenantIndex:
    idx = TenantIndex()
    for i, lbl in enumerate(series, start=1):
        idx.add(i, lbl)
    return idx


@settings(max_examples=300, deadline=None)
@given(st.lists(label_sets, max_size=30), st.lists(matchers, max_size=3))
def test_select_matches_brute_force(series: list[Labels], ms: list[Matcher]) -> None:
    idx = _build(series)
    got = idx.select(ms).tolist()
    want = [i for i, lbl in enumerate(series, start=1) if matches_all(ms, lbl)]
    assert got == want


@settings(max_examples=100, deadline=None)
@given(st.lists(label_sets, min_size=1, max_size=30), st.data())
def test_remove_keeps_index_coherent(series: list[Labels], data: st.DataObject) -> None:
    idx = _build(series)
    dead = sorted(data.draw(st.sets(st.integers(1, len(series)))))
    idx.remove(np.asarray(dead, dtype=np.uint32), [series[i - 1] for i in dead])
    alive = [i for i in range(1, len(series) + 1) if i not in set(dead)]
    assert idx.all().tolist() == alive
    assert idx.label_names(None) == sorted({n for i in alive for n, _ in series[i - 1]})
    for name in ("job", "mode"):
        assert idx.label_values(name, None) == sorted(
            {v for i in alive for n, v in series[i - 1] if n == name}
        )
    m = Matcher.of(MatchType.RE, "job", "a|b")
    assert idx.select([m]).tolist() == [i for i in alive if m.matches_labels(series[i - 1])]


def test_label_names_and_values_restricted_to_ids() -> None:
    series = [
        make_labels({"__name__": "up", "job": "a"}),
        make_labels({"__name__": "up", "zone": "z1"}),
        make_labels({"__name__": "down", "job": "b"}),
    ]
    idx = _build(series)
    ids = np.asarray([2, 3], dtype=np.uint32)
    assert idx.label_names(ids) == ["__name__", "job", "zone"]
    assert idx.label_values("job", ids) == ["b"]
    assert idx.label_values("__name__", np.asarray([1], dtype=np.uint32)) == ["up"]


def test_many_series_select() -> None:
    idx = TenantIndex()
    n = 200_000
    for i in range(1, n + 1):
        idx.add(i, (("__name__", f"m{i % 100}"), ("instance", f"host-{i % 5000}"), ("job", "node")))
    got = idx.select([Matcher.of("=", "__name__", "m7"), Matcher.of("=~", "instance", "host-(7|107|207)")])
    assert got.tolist() == [i for i in range(1, n + 1) if i % 100 == 7 and i % 5000 in (7, 107, 207)]
    assert idx.select([Matcher.of("!=", "job", "node")]).size == 0
    assert idx.select([Matcher.of("=", "job", "")]).size == 0
    assert idx.select([Matcher.of("=~", "job", ".*")]).size == n


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "remove", "select"]), label_sets, st.lists(matchers, max_size=2)),
        max_size=25,
    )
)
def test_remembered_regex_values_follow_adds_and_removes(
    steps: list[tuple[str, Labels, list[Matcher]]],
) -> None:
    """Selects answered from remembered regex values stay exact while values come and go."""
    idx = TenantIndex()
    live: dict[int, Labels] = {}
    next_id = 1
    for op, lbl, ms in steps:
        if op == "add":
            idx.add(next_id, lbl)
            live[next_id] = lbl
            next_id += 1
        elif op == "remove" and live:
            sid = min(live)
            idx.remove(np.asarray([sid], dtype=np.uint32), [live.pop(sid)])
        for m in [*ms, Matcher.of(MatchType.RE, "job", "a.*"), Matcher.of(MatchType.NRE, "mode", "c.u")]:
            want = [i for i, lb in sorted(live.items()) if matches_all([m], lb)]
            assert idx.select([m]).tolist() == want
