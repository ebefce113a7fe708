"""``clearsight health``: a resource's health (``--resource host:web-1``), with ``--history`` its
status transitions, or without ``--resource`` the status page (health and uptime by service)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

from clearsight.cli.auth import auth_headers

STYLE = {"healthy": "green", "warning": "yellow", "critical": "bold red"}


class CliError(Exception):
    pass


def _get(url: str, path: str, params: dict[str, str] | None = None) -> Any:
    try:
        r = httpx.get(url.rstrip("/") + path, params=params, timeout=30, headers=auth_headers(url))
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach {url}: {e}") from None
    try:
        body = r.json()
    except ValueError:
        raise CliError(f"{r.status_code}: {r.text.strip()}") from None
    if r.status_code >= 400:
        raise CliError(f"{r.status_code}: {body.get('error', body)}")
    return body["data"]


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _styled(status: str) -> str:
    style = STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def render_health(h: dict[str, Any], console: Console) -> None:
    console.print(f"{h['resource']}: {_styled(h['status'])} ({h['reason']})", highlight=False)
    t = Table("signal", "kind", "status", "detail")
    for s in h["signals"]:
        t.add_row(s["name"], s["kind"], _styled(s["status"]), s["detail"])
    console.print(t)


def render_history(d: dict[str, Any], console: Console) -> None:
    up = d["uptime_percent"]
    console.print(f"{d['resource']}: uptime {'unknown' if up is None else f'{up:g}%'}", highlight=False)
    t = Table("time", "status", "reason")
    for x in d["transitions"]:
        t.add_row(_when(x["time"]), _styled(x["status"]), x["reason"])
    console.print(t)


def render_status(d: dict[str, Any], console: Console) -> None:
    console.print(f"overall: {_styled(d['status'])}", highlight=False)
    t = Table("service", "status", "uptime", "reason")
    for s in d["services"]:
        up = s["uptime_percent"]
        t.add_row(s["service"], _styled(s["status"]), "-" if up is None else f"{up:g}%", s["reason"])
    console.print(t)
    for kind, counts in sorted(d["resources"].items()):
        console.print(f"{kind}s: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n), highlight=False)


def health_command(
    resource: Annotated[str | None, typer.Option("--resource", "-r", help="Resource id, e.g. host:web-1")] = None,
    history: Annotated[bool, typer.Option("--history", help="Status transitions of the resource (last 24 h)")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    url: Annotated[str, typer.Option("--url", envvar="CLEARSIGHT_URL", help="Server URL")] = "http://127.0.0.1:9800",
) -> None:
    """Show a resource's health (healthy|warning|critical, reason, signals), or the status page."""
    if output not in ("table", "json"):
        typer.echo("clearsight: --output must be table or json", err=True)
        raise typer.Exit(2)
    if history and resource is None:
        typer.echo("clearsight: --history needs --resource", err=True)
        raise typer.Exit(2)
    try:
        if resource is None:
            data = _get(url, "/status")
        elif history:
            data = _get(url, f"/api/v1/resources/{resource}/health/history")
        else:
            data = _get(url, f"/api/v1/resources/{resource}/health")
    except CliError as e:
        typer.echo(f"clearsight: {e}", err=True)
        raise typer.Exit(1) from None
    if output == "json":
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    console = Console(width=160)
    if resource is None:
        render_status(data, console)
    elif history:
        render_history(data, console)
    else:
        render_health(data, console)
