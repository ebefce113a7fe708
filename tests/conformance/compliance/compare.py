"""Range-query results and their comparison, the way the compliance tester compares them.

- Both results are matrices sorted by label set; label sets must match exactly.
- Timestamps must match exactly (milliseconds); values match within a relative tolerance of 1e-5
  (``|a - b| <= 1e-5 * min(|a|, |b|)``, no absolute margin), NaN equals NaN, infinities must be equal.
- ``should_fail`` queries pass when both sides fail (error texts are not compared).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

FRACTION = 1e-5

Labels = tuple[tuple[str, str], ...]
Points = list[tuple[int, float]]


@dataclass
class Answer:
    """One side's answer: an error text, or a matrix."""

    error: str | None = None
    matrix: list[tuple[Labels, Points]] | None = None
    result_type: str = ""


def ts_ms(v: Any) -> int:
    """A Prometheus API timestamp (float seconds with at most 3 decimals) as integer ms. Rounding is
    exact: ms timestamps are far below 2**53, so the nearest double of ``v * 1000`` rounds to them."""
    return round(float(v) * 1000)


def parse_value(s: str) -> float:
    return float(s)  # handles "NaN", "+Inf", "-Inf"


def parse_answer(status_code: int, body: bytes) -> Answer:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Answer(error=f"HTTP {status_code}: non-JSON body {body[:200]!r}")
    if not isinstance(doc, dict):
        return Answer(error=f"HTTP {status_code}: unexpected JSON {body[:200]!r}")
    if doc.get("status") != "success" or status_code // 100 != 2:
        return Answer(error=f"HTTP {status_code} {doc.get('errorType', '')}: {doc.get('error', body[:200])}")
    data = doc.get("data") or {}
    rtype = str(data.get("resultType", ""))
    if rtype != "matrix":
        return Answer(error=f"range query answered resultType {rtype!r}, not 'matrix'", result_type=rtype)
    matrix: list[tuple[Labels, Points]] = []
    for item in data.get("result") or []:
        labels = tuple(sorted((str(k), str(v)) for k, v in (item.get("metric") or {}).items()))
        points = [(ts_ms(t), parse_value(v)) for t, v in item.get("values") or []]
        matrix.append((labels, points))
    matrix.sort(key=lambda x: x[0])
    return Answer(matrix=matrix, result_type=rtype)


def query_range(
    client: httpx.Client, base_url: str, query: str, start_ms: int, end_ms: int, step: str
) -> Answer:
    try:
        r = client.post(
            base_url.rstrip("/") + "/api/v1/query_range",
            data={
                "query": query,
                "start": f"{start_ms / 1000:.3f}",
                "end": f"{end_ms / 1000:.3f}",
                "step": step,
            },
        )
    except httpx.HTTPError as e:
        return Answer(error=f"transport error: {type(e).__name__}: {e}")
    return parse_answer(r.status_code, r.content)


def values_equal(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    return abs(a - b) <= FRACTION * min(abs(a), abs(b))


def fmt_labels(labels: Labels) -> str:
    name = dict(labels).get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in labels if k != "__name__")
    return f"{name}{{{rest}}}"


def diff(ref: list[tuple[Labels, Points]], got: list[tuple[Labels, Points]]) -> str:
    """'' when equal, else a one-line description of the first difference."""
    ref_keys = [lb for lb, _ in ref]
    got_keys = [lb for lb, _ in got]
    if ref_keys != got_keys:
        missing = [lb for lb in ref_keys if lb not in set(got_keys)]
        extra = [lb for lb in got_keys if lb not in set(ref_keys)]
        parts = [f"{len(ref_keys)} series expected, got {len(got_keys)}"]
        if missing:
            parts.append(
                f"missing {fmt_labels(missing[0])}" + (f" (+{len(missing) - 1})" if len(missing) > 1 else "")
            )
        if extra:
            parts.append(
                f"extra {fmt_labels(extra[0])}" + (f" (+{len(extra) - 1})" if len(extra) > 1 else "")
            )
        if not missing and not extra:
            parts.append("duplicate label sets")
        return "; ".join(parts)
    for (labels, rp), (_, gp) in zip(ref, got, strict=True):
        if len(rp) != len(gp):
            rts = {t for t, _ in rp}
            gts = {t for t, _ in gp}
            only_r = sorted(rts - gts)
            only_g = sorted(gts - rts)
            where = (f"first missing t={only_r[0]}" if only_r else "") + (
                f" first extra t={only_g[0]}" if only_g else ""
            )
            return f"{fmt_labels(labels)}: {len(rp)} points expected, got {len(gp)} ({where.strip()})"
        for (rt, rv), (gt, gv) in zip(rp, gp, strict=True):
            if rt != gt:
                return f"{fmt_labels(labels)}: timestamp {gt} where {rt} expected"
            if not values_equal(rv, gv):
                return f"{fmt_labels(labels)} @{rt}: expected {rv!r}, got {gv!r}"
    return ""
