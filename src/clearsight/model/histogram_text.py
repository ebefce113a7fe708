"""The promqltest / promtool histogram literal ``{{schema:1 sum:3 count:22 buckets:[5 10 7]}}``.

- :func:`parse_histogram` parses one literal; :func:`expand_histogram_item` expands a series item
  (``{{A}}``, ``{{A}}xN``, ``{{A}}+{{B}}xN``, ``{{A}}-{{B}}xN``) into its points, each with the
  flag "counter_reset_hint was given explicitly" that the test comparison needs.
- :func:`format_histogram` renders a histogram back in that syntax (Prometheus'
  ``TestExpression``), for error messages.
- :func:`promqltest_equal` compares an expected literal with an actual result the way promqltest does.

Keys: ``schema`` (int), ``sum``, ``count``, ``z_bucket`` (zero bucket count), ``z_bucket_w`` (zero
threshold), ``buckets`` / ``n_buckets`` (one dense run of positive/negative bucket counts starting
at index ``offset`` / ``n_offset``), ``custom_values`` (bounds for schema -53), and
``counter_reset_hint`` (``unknown``, ``reset``, ``not_reset``, ``gauge``). A key may appear once.
"""

from __future__ import annotations

import math
import re
import struct
from decimal import Decimal
from typing import NamedTuple

import numpy as np

from clearsight.model.histogram import (
    CounterResetHint,
    FloatHistogram,
    HistogramError,
    custom_bounds_match,
)

DEFAULT_EPSILON = 1e-6
_MIN_NORMAL = 2.2250738585072014e-308
_STALE_NAN_BITS = 0x7FF0000000000002

_HINTS = {
    "unknown": CounterResetHint.UNKNOWN,
    "reset": CounterResetHint.RESET,
    "not_reset": CounterResetHint.NOT_RESET,
    "gauge": CounterResetHint.GAUGE,
}
_HINT_NAMES = {v: k for k, v in _HINTS.items()}
_INT_KEYS = {"schema", "offset", "n_offset"}
_FLOAT_KEYS = {"sum", "count", "z_bucket", "z_bucket_w"}
_LIST_KEYS = {"buckets", "n_buckets", "custom_values"}


class HistogramSyntaxError(ValueError):
    pass


class ParsedHistogram(NamedTuple):
    histogram: FloatHistogram
    counter_reset_hint_set: bool


def _parse_number(s: str, key: str) -> float:
    t = s.strip()
    low = t.lower().lstrip("+-")
    if low in ("inf", "nan"):
        if low == "nan":
            return math.nan
        return -math.inf if t.startswith("-") else math.inf
    try:
        return float(int(t, 0))
    except (ValueError, OverflowError):
        pass
    try:
        if "_" in t or t.lower().startswith(("0x", "-0x", "+0x")):
            raise ValueError(t)
        return float(t)
    except ValueError:
        raise HistogramSyntaxError(f"error parsing {key} number: {s}") from None


def _parse_int(s: str, key: str) -> int:
    try:
        return int(s.strip(), 0)
    except ValueError:
        raise HistogramSyntaxError(f"error parsing {key} number: {s}") from None


_ITEM_RE = re.compile(r"\s*([a-z_]+)\s*:\s*(\[[^\]]*\]|[^\s\]\[]+)")


def parse_histogram(text: str) -> ParsedHistogram:
    """Parse one ``{{...}}`` literal (surrounding whitespace allowed)."""
    t = text.strip()
    if not (t.startswith("{{") and t.endswith("}}")):
        raise HistogramSyntaxError(f"histogram literal must be enclosed in {{{{ }}}}: {text!r}")
    body = t[2:-2]
    desc: dict[str, object] = {}
    pos = 0
    while True:
        while pos < len(body) and body[pos].isspace():
            pos += 1
        if pos >= len(body):
            break
        m = _ITEM_RE.match(body, pos)
        if not m:
            raise HistogramSyntaxError(
                f"unexpected {body[pos:]!r} in histogram description, expected histogram description key, "
                "e.g. buckets:[5 10 7]"
            )
        key, raw = m.group(1), m.group(2)
        pos = m.end()
        if key in desc:
            raise HistogramSyntaxError(f'duplicate key "{key}" in histogram')
        if key in _INT_KEYS:
            desc[key] = _parse_int(raw, key)
        elif key in _FLOAT_KEYS:
            desc[key] = _parse_number(raw, key)
        elif key in _LIST_KEYS:
            if not raw.startswith("["):
                raise HistogramSyntaxError(f"error parsing {key} float array: {raw}")
            items = raw[1:-1].split()  # "[]" is accepted: Prometheus prints it for no bounds
            desc[key] = [_parse_number(x, key) for x in items]
        elif key == "counter_reset_hint":
            if raw not in _HINTS:
                raise HistogramSyntaxError(f"error parsing counter_reset_hint: unknown value {raw}")
            desc[key] = _HINTS[raw]
        else:
            raise HistogramSyntaxError(f"unknown histogram description key {key!r}")

    def dense(bkey: str, okey: str) -> dict[int, float]:
        vals = desc.get(bkey)
        off = desc.get(okey, 0)
        assert isinstance(off, int)
        if not isinstance(vals, list):
            return {}
        return {off + i: float(v) for i, v in enumerate(vals)}

    schema = desc.get("schema", 0)
    assert isinstance(schema, int)
    cv = desc.get("custom_values")
    hint = desc.get("counter_reset_hint", CounterResetHint.UNKNOWN)
    assert isinstance(hint, CounterResetHint)
    h = FloatHistogram.build(
        schema=schema,
        count=float(desc.get("count", 0.0)),  # type: ignore[arg-type]
        sum=float(desc.get("sum", 0.0)),  # type: ignore[arg-type]
        zero_threshold=float(desc.get("z_bucket_w", 0.0)),  # type: ignore[arg-type]
        zero_count=float(desc.get("z_bucket", 0.0)),  # type: ignore[arg-type]
        positive=dense("buckets", "offset"),
        negative=dense("n_buckets", "n_offset"),
        custom_values=cv if isinstance(cv, list) else None,
        counter_reset_hint=hint,
    )
    return ParsedHistogram(h, "counter_reset_hint" in desc)


_EXPAND_RE = re.compile(r"^(\{\{.*?\}\})(?:\s*([+-])\s*(\{\{.*?\}\}))?(?:\s*x\s*(\d+))?$", re.S)


def expand_histogram_item(item: str) -> list[ParsedHistogram]:
    """Expand one series item containing histograms into its points.

    ``{{A}}`` is one point; ``{{A}}xN`` is N+1 copies; ``{{A}}+{{B}}xN`` is ``A, A+B, A+2B, ...``
    (N+1 points; ``-`` subtracts). In the ``+``/``-`` form every point's "hint given" flag is the
    one of ``B`` (as Prometheus' parser does), and adding is refused when A's schema is finer
    than B's.
    """
    m = _EXPAND_RE.match(item.strip())
    if not m:
        raise HistogramSyntaxError(f"invalid histogram series item: {item!r}")
    base = parse_histogram(m.group(1))
    times = m.group(4)
    if m.group(2) is None:
        if times is None:
            return [base]
        return [base] * (int(times) + 1)
    if times is None:
        raise HistogramSyntaxError(f"histogram increment needs a repetition count (xN): {item!r}")
    inc = parse_histogram(m.group(3))
    hint_set = inc.counter_reset_hint_set
    out = [ParsedHistogram(base.histogram, hint_set)]
    cur = base.histogram
    for _ in range(int(times)):
        if cur.schema > inc.histogram.schema:
            raise HistogramSyntaxError(
                f"error combining histograms: cannot merge from schema {inc.histogram.schema} to {cur.schema}"
            )
        try:
            res = cur.sub(inc.histogram) if m.group(2) == "-" else cur.add(inc.histogram)
        except HistogramError as e:
            raise HistogramSyntaxError(str(e)) from None
        cur = res.histogram
        out.append(ParsedHistogram(cur, hint_set))
    return out


# --------------------------------------------------------------------------------- formatting


def go_format_g(v: float) -> str:
    """Go's ``%g`` / ``strconv.FormatFloat(v, 'g', -1, 64)`` (shortest repr)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digits, exp = Decimal(repr(v)).normalize().as_tuple()
    ds = "".join(str(d) for d in digits)
    assert isinstance(exp, int)
    dp = len(ds) + exp  # position of the decimal point relative to the digit string
    x = dp - 1
    s = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{s}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{s}0.{'0' * -dp}{ds}"
    if dp >= len(ds):
        return f"{s}{ds}{'0' * (dp - len(ds))}"
    return f"{s}{ds[:dp]}.{ds[dp:]}"


def format_histogram(h: FloatHistogram) -> str:
    """The literal Prometheus prints for ``h`` (``TestExpression``): one dense run per side."""
    parts: list[str] = []
    if h.schema != 0:
        parts.append(f"schema:{h.schema}")
    if h.count != 0:
        parts.append(f"count:{go_format_g(h.count)}")
    if h.sum != 0:
        parts.append(f"sum:{go_format_g(h.sum)}")
    if h.zero_count != 0:
        parts.append(f"z_bucket:{go_format_g(h.zero_count)}")
    if h.zero_threshold != 0:
        parts.append(f"z_bucket_w:{go_format_g(h.zero_threshold)}")
    if h.uses_custom_buckets:
        cv = [] if h.custom_values is None else h.custom_values.tolist()
        parts.append("custom_values:[" + " ".join(go_format_g(x) for x in cv) + "]")
    if h.counter_reset_hint != CounterResetHint.UNKNOWN:
        parts.append(f"counter_reset_hint:{_HINT_NAMES[h.counter_reset_hint]}")
    c = h.compact()
    for idx, cnt, bkey, okey in (
        (c.positive_index, c.positive, "buckets", "offset"),
        (c.negative_index, c.negative, "n_buckets", "n_offset"),
    ):
        if idx.size == 0:
            continue
        first, last = int(idx[0]), int(idx[-1])
        dense = np.zeros(last - first + 1)
        dense[idx - first] = cnt
        if first != 0:
            parts.append(f"{okey}:{first}")
        parts.append(f"{bkey}:[" + " ".join(go_format_g(x) for x in dense.tolist()) + "]")
    return "{{" + " ".join(parts) + "}}"


def format_histogram_brief(h: FloatHistogram) -> str:
    """Prometheus' ``FloatHistogram.String()``: ``{count:3, sum:5, [-1,-0.5):1, [-0.001,0.001]:2, (1,2]:3}``."""
    parts = [f"{{count:{go_format_g(h.count)}, sum:{go_format_g(h.sum)}"]
    for b in h.iter_buckets():
        if b.count == 0:
            continue
        lo = "[" if b.lower_inclusive else "("
        hi = "]" if b.upper_inclusive else ")"
        parts.append(f"{lo}{go_format_g(b.lower)},{go_format_g(b.upper)}{hi}:{go_format_g(b.count)}")
    return ", ".join(parts) + "}"


# --------------------------------------------------------------------------------- comparison


def _is_stale(v: float) -> bool:
    return struct.pack("<d", v) == struct.pack("<Q", _STALE_NAN_BITS)


def almost_equal(a: float, b: float, eps: float = DEFAULT_EPSILON) -> bool:
    """Prometheus' ``util/almost.Equal``."""
    if _is_stale(a) or _is_stale(b):
        return _is_stale(a) and _is_stale(b)
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        return diff < eps * _MIN_NORMAL
    return diff / min(abs_sum, 1.7976931348623157e308) < eps


def promqltest_equal(
    expected: FloatHistogram,
    actual: FloatHistogram,
    counter_reset_hint_set: bool,
    eps: float = DEFAULT_EPSILON,
) -> bool:
    """promqltest's comparison: both compacted; floats within ``eps``; layouts equal; the hint only
    when the expected literal gave one; custom bounds only when ``expected`` uses custom buckets."""
    e = expected.compact()
    a = actual.compact()
    if e.schema != a.schema or not almost_equal(e.count, a.count, eps) or not almost_equal(e.sum, a.sum, eps):
        return False
    if e.uses_custom_buckets and not custom_bounds_match(e.custom_values, a.custom_values):
        return False
    if e.zero_threshold != a.zero_threshold or not almost_equal(e.zero_count, a.zero_count, eps):
        return False
    for ei, ec, ai, ac in (
        (e.negative_index, e.negative, a.negative_index, a.negative),
        (e.positive_index, e.positive, a.positive_index, a.positive),
    ):
        if len(ei) != len(ai) or not bool(np.all(ei == ai)):
            return False
        if not all(almost_equal(x, y, eps) for x, y in zip(ec.tolist(), ac.tolist(), strict=True)):
            return False
    return not (counter_reset_hint_set and e.counter_reset_hint != a.counter_reset_hint)
