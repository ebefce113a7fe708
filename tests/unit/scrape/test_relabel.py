"""Table-driven tests of every relabel action and of Go-style $-expansion."""

from __future__ import annotations

import re

import pytest

from clearsight.scrape.relabel import RelabelConfig, compile_regex, expand, process

BASE = {
    "__name__": "http_requests_total",
    "job": "api",
    "instance": "10.0.0.1:9100",
    "__meta_env": "Prod",
    "path": "/a/b",
}

CASES: list[tuple[str, dict[str, object], dict[str, str] | None]] = [
    # replace
    (
        "replace copies a label",
        dict(source_labels=["instance"], target_label="host", regex="(.*):.*"),
        {**BASE, "host": "10.0.0.1"},
    ),
    (
        "replace joins with separator",
        dict(
            source_labels=["job", "path"],
            separator="|",
            target_label="x",
            regex="api\\|(.*)",
            replacement="p=${1}",
        ),
        {**BASE, "x": "p=/a/b"},
    ),
    (
        "replace with no match changes nothing",
        dict(source_labels=["job"], regex="web", target_label="x", replacement="y"),
        BASE,
    ),
    ("replace is anchored", dict(source_labels=["job"], regex="ap", target_label="x", replacement="y"), BASE),
    (
        "replace to empty deletes",
        dict(source_labels=["nope"], target_label="path", replacement=""),
        {k: v for k, v in BASE.items() if k != "path"},
    ),
    (
        "replace with templated target",
        dict(source_labels=["__meta_env"], regex="(.*)", target_label="env_$1", replacement="yes"),
        {**BASE, "env_Prod": "yes"},
    ),
    (
        "replace $1x names group 1x (empty -> delete)",
        dict(source_labels=["job"], regex="(.*)", target_label="job", replacement="$1x"),
        {k: v for k, v in BASE.items() if k != "job"},
    ),
    (
        "replace ${1}x",
        dict(source_labels=["job"], regex="(.*)", target_label="job", replacement="${1}x"),
        {**BASE, "job": "apix"},
    ),
    (
        "replace named group",
        dict(
            source_labels=["instance"],
            regex="(?P<ip>[^:]+):(?P<port>\\d+)",
            target_label="port",
            replacement="$port",
        ),
        {**BASE, "port": "9100"},
    ),
    (
        "replace absent source reads as empty",
        dict(source_labels=["missing"], regex="", target_label="e", replacement="was-empty"),
        {**BASE, "e": "was-empty"},
    ),
    # keep / drop
    ("keep match", dict(action="keep", source_labels=["job"], regex="api|web"), BASE),
    ("keep no match", dict(action="keep", source_labels=["job"], regex="web"), None),
    ("keep is anchored", dict(action="keep", source_labels=["job"], regex="a"), None),
    ("drop match", dict(action="drop", source_labels=["__name__"], regex="http_.*"), None),
    ("drop no match", dict(action="drop", source_labels=["__name__"], regex="go_.*"), BASE),
    # labelmap
    ("labelmap", dict(action="labelmap", regex="__meta_(.*)"), {**BASE, "env": "Prod"}),
    (
        "labelmap with replacement",
        dict(action="labelmap", regex="__meta_(.*)", replacement="m_$1"),
        {**BASE, "m_env": "Prod"},
    ),
    # labeldrop / labelkeep
    (
        "labeldrop",
        dict(action="labeldrop", regex="__meta_.*|path"),
        {k: v for k, v in BASE.items() if k not in ("__meta_env", "path")},
    ),
    (
        "labelkeep",
        dict(action="labelkeep", regex="__name__|job"),
        {"__name__": "http_requests_total", "job": "api"},
    ),
    # hashmod
    (
        "hashmod",
        dict(action="hashmod", source_labels=["instance"], modulus=8, target_label="shard"),
        {**BASE, "shard": "HASH"},
    ),
    # lowercase / uppercase
    (
        "lowercase",
        dict(action="lowercase", source_labels=["__meta_env"], target_label="env"),
        {**BASE, "env": "prod"},
    ),
    (
        "uppercase",
        dict(action="uppercase", source_labels=["job", "__meta_env"], target_label="J"),
        {**BASE, "J": "API;PROD"},
    ),
    # keepequal / dropequal
    ("keepequal equal", dict(action="keepequal", source_labels=["job"], target_label="job"), BASE),
    ("keepequal different", dict(action="keepequal", source_labels=["job"], target_label="path"), None),
    ("dropequal equal", dict(action="dropequal", source_labels=["job"], target_label="job"), None),
    ("dropequal different", dict(action="dropequal", source_labels=["job"], target_label="path"), BASE),
    # case-insensitive regex flag (RE2 spelling)
    ("(?i) leading flag", dict(action="keep", source_labels=["__meta_env"], regex="(?i)prod"), BASE),
    ("POSIX class", dict(action="keep", source_labels=["job"], regex="[[:alpha:]]+"), BASE),
]


@pytest.mark.parametrize(("name", "kwargs", "expected"), CASES, ids=[c[0] for c in CASES])
def test_actions(name: str, kwargs: dict[str, object], expected: dict[str, str] | None) -> None:
    cfg = RelabelConfig.make(**kwargs)  # type: ignore[arg-type]
    got = process(BASE, [cfg])
    if expected is not None and expected.get("shard") == "HASH":
        assert got is not None
        assert got["shard"] in {str(i) for i in range(8)}
        assert process(BASE, [cfg]) == got  # deterministic
        return
    assert got == expected


def test_hashmod_matches_prometheus_md5_fold() -> None:
    # md5("a") = 0cc175b9c0f1b6a831c399e269772661; Prometheus keeps the low 8 bytes big-endian.
    cfg = RelabelConfig.make(action="hashmod", source_labels=["x"], modulus=1000, target_label="h")
    assert process({"x": "a"}, [cfg]) == {"x": "a", "h": str(0x31C399E269772661 % 1000)}


def test_configs_apply_in_order_and_stop_at_drop() -> None:
    cfgs = [
        RelabelConfig.make(source_labels=["__meta_env"], target_label="env"),
        RelabelConfig.make(action="drop", source_labels=["env"], regex="Prod"),
        RelabelConfig.make(source_labels=["job"], target_label="never"),
    ]
    assert process(BASE, cfgs) is None


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$1", "a"),
        ("${1}", "a"),
        ("$1-$2", "a-b"),
        ("$1x", ""),
        ("${1}x", "ax"),
        ("$$1", "$1"),
        ("$", "$"),
        ("x$", "x$"),
        ("${1", "${1"),
        ("$name", "b"),
        ("${name}.", "b."),
        ("$9", ""),
        ("$0", "a:b"),
        ("$01", ""),
        ("plain", "plain"),
        ("$-", "$-"),
    ],
)
def test_expand_like_go(template: str, expected: str) -> None:
    m = compile_regex("(a):(?P<name>b)").match("a:b")
    assert m is not None
    assert expand(template, m) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(action="hashmod", source_labels=["a"], target_label="t"), "requires non-zero modulus"),
        (dict(action="replace", target_label=""), "requires 'target_label' value"),
        (dict(action="replace", target_label="1bad"), "'1bad' is invalid 'target_label'"),
        (
            dict(action="lowercase", source_labels=["a"], target_label="t", replacement="x"),
            "'replacement' can not be set",
        ),
        (dict(action="labelmap", replacement="-"), "invalid 'replacement'"),
        (dict(action="labeldrop", regex="a", source_labels=["a"]), "requires only 'regex'"),
        (
            dict(action="keepequal", source_labels=["a"], target_label="b", regex="x"),
            "requires only 'source_labels' and 'target_label'",
        ),
        (dict(action="keepequal", source_labels=["a"]), "requires 'target_label' value"),
        (dict(action="keep", source_labels=["bad-name"]), "not a valid label name"),
        (dict(action="nope"), "unknown action 'nope'"),
    ],
)
def test_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        RelabelConfig.make(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("regex", ["(", "[[:nope:]]", "a(?i)b", "(?U)a"])
def test_invalid_regexes(regex: str) -> None:
    with pytest.raises(ValueError, match="invalid regex"):
        compile_regex(regex)
