"""``info()``: enriches series with the labels of matching info metrics (``target_info``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearsight.query.promql.ast import Call
from clearsight.query.promql.values import I64, QueryError, Value

if TYPE_CHECKING:
    from clearsight.query.promql.engine import Evaluator


def evaluate_info(ev: Evaluator, e: Call, ts: I64) -> Value:
    raise QueryError("info() is not implemented yet")
