"""``clearsight logs`` (like Loki's ``logcli query``) and ``clearsight events``, over the HTTP API.

``logs '<logql>'`` runs a LogQL query over ``/loki/api/v1/query_range``: a log query prints its lines
(``raw``: the line alone; ``table``: local time, stream labels, line; ``json``: one JSON object per
line), a metric query prints one row per series and step (``json``: the server's whole answer).
``--follow`` then keeps printing new lines from ``/loki/api/v1/tail`` (WebSocket) until interrupted.
``events`` lists events from ``GET /api/v1/events`` (filters ``--type``, ``--level``, ``--origin``).

Credentials: what ``clearsight login`` stored for the URL, else ``CLEARSIGHT_API_KEY`` (``cli/auth.py``
``auth_headers``, as every HTTP command); without them the request is anonymous (accepted from this
machine in the default ``auth.anonymous: loopback``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from clearsight.cli.auth import auth_headers
from clearsight.config import parse_duration_ms

NS = 1_000_000_000


class LogsCliError(Exception):
    pass


def _get(url: str, path: str, params: list[tuple[str, str]], timeout: float = 120.0) -> dict[str, Any]:
    try:
        r = httpx.get(url.rstrip("/") + path, params=httpx.QueryParams(tuple(params)), headers=auth_headers(url),
                      timeout=timeout)
    except httpx.HTTPError as e:
        raise LogsCliError(f"cannot reach {url}: {e}") from None
    if r.status_code != 200:
        try:
            message = r.json().get("error") or r.json().get("message") or r.text
        except ValueError:
            message = r.text.strip()
        raise LogsCliError(f"{r.status_code}: {message}")
    out: dict[str, Any] = r.json()
    return out


def time_range(since: str, from_: str | None, to: str | None, now_ns: int) -> tuple[int, int]:
    """(start, end) in ns: ``--from``/``--to`` (RFC 3339 or unix seconds) or ``now - since`` .. now."""
    def parse(value: str, flag: str) -> int:
        try:
            return int(float(value) * NS)
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise LogsCliError(f"invalid {flag} {value!r}: expected RFC 3339 or unix seconds") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * NS)

    end = parse(to, "--to") if to else now_ns
    if from_:
        start = parse(from_, "--from")
    else:
        try:
            start = end - parse_duration_ms(since) * 1_000_000
        except ValueError as e:
            raise LogsCliError(f"invalid --since: {e}") from None
    if start > end:
        raise LogsCliError("--from is after --to")
    return start, end


def query_logs(url: str, logql: str, *, start_ns: int, end_ns: int, limit: int, direction: str,
               step: str | None = None) -> dict[str, Any]:
    params = [("query", logql), ("start", str(start_ns)), ("end", str(end_ns)), ("limit", str(limit)),
              ("direction", direction)]
    if step:
        params.append(("step", step))
    return _get(url, "/loki/api/v1/query_range", params)


def _local(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS).astimezone().isoformat(timespec="milliseconds")


def _labels(stream: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(stream.items())) + "}"


def render_streams(result: list[dict[str, Any]], output: str, direction: str) -> Iterator[str]:
    """Lines of a streams result in time order (``direction``), across streams."""
    rows = [(int(ts), s["stream"], line) for s in result for ts, line in s["values"]]
    rows.sort(key=lambda r: r[0], reverse=direction == "backward")
    for ts, stream, line in rows:
        if output == "raw":
            yield line
        elif output == "json":
            yield orjson.dumps({"timestamp": str(ts), "labels": stream, "line": line}).decode()
        else:
            yield f"{_local(ts)} {_labels(stream)} {line}"


def render_answer(body: dict[str, Any], output: str, direction: str) -> Iterator[str]:
    data = body["data"]
    kind = data["resultType"]
    if kind == "streams":
        yield from render_streams(data["result"], output, direction)
        return
    if output == "json":
        yield orjson.dumps(body).decode()
        return
    if kind == "matrix":
        for series in data["result"]:
            for ts, value in series["values"]:
                yield f"{_labels(series['metric'])} {value} @ {_local(int(float(ts) * NS))}"
    elif kind == "vector":
        for sample in data["result"]:
            ts, value = sample["value"]
            yield f"{_labels(sample['metric'])} {value} @ {_local(int(float(ts) * NS))}"
    else:  # scalar
        ts, value = data["result"]
        yield f"{value} @ {_local(int(float(ts) * NS))}"


def follow(url: str, logql: str, *, start_ns: int, limit: int, output: str) -> Iterator[str]:
    """Lines from the live tail, as they arrive (until the server ends the tail or an interrupt)."""
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    base = url.rstrip("/").replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    query = urlencode({"query": logql, "start": str(start_ns), "limit": str(limit)})
    try:
        with connect(f"{base}/loki/api/v1/tail?{query}", additional_headers=auth_headers(url),
                     open_timeout=30) as ws:
            for message in ws:
                frame = orjson.loads(message)
                yield from render_streams(frame.get("streams") or [], output, "forward")
    except (OSError, WebSocketException) as e:
        raise LogsCliError(f"live tail from {url} ended: {e}") from None


def query_events(url: str, *, start_ns: int, end_ns: int, types: list[str], levels: list[str],
                 origins: list[str], limit: int) -> list[dict[str, Any]]:
    params = [("start", str(start_ns)), ("end", str(end_ns)), ("limit", str(limit))]
    params += [("type", t) for t in types] + [("level", lv) for lv in levels] + [("origin", o) for o in origins]
    events: list[dict[str, Any]] = _get(url, "/api/v1/events", params)["data"]["events"]
    return events


def render_events(events: list[dict[str, Any]], output: str) -> Iterator[str]:
    for e in events:
        if output == "json":
            yield orjson.dumps(e).decode()
            continue
        ts = str(e.get("timestamp_ns", ""))
        when = _local(int(ts)) if ts.isdigit() else ts
        tags = ",".join(e.get("tags") or [])
        yield (f"{when} {e.get('level', '')} {e.get('type', '')} [{e.get('origin', '')}/{e.get('source', '')}]"
               f"{' #' + tags if tags else ''} {e.get('message', '')}")
