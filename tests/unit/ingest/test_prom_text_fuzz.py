"""Property tests: the parser raises nothing but InvalidInput, and rendered series round-trip."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.ingest.prom_text import parse_prometheus_text
from clearsight.pipeline.errors import InvalidInput

CONTENT_TYPES = ["text/plain; version=0.0.4", "application/openmetrics-text; version=1.0.0", ""]

# Fragments that steer random input towards the interesting parts of the grammar.
FRAGMENTS = [
    "# HELP ",
    "# TYPE ",
    "# UNIT ",
    "# EOF",
    "\n",
    " ",
    "\t",
    "{",
    "}",
    '"',
    "\\",
    "=",
    ",",
    "m",
    "m_total",
    "_created",
    "_bucket",
    "le",
    "counter",
    "gauge",
    "histogram",
    "info",
    "stateset",
    "summary",
    "untyped",
    "unknown",
    "NaN",
    "+Inf",
    "-Inf",
    "1",
    "1.5",
    "1e400",
    "0x1p3",
    "# {",
    "9" * 30,
    "\xff",
    "\x00",
    "é",
]


def _check(body: bytes, ct: str) -> None:
    try:
        r = parse_prometheus_text(body, ct, 0)
    except InvalidInput as e:
        assert str(e).startswith("line ") or "content type" in str(e)
        return
    for labels, value, ts in r.samples:
        assert isinstance(value, float)
        assert ts is None or isinstance(ts, int)
        assert list(labels) == sorted(labels)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(CONTENT_TYPES))
def test_random_bytes_only_raise_invalid_input(body: bytes, ct: str) -> None:
    _check(body, ct)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40), st.sampled_from(CONTENT_TYPES))
def test_grammar_fragments_only_raise_invalid_input(parts: list[str], ct: str) -> None:
    _check("".join(parts).encode("utf-8", "surrogatepass"), ct)


label_name = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: not s.startswith("__")
)
label_value = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=True)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(label_name, label_value, max_size=4),
            finite,
            st.one_of(st.none(), st.integers(0, 2**53)),
        ),
        min_size=1,
        max_size=8,
    ),
    st.booleans(),
)
def test_rendered_series_round_trip(series: list[tuple[dict[str, str], float, int | None]], om: bool) -> None:
    lines = []
    expected = []
    seen = set()
    for i, (lbls, v, ts) in enumerate(series):
        name = f"metric_{i}"
        body = ",".join(f'{k}="{_esc(val)}"' for k, val in lbls.items())
        if om and ts is not None:
            ts_tok = f" {ts}"  # integer seconds in OpenMetrics
            ts_ms = ts * 1000
        else:
            ts_tok = "" if ts is None else f" {ts}"
            ts_ms = ts
        v_tok = "+Inf" if v == math.inf else "-Inf" if v == -math.inf else repr(v)
        lines.append(f"{name}{{{body}}} {v_tok}{ts_tok}")
        exp_labels = tuple(sorted([("__name__", name), *[(k, x) for k, x in lbls.items() if x]]))
        expected.append((exp_labels, v, ts_ms))
        seen.add(exp_labels)
    text = "\n".join(lines) + ("\n# EOF\n" if om else "\n")
    ct = CONTENT_TYPES[1] if om else CONTENT_TYPES[0]
    r = parse_prometheus_text(text.encode(), ct, 0)
    assert len(r.samples) == len(expected)
    for (gl, gv, gt), (el, ev, et) in zip(r.samples, expected, strict=True):
        assert gl == el
        assert gt == et
        assert gv == ev or (math.isnan(gv) and math.isnan(ev))


# Lines sharing their series part with different tails, valid and invalid, to exercise the cache.
LINE_POOL = [
    'm{a="1"} 1',
    'm{a="1"} x',
    'm{a="1"}  2  3',
    'm{a="1"} 1 # {t="x"} 1',
    'm{a="1"}',
    'm{a="1"} 1 123',
    'm{a="1"} 1 1.5',
    'm{a="1"}\t7',
    'm{a="1"} 1 ',
    "m 1",
    "m\t1",
    "m 1 2",
    "m  1",
    "m",
    "m NaN",
    "m 1 -3",
    "# TYPE m counter",
    "# TYPE m gauge",
    "m_total 1",
    "m_total 2 # {} 1",
    "m_created 1",
    "# EOF",
    "",
    'm{a="1",} 2',
    'm{a="1",b="2"} 3',
    'm{b="2",a="1"} 3',
    'm{a="x\\"y"} 4',
    'm{a="1"}1',
    "n 5",
    "n 5 1",
    "# HELP m help",
    'm_total{a="1"} 3',
    'm {a="1"} 1',
    "m +Inf",
    "m 1 99999999999999999999",
]


def _outcome(
    body: bytes, ct: str, cache: dict[str, tuple[str, tuple[tuple[str, str], ...]]] | None
) -> object:
    try:
        r = parse_prometheus_text(body, ct, 0, series_cache=cache)
    except InvalidInput as e:
        return ("error", str(e))
    return ("ok", repr(r.samples), repr(r.metadata), r.created_dropped, r.exemplars_dropped, r.lines)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(LINE_POOL), max_size=12),
    st.lists(st.sampled_from(LINE_POOL), max_size=12),
    st.sampled_from(CONTENT_TYPES),
)
def test_series_cache_is_transparent(warm: list[str], lines: list[str], ct: str) -> None:
    tail = ["# EOF"] if "openmetrics" in ct else []
    cache: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}
    _outcome("\n".join(warm + tail).encode(), ct, cache)  # fills the cache (or fails part-way)
    body = "\n".join(lines + tail).encode()
    assert _outcome(body, ct, cache) == _outcome(body, ct, None)
