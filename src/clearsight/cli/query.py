"""``clearsight query``: run PromQL against a Clearsight (or any Prometheus-compatible) server."""

from __future__ import annotations

import csv
import io
import sys
import time
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from clearsight.config import parse_duration_ms


class CliError(Exception):
    pass


def _time_arg(value: str | None, now: float) -> float:
    if value is None or value == "now":
        return now
    if value.startswith("now-"):
        return now - parse_duration_ms(value[4:]) / 1000
    try:
        return float(value)
    except ValueError:
        return value  # type: ignore[return-value]  # RFC3339: passed through to the server


def run_query(url: str, expr: str, *, at: str | None, range_: str | None, step: str | None,
              timeout: float = 120.0) -> dict[str, Any]:
    now = time.time()
    try:
        if range_:
            rng = parse_duration_ms(range_) / 1000
            end = _time_arg(at, now)
            if not isinstance(end, float):
                raise CliError("--time must be a unix timestamp or now[-duration] with --range")
            step_s = parse_duration_ms(step) / 1000 if step else max(rng / 250, 1.0)
            r = httpx.post(f"{url}/api/v1/query_range", timeout=timeout,
                           data={"query": expr, "start": end - rng, "end": end, "step": step_s})
        else:
            r = httpx.post(f"{url}/api/v1/query", timeout=timeout, data={"query": expr, "time": _time_arg(at, now)})
    except ValueError as e:
        raise CliError(str(e)) from None
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach {url}: {e}") from None
    try:
        body: dict[str, Any] = r.json()
    except ValueError:
        raise CliError(f"{url} answered HTTP {r.status_code} without JSON: {r.text[:200]}") from None
    if body.get("status") != "success":
        raise CliError(f"{body.get('errorType', 'error')}: {body.get('error', r.text[:200])}")
    return body


def _metric(m: dict[str, str]) -> str:
    name = m.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(m.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def _rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    rt = data["resultType"]
    res = data["result"]
    if rt in ("scalar", "string"):
        return [("", _fmt_ts(res[0]), str(res[1]))]
    rows: list[tuple[str, str, str]] = []
    for item in res:
        metric = _metric(item.get("metric", {}))
        if rt == "vector":
            rows.append((metric, _fmt_ts(item["value"][0]), item["value"][1]))
        else:
            for t, v in item.get("values", []):
                rows.append((metric, _fmt_ts(t), v))
    return rows


def _fmt_ts(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + (f".{round(t * 1000) % 1000:03d}" if t % 1 else "")


def render(body: dict[str, Any], output: str) -> str:
    data = body["data"]
    if output == "json":
        return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode()
    rows = _rows(data)
    if output == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["series", "time", "value"])
        w.writerows(rows)
        return buf.getvalue()
    table = Table(title=f"{data['resultType']} ({len(data['result']) if isinstance(data['result'], list) else 1} results)")
    table.add_column("series", overflow="fold")
    table.add_column("time (UTC)")
    table.add_column("value", justify="right")
    for row in rows:
        table.add_row(*row)
    console = Console(file=io.StringIO(), width=max(100, Console(file=sys.stdout).width), force_terminal=False)
    console.print(table)
    for w in body.get("warnings", []) or []:
        console.print(f"warning: {w}")
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return str(out)
