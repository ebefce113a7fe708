"""``clearsight silence recurring add|list|delete``: recurring silences (weekly windows in a time zone) of the
caller's organisation through ``/api/v1/silence_schedules`` (docs/alerting.md "Recurring silences")."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from clearsight.cli.alerts import (
    OUTPUT,
    URL,
    CliError,
    _fail,
    _matchers_text,
    _print_table,
    _request,
    delete_each,
)
from clearsight.model.matchers import MatchType
from clearsight.notify.matchers import MatcherError, parse_matchers
from clearsight.notify.recurring import WEEKDAYS

app = typer.Typer(no_args_is_help=True, help="Recurring silences: a weekly window in a time zone.")
PATH = "/api/v1/silence_schedules"


def parse_days(text: str) -> list[str]:
    """``sat,sun``, ``mon-fri``, ``monday,wednesday`` (three letters or the whole name; ranges wrap around)."""
    short = [d[:3] for d in WEEKDAYS]

    def day(t: str) -> int:
        t = t.strip().lower()
        if t[:3] in short and WEEKDAYS[short.index(t[:3])].startswith(t):
            return short.index(t[:3])
        raise CliError(f"--days: unknown day {t!r} (mon ... sun, or mon-fri)")

    out: list[int] = []
    for part in text.split(","):
        a, sep, b = part.partition("-")
        i, j = day(a), day(b) if sep else day(a)
        out.extend((i + k) % 7 for k in range((j - i) % 7 + 1))
    return [WEEKDAYS[i] for i in sorted(set(out))]


@app.command("add")
def recurring_add(
    matchers: Annotated[list[str], typer.Argument(help='matchers, e.g. alertname=NightlyBackup job=~"db-.*"')],
    days: Annotated[str, typer.Option("--days", help="days a window starts on: sat,sun or mon-fri")],
    start: Annotated[str, typer.Option("--from", help="start, HH:MM wall-clock time")],
    end: Annotated[str, typer.Option("--to", help="end, HH:MM (at or before --from: the next day; 24:00)")],
    comment: Annotated[str, typer.Option("--comment", "-c", help="why (required)")],
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone, e.g. Europe/Berlin")] = "UTC",
    url: URL = "http://127.0.0.1:9800",
) -> None:
    """Create a recurring silence; prints its id and its next window."""
    try:
        parsed = [m for text in matchers for m in parse_matchers(text)]
        weekdays = parse_days(days)
    except (MatcherError, CliError) as e:
        raise _fail(CliError(str(e))) from None
    body: dict[str, Any] = {
        "matchers": [{"name": m.name, "value": m.value, "isRegex": m.type in (MatchType.RE, MatchType.NRE),
                      "isEqual": m.type in (MatchType.EQ, MatchType.RE)} for m in parsed],
        "weekdays": weekdays, "startTime": start, "endTime": end, "timeZone": tz, "comment": comment,
    }
    try:
        out = _request("POST", url, PATH, json=body)["data"]
    except CliError as e:
        raise _fail(e) from None
    typer.echo(out["id"])
    if out["windows"]:
        w = out["windows"][0]
        typer.echo(f"next window: {w['startsAt']} to {w['endsAt']}", err=True)


@app.command("list")
def recurring_list(output: OUTPUT = "table", url: URL = "http://127.0.0.1:9800") -> None:
    """List the organisation's recurring silences with their next window."""
    try:
        items = _request("GET", url, PATH)["data"]
    except CliError as e:
        raise _fail(e) from None
    if output == "json":
        typer.echo(orjson.dumps(items, option=orjson.OPT_INDENT_2).decode())
        return
    rows = [[s["id"], ",".join(d[:3] for d in s["weekdays"]), f"{s['startTime']}-{s['endTime']}", s["timeZone"],
             _matchers_text(s["matchers"]), s["windows"][0]["startsAt"] if s["windows"] else "", s["createdBy"],
             s["comment"]] for s in items]
    _print_table(["ID", "DAYS", "WINDOW", "TIME ZONE", "MATCHERS", "NEXT WINDOW", "AUTHOR", "COMMENT"], rows)


@app.command("delete")
def recurring_delete(ids: Annotated[list[str], typer.Argument(help="recurring silence ids")],
                     url: URL = "http://127.0.0.1:9800") -> None:
    """Delete recurring silences by id (their running and pending silences expire)."""
    delete_each(url, ids, PATH + "/{}", "deleted")
