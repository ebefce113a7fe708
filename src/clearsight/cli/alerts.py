"""``clearsight alerts`` and ``clearsight silence add|list|expire``: the Alertmanager API v2 of a
Clearsight server (or of any Alertmanager) from the command line."""

from __future__ import annotations

import getpass
import os
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

from clearsight.cli.auth import auth_headers
from clearsight.config import parse_duration_ms
from clearsight.model.matchers import MatchType
from clearsight.notify.alert import AlertError, format_time, parse_time
from clearsight.notify.matchers import MatcherError, parse_matchers

URL = Annotated[str, typer.Option("--url", envvar="CLEARSIGHT_URL", help="Server URL")]
OUTPUT = Annotated[str, typer.Option("--output", "-o", help="table or json")]
STATES = ("firing", "active", "suppressed")


class CliError(Exception):
    pass


def _request(method: str, url: str, path: str, **kw: Any) -> Any:
    try:
        r = httpx.request(method, url.rstrip("/") + path, timeout=30, headers=auth_headers(url), **kw)
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach {url}: {e}") from None
    if r.status_code >= 400:
        try:
            msg = r.json()
        except ValueError:
            msg = r.text
        if isinstance(msg, dict):
            msg = msg.get("error") or msg.get("message") or msg
        raise CliError(f"{r.status_code}: {msg}")
    return r.json() if r.content else None


def _fail(e: Exception) -> typer.Exit:
    typer.echo(f"clearsight: {e}", err=True)
    return typer.Exit(1)


def _ago(ts: float, now: float) -> str:
    d = max(0, int(now - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if d >= size:
            return f"{d // size}{unit} ago"
    return f"{d}s ago"


def _print_table(columns: list[str], rows: list[list[str]]) -> None:
    table = Table(*columns, box=None, pad_edge=False)
    for r in rows:
        table.add_row(*r)
    Console(width=200).print(table)


def select_alerts(alerts: list[dict[str, Any]], *, state: str | None, since_s: float | None,
                  now: float) -> list[dict[str, Any]]:
    out = []
    for a in alerts:
        st = a.get("status", {}).get("state", "active")
        if state in ("active", "suppressed") and st != state:
            continue
        if since_s is not None and parse_time(a.get("startsAt"), "startsAt") < now - since_s:
            continue
        out.append(a)
    return sorted(out, key=lambda a: (a["labels"].get("alertname", ""), a.get("startsAt", "")))


def alerts_command(
    state: Annotated[str | None, typer.Option("--state", help="firing (all), active or suppressed")] = None,
    severity: Annotated[str | None, typer.Option("--severity", help="only alerts with this severity label")] = None,
    since: Annotated[str | None, typer.Option("--since", help="only alerts that started within this, e.g. 1h")] = None,
    output: OUTPUT = "table",
    url: URL = "http://127.0.0.1:9800",
) -> None:
    """List firing alerts (Alertmanager API v2 /api/v2/alerts)."""
    if state is not None and state not in STATES:
        raise _fail(CliError(f"--state must be one of {', '.join(STATES)} (got {state!r})"))
    if output not in ("table", "json"):
        raise _fail(CliError("--output must be table or json"))
    try:
        since_s = parse_duration_ms(since) / 1000 if since else None
    except ValueError as e:
        raise _fail(CliError(f"--since: {e}")) from None
    params = [("filter", f'severity="{severity}"')] if severity else []
    try:
        alerts = _request("GET", url, "/api/v2/alerts", params=params)
    except CliError as e:
        raise _fail(e) from None
    now = time.time()
    selected = select_alerts(alerts, state=state, since_s=since_s, now=now)
    if output == "json":
        typer.echo(orjson.dumps(selected, option=orjson.OPT_INDENT_2).decode())
        return
    rows = []
    for a in selected:
        labels = dict(a["labels"])
        name = labels.pop("alertname", "")
        sev = labels.pop("severity", "")
        st = a.get("status", {}).get("state", "")
        rows.append([name, st, sev, _ago(parse_time(a["startsAt"], "startsAt"), now),
                     ", ".join(f"{k}={v}" for k, v in sorted(labels.items())),
                     a.get("annotations", {}).get("summary", "")])
    _print_table(["ALERT", "STATE", "SEVERITY", "STARTED", "LABELS", "SUMMARY"], rows)
    typer.echo(f"{len(rows)} alert(s)", err=True)


silence_app = typer.Typer(no_args_is_help=True, help="Silences: add, list, expire.")


@silence_app.command("add")
def silence_add(
    matchers: Annotated[list[str], typer.Argument(help='matchers, e.g. alertname=HighCPU instance=~"web-.*"')],
    comment: Annotated[str, typer.Option("--comment", "-c", help="why (required)")],
    duration: Annotated[str | None, typer.Option("--duration", "-d", help="how long, e.g. 2h (default 1h)")] = None,
    until_resolved: Annotated[bool, typer.Option("--until-resolved",
                                                 help="no end: expires when the muted alerts resolve")] = False,
    expire_on_resolve: Annotated[bool, typer.Option("--expire-on-resolve",
                                                    help="also expire early once the muted alerts resolve")] = False,
    author: Annotated[str | None, typer.Option("--author", "-a", help="default: $USER")] = None,
    start: Annotated[str | None, typer.Option("--start", help="RFC 3339 start (default now)")] = None,
    url: URL = "http://127.0.0.1:9800",
) -> None:
    """Create a silence; prints its id."""
    try:
        parsed = [m for text in matchers for m in parse_matchers(text)]
    except MatcherError as e:
        raise _fail(CliError(str(e))) from None
    if until_resolved and duration:
        raise _fail(CliError("--until-resolved and --duration exclude each other"))
    try:
        starts = parse_time(start, "--start") if start else time.time()
        ends = 0.0 if until_resolved else starts + parse_duration_ms(duration or "1h") / 1000
    except (ValueError, AlertError) as e:
        raise _fail(CliError(f"--duration/--start: {e}")) from None
    body: dict[str, Any] = {
        "matchers": [{"name": m.name, "value": m.value, "isRegex": m.type in (MatchType.RE, MatchType.NRE),
                      "isEqual": m.type in (MatchType.EQ, MatchType.RE)} for m in parsed],
        "startsAt": format_time(starts), "createdBy": author or os.environ.get("USER") or getpass.getuser(),
        "comment": comment, "expireOnResolve": until_resolved or expire_on_resolve,
    }
    if ends:
        body["endsAt"] = format_time(ends)
    try:
        out = _request("POST", url, "/api/v2/silences", json=body)
    except CliError as e:
        raise _fail(e) from None
    typer.echo(out["silenceID"])
    for w in out.get("warnings", []):
        typer.echo(f"warning: {w}", err=True)


def _matchers_text(ms: list[dict[str, Any]]) -> str:
    ops = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
    return " ".join(f'{m["name"]}{ops[(m.get("isRegex", False), m.get("isEqual", True))]}"{m["value"]}"' for m in ms)


@silence_app.command("list")
def silence_list(
    expired: Annotated[bool, typer.Option("--expired", help="include expired silences")] = False,
    output: OUTPUT = "table",
    url: URL = "http://127.0.0.1:9800",
) -> None:
    """List silences (active and pending; --expired adds expired ones)."""
    try:
        items = _request("GET", url, "/api/v2/silences")
    except CliError as e:
        raise _fail(e) from None
    items = [s for s in items if expired or s["status"]["state"] != "expired"]
    if output == "json":
        typer.echo(orjson.dumps(items, option=orjson.OPT_INDENT_2).decode())
        return
    rows = []
    for s in items:
        ends = parse_time(s["endsAt"], "endsAt")
        until = "until resolved" if ends - time.time() > 50 * 365 * 86400 else \
            datetime.fromtimestamp(ends, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        rows.append([s["id"], s["status"]["state"], _matchers_text(s["matchers"]), until, s["createdBy"], s["comment"]])
    _print_table(["ID", "STATE", "MATCHERS", "ENDS", "AUTHOR", "COMMENT"], rows)


@silence_app.command("expire")
def silence_expire(
    ids: Annotated[list[str], typer.Argument(help="silence ids")],
    url: URL = "http://127.0.0.1:9800",
) -> None:
    """Expire silences by id."""
    delete_each(url, ids, "/api/v2/silence/{}", "expired")


def delete_each(url: str, ids: list[str], path: str, done: str) -> None:
    """DELETE ``path`` (``{}`` is the id) for each id, "``done`` <id>" for each success; exit 1 if any failed."""
    failed = False
    for sid in ids:
        try:
            _request("DELETE", url, path.format(sid))
            typer.echo(f"{done} {sid}")
        except CliError as e:
            typer.echo(f"clearsight: {sid}: {e}", err=True)
            failed = True
    if failed:
        raise typer.Exit(1)
