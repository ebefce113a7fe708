"""label_replace, label_join, the sort family and absent()."""

from __future__ import annotations

import re

import numpy as np
import pytest

from clearsight.query.promql import ast
from clearsight.query.promql.fn_labels import expand_template, natsort_less
from clearsight.query.promql.values import QueryError, VectorSteps

from .test_fn_support import L, M, as_dict, call, ctx, instant, load, selector

NAN = float("nan")


def metric_vector() -> VectorSteps:
    s = load(
        5 * M,
        {
            L(name="testmetric", src="source-value-10", dst="original-destination-value"): [0],
            L(name="testmetric", src="source-value-20", dst="original-destination-value"): [1],
        },
    )
    return instant(s, [0])


def dsts(v: object) -> list[str]:
    assert isinstance(v, VectorSteps)
    return [dict(lb).get("dst", "<none>") for lb in v.labels]


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (("dst", "destination-value-$1", "src", "source-value-(.*)"), ["destination-value-10", "destination-value-20"]),
        (("dst", "destination-value-$1", "src", "value-(.*)"), ["original-destination-value"] * 2),
        (("dst", "$1-value-$2", "src", "(.*)-value-(.*)"), ["source-value-10", "source-value-20"]),
        (("dst", "value-$1", "nonexistent-src", "source-value-(.*)"), ["original-destination-value"] * 2),
        (("dst", "value-$1", "nonexistent-src", "(.*)"), ["value-", "value-"]),
        (("dst", "value-$1", "src", "non-matching-regex"), ["original-destination-value"] * 2),
        (("dst", "", "dst", ".*"), ["<none>", "<none>"]),
        (("dst", "${1}x$1x$$", "src", "source-(?P<n>.*)"), ["value-10x$", "value-20x$"]),
        (("dst", "$n.$2", "src", "source-(?P<n>.*)"), ["value-10.", "value-20."]),
    ],
)
def test_label_replace(args: tuple[str, str, str, str], want: list[str]) -> None:
    out = call("label_replace", ctx([0]), metric_vector(), *args)
    assert dsts(out) == want
    assert isinstance(out, VectorSteps)
    assert out.values[:, 0].tolist() == [0.0, 1.0]


def test_label_replace_errors() -> None:
    with pytest.raises(QueryError, match=re.escape("invalid regular expression in label_replace(): (.*")):
        call("label_replace", ctx([0]), metric_vector(), "dst", "value-$1", "src", "(.*")
    with pytest.raises(QueryError, match="invalid destination label name"):
        call("label_replace", ctx([0]), metric_vector(), "", "", "src", "(.*)")
    with pytest.raises(QueryError, match="invalid destination label name"):
        call("label_replace", ctx([0]), metric_vector(), "\udcff", "", "src", "(.*)")
    with pytest.raises(QueryError, match="same labelset"):
        call("label_replace", ctx([0]), metric_vector(), "src", "", "", "")


def test_label_replace_merges_disjoint_series() -> None:
    s = load(20 * M, {L(name="series", label="a", idx="1"): [2, None], L(name="series", label="a", idx="2"): [None, 4]})
    out = call("label_replace", ctx([0, 20 * M]), instant(s, [0, 20 * M], lookback_ms=M), "idx", "replaced", "idx", ".*")
    assert isinstance(out, VectorSteps)
    assert out.labels == [L(name="series", label="a", idx="replaced")]
    assert out.values.tolist() == [[2.0, 4.0]] and out.present.all()
    overlap = instant(load(M, {L(label="a", idx="1"): [1], L(label="a", idx="2"): [2]}), [0])
    with pytest.raises(QueryError, match="same labelset"):
        call("label_join", ctx([0]), overlap, "idx", ",", "label", "label")


def test_label_replace_name_drop_flags() -> None:
    v = metric_vector()
    v.drop_name = np.array([True, True])
    out = call("label_replace", ctx([0]), v, "__name__", "renamed", "src", ".*")
    assert isinstance(out, VectorSteps) and out.drop_name is not None
    assert not out.drop_name.any()
    out = call("label_replace", ctx([0]), v, "x", "y", "src", ".*")
    assert isinstance(out, VectorSteps) and out.drop_name is not None and out.drop_name.all()


def test_label_join() -> None:
    s = load(5 * M, {L(name="t", src="a", src1="b", src2="c", dst="o"): [0], L(name="t", src="d", src1="e", src2="f", dst="o"): [1]})
    v = instant(s, [0])
    assert dsts(call("label_join", ctx([0]), v, "dst", "-", "src", "src1", "src2")) == ["a-b-c", "d-e-f"]
    assert dsts(call("label_join", ctx([0]), v, "dst", "-", "src", "src3", "src1")) == ["a--b", "d--e"]
    assert dsts(call("label_join", ctx([0]), v, "dst", ", ")) == ["<none>", "<none>"]
    dup = instant(load(5 * M, {L(name="dup", label="a", this="a"): [1], L(name="dup", label="b", this="a"): [1]}), [0])
    with pytest.raises(QueryError, match="vector cannot contain metrics with the same labelset"):
        call("label_join", ctx([0]), dup, "label", "", "this")
    with pytest.raises(QueryError, match="invalid source label name"):
        call("label_join", ctx([0]), v, "dst", "-", "")


def test_go_template_expansion_details() -> None:
    m = re.compile("(a)(b)?(?P<word>c)").fullmatch("ac")
    assert m is not None
    assert expand_template("$1|$2|$word|${word}x|$wordx|$$|$|$-|${1", m) == "a||c|cx||$|$|$-|${1"
    assert expand_template("$01", m) == ""  # leading zeros are not group numbers


def http_requests() -> VectorSteps:
    rows = [
        ("api-server", "0", "production", 100),
        ("api-server", "1", "production", 200),
        ("api-server", "0", "canary", 300),
        ("api-server", "1", "canary", 400),
        ("api-server", "2", "canary", NAN),
        ("app-server", "0", "production", 500),
        ("app-server", "1", "production", 600),
        ("app-server", "0", "canary", 700),
        ("app-server", "1", "canary", 800),
        ("api-server", "2", "production", 100),
    ]
    s = load(5 * M, {L(name="http_requests", job=j, instance=i, group=g): [v] for j, i, g, v in rows})
    return instant(s, [0])


def keys(v: object, *names: str) -> list[tuple[str, ...]]:
    assert isinstance(v, VectorSteps)
    return [tuple(dict(lb)[n] for n in names) for lb in v.labels]


def test_sort_and_sort_desc_put_nan_last() -> None:
    v = http_requests()
    asc = call("sort", ctx([0]), v)
    assert isinstance(asc, VectorSteps)
    assert asc.values[:, 0].tolist()[:9] == [100, 100, 200, 300, 400, 500, 600, 700, 800]
    assert np.isnan(asc.values[-1, 0])
    desc = call("sort_desc", ctx([0]), v)
    assert isinstance(desc, VectorSteps)
    assert desc.values[:, 0].tolist()[:9] == [800, 700, 600, 500, 400, 300, 200, 100, 100]
    assert np.isnan(desc.values[-1, 0])


def test_sort_in_range_query_warns() -> None:
    v = instant(load(M, {L(a="1"): [2, 1]}), [0, M])
    c = ctx([0, M])
    call("sort", c, v)
    assert c.annotations.warnings == [
        "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"
    ]


def test_sort_by_label() -> None:
    v = http_requests()
    assert keys(call("sort_by_label", ctx([0]), v, "instance"), "group", "instance", "job") == [
        ("canary", "0", "api-server"), ("canary", "0", "app-server"), ("production", "0", "api-server"),
        ("production", "0", "app-server"), ("canary", "1", "api-server"), ("canary", "1", "app-server"),
        ("production", "1", "api-server"), ("production", "1", "app-server"), ("canary", "2", "api-server"),
        ("production", "2", "api-server"),
    ]
    assert keys(call("sort_by_label_desc", ctx([0]), v, "instance"), "group", "instance", "job") == [
        ("production", "2", "api-server"), ("canary", "2", "api-server"), ("production", "1", "app-server"),
        ("production", "1", "api-server"), ("canary", "1", "app-server"), ("canary", "1", "api-server"),
        ("production", "0", "app-server"), ("production", "0", "api-server"), ("canary", "0", "app-server"),
        ("canary", "0", "api-server"),
    ]
    cpus = instant(load(M, {L(name="cpu", cpu=str(c)): [1] for c in [100, 21, 20, 12, 11, 10, 3, 2, 1, 0]}), [0])
    assert [k[0] for k in keys(call("sort_by_label", ctx([0]), cpus, "cpu"), "cpu")] == [
        "0", "1", "2", "3", "10", "11", "12", "20", "21", "100"
    ]


def test_natsort_semantics() -> None:
    assert natsort_less("4m5", "4m600") and natsort_less("4m600", "4m1000")
    assert natsort_less("1.2.3", "1.11.3") and natsort_less("1.11.3", "1.111.3")
    assert natsort_less("a", "b") and not natsort_less("b", "a")
    assert natsort_less("abc", "abc1")
    assert natsort_less("x", "x")  # facette/natsort quirk; sort_by_label only compares differing values
    assert natsort_less("a", "a2") and not natsort_less("a2", "a")


def test_absent() -> None:
    e = selector("nonexistent", ("job", "=", "testjob"), ("instance", "=", "testinstance"), ("method", "=~", ".x"))
    got = call("absent", ctx([0], [e]), VectorSteps.empty(1))
    assert as_dict(got) == {L(instance="testinstance", job="testjob"): 1}
    for ms in (
        [("job", "=", "testjob"), ("job", "=", "testjob2"), ("foo", "=", "bar")],
        [("job", "=", "testjob"), ("job", "=~", "testjob2"), ("foo", "=", "bar")],
        [("job", "=", "a"), ("job", "=", "b"), ("job", "=", "c"), ("foo", "=", "bar")],
    ):
        assert as_dict(call("absent", ctx([0], [selector("x", *ms)]), VectorSteps.empty(1))) == {L(foo="bar"): 1}
    agg = ast.AggregateExpr("sum", selector("x", ("job", "=", "a")))
    assert as_dict(call("absent", ctx([0], [agg]), VectorSteps.empty(1))) == {(): 1}
    # Present at some steps only: absent() has a value exactly where the input has none.
    v = instant(load(M, {L(name="x"): [1, None, None]}), [0, M, 3 * M], lookback_ms=M)
    out = call("absent", ctx([0, M, 3 * M], [selector("x")]), v)
    assert isinstance(out, VectorSteps) and out.present.tolist() == [[False, True, True]]
