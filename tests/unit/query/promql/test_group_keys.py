"""Group keys: the ``by (one label)`` scan that stops at the label (label sets are sorted, their
names unique) and the grouping by ``dict.setdefault`` give what filtering every pair gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.labels import Labels, make_labels
from clearsight.query.promql.agg_fold import group_keys
from clearsight.query.promql.aggregations import _groups

NAMES = ["__name__", "a", "b", "cpu", "instance", "job", "le", "mode", "zz", "A", "_x"]
label_sets = st.dictionaries(st.sampled_from(NAMES), st.sampled_from(["", "0", "1", "x", "node"]),
                             max_size=len(NAMES)).map(make_labels)


def _reference(labels: list[Labels], grouping: list[str], without: bool) -> list[Labels]:
    if without:
        drop = {*grouping, "__name__"}
        return [tuple(p for p in lbl if p[0] not in drop) for lbl in labels]
    return [tuple(p for p in lbl if p[0] in set(grouping)) for lbl in labels]


def _reference_groups(keys: list[Labels]) -> tuple[list[Labels], list[int]]:
    out: list[Labels] = []
    gid: list[int] = []
    for key in keys:
        if key not in out:
            out.append(key)
        gid.append(out.index(key))
    return out, gid


@settings(max_examples=400, deadline=None)
@given(st.lists(label_sets, max_size=30), st.lists(st.sampled_from([*NAMES, "nope", "~"]), max_size=3),
       st.booleans())
def test_keys_and_groups_match_the_filter(labels: list[Labels], grouping: list[str], without: bool) -> None:
    want = _reference(labels, grouping, without)
    assert group_keys(labels, grouping, without) == want
    assert _groups(labels, grouping, without) == _reference_groups(want)
