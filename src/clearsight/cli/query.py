"""``clearsight query``: run PromQL against a Clearsight (or any Prometheus-compatible) server.

Output goes to stdout (``table``, ``json`` or ``csv``); the API's warnings and infos go to stderr for
``table`` and ``csv`` (``json`` prints the whole response, warnings included). Errors speak the
CLI's flags (``--step``, ``--range``, ``--time``), not the HTTP parameters.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from clearsight.cli.auth import auth_headers
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


# Server wording -> the CLI's flags.
_FLAG_WORDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Try decreasing the query resolution \(\?step=XX\)"),
     "Try a larger --step or a shorter --range"),
    (re.compile(r'invalid parameter "step"'), "invalid --step"),
    (re.compile(r'invalid parameter "time"'), "invalid --time"),
    (re.compile(r'invalid parameter "(start|end)"'), "invalid --time/--range"),
    (re.compile(r'invalid parameter "query"'), "invalid expression"),
    (re.compile(r'invalid parameter "timeout"'), "invalid timeout"),
    (re.compile(r"\?step="), "--step "),
]


def cli_words(message: str) -> str:
    """A server error message with the HTTP parameter names replaced by the CLI's flags."""
    for pattern, repl in _FLAG_WORDS:
        message = pattern.sub(repl, message)
    return message


def run_query(url: str, expr: str, *, at: str | None, range_: str | None, step: str | None,
              timeout: float = 120.0, client: httpx.Client | None = None) -> dict[str, Any]:
    if step and not range_:
        raise CliError("--step needs --range (an instant query has no step): add e.g. --range 1h")
    now = time.time()
    headers = auth_headers(url)  # stored by `clearsight login`
    def post(url: str, data: dict[str, Any]) -> httpx.Response:
        if client is not None:
            return client.post(url, data=data, headers=headers)
        return httpx.post(url, data=data, timeout=timeout, headers=headers)

    try:
        if range_:
            rng = parse_duration_ms(range_) / 1000
            end = _time_arg(at, now)
            if not isinstance(end, float):
                raise CliError("--time must be a unix timestamp or now[-duration] with --range")
            step_s = parse_duration_ms(step) / 1000 if step else max(rng / 250, 1.0)
            r = post(f"{url}/api/v1/query_range", {"query": expr, "start": end - rng, "end": end, "step": step_s})
        else:
            r = post(f"{url}/api/v1/query", {"query": expr, "time": _time_arg(at, now)})
    except ValueError as e:
        raise CliError(_flag_of_value_error(str(e), range_, step)) from None
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach {url}: {e}") from None
    try:
        body: dict[str, Any] = r.json()
    except ValueError:
        raise CliError(f"{url} answered HTTP {r.status_code} without JSON: {r.text[:200]}") from None
    if body.get("status") != "success":
        raise CliError(f"{body.get('errorType', 'error')}: {cli_words(str(body.get('error', r.text[:200])))}")
    return body


def _flag_of_value_error(message: str, range_: str | None, step: str | None) -> str:
    """Names the flag whose value could not be parsed (durations of --range/--step/--time)."""
    for flag, value in (("--range", range_), ("--step", step)):
        if value is not None and repr(value) in message:
            return f"invalid {flag} {value!r}: expected a duration such as 30s, 5m, 1h"
    return f"invalid --time: {message}"


def notes(body: dict[str, Any]) -> list[str]:
    """The response's warnings and infos, one line each (printed to stderr by the CLI)."""
    return ([f"warning: {w}" for w in body.get("warnings") or []]
            + [f"info: {i}" for i in body.get("infos") or []])


def _metric(m: dict[str, str]) -> str:
    name = m.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(m.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def _value(item_value: Any) -> str:
    """A float sample's value, or a short form of a native histogram."""
    if isinstance(item_value, dict):  # native histogram
        return f"histogram(count={item_value.get('count')}, sum={item_value.get('sum')})"
    return str(item_value)


def _samples(item: dict[str, Any], rt: str) -> list[tuple[float, str]]:
    if rt == "vector":
        pair = item.get("value") or item.get("histogram")
        return [(float(pair[0]), _value(pair[1]))] if pair else []
    points = [(float(t), _value(v)) for t, v in item.get("values", [])]
    points += [(float(t), _value(h)) for t, h in item.get("histograms", [])]
    return sorted(points, key=lambda p: p[0])


def _fmt_ts(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + (f".{round(t * 1000) % 1000:03d}" if t % 1 else "")


def iso_utc(t: float) -> str:
    """ISO-8601 UTC with a ``Z`` (milliseconds only when present): ``2024-01-02T03:04:05.250Z``."""
    dt = datetime.fromtimestamp(round(t * 1000) / 1000, UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    ms = round(t * 1000) % 1000
    return text + (f".{ms:03d}Z" if ms else "Z")


def summary(data: dict[str, Any]) -> str:
    """``scalar``, ``string``, ``vector (3 series)``, ``matrix (2 series, 120 points)``."""
    rt = data["resultType"]
    if rt in ("scalar", "string"):
        return rt
    series = data["result"]
    n = len(series)
    if rt == "vector":
        return f"vector ({n} series)"
    points = sum(len(s.get("values", [])) + len(s.get("histograms", [])) for s in series)
    return f"matrix ({n} series, {points} point{'s' if points != 1 else ''})"


def _csv(data: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    rt = data["resultType"]
    if rt in ("scalar", "string"):
        w.writerow(["time", "value"])
        w.writerow([iso_utc(float(data["result"][0])), data["result"][1]])
        return buf.getvalue()
    names = sorted({k for item in data["result"] for k in item.get("metric", {})},
                   key=lambda k: (k != "__name__", k))
    w.writerow([*names, "time", "value"])
    for item in data["result"]:
        m = item.get("metric", {})
        labels = [m.get(k, "") for k in names]
        for t, v in _samples(item, rt):
            w.writerow([*labels, iso_utc(t), v])
    return buf.getvalue()


def _table(data: dict[str, Any]) -> str:
    rt = data["resultType"]
    table = Table(title=summary(data))
    if rt in ("scalar", "string"):
        table.add_column("time (UTC)")
        table.add_column("value", justify="right")
        table.add_row(_fmt_ts(float(data["result"][0])), str(data["result"][1]))
    else:
        table.add_column("series", overflow="fold")
        table.add_column("time (UTC)")
        table.add_column("value", justify="right")
        for item in data["result"]:
            metric = _metric(item.get("metric", {}))
            for t, v in _samples(item, rt):
                table.add_row(metric, _fmt_ts(t), v)
    console = Console(file=io.StringIO(), width=max(100, Console(file=sys.stdout).width), force_terminal=False)
    console.print(table)
    return str(console.file.getvalue())  # type: ignore[attr-defined]


def render(body: dict[str, Any], output: str) -> str:
    """The result for stdout. Warnings and infos are not part of it for table/csv (see ``notes``)."""
    if output == "json":
        return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output == "csv":
        return _csv(body["data"])
    return _table(body["data"])
