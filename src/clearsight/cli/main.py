"""The ``clearsight`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from clearsight import __version__

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Clearsight observability platform.")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"clearsight {__version__}")


@app.command()
def server(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    data_dir: Annotated[str | None, typer.Option("--data-dir", help="Directory of the embedded store")] = None,
    listen: Annotated[str | None, typer.Option("--listen", help="host:port of the HTTP API")] = None,
    retention: Annotated[str | None, typer.Option("--retention", help="Keep samples this long, e.g. 15d")] = None,
    otlp_http_listen: Annotated[str | None, typer.Option("--otlp-http-listen", help='host:port, "" disables')] = None,
    otlp_grpc_listen: Annotated[str | None, typer.Option("--otlp-grpc-listen", help='host:port, "" disables')] = None,
    log_level: Annotated[str | None, typer.Option("--log-level")] = None,
) -> None:
    """Run the server on the embedded store."""
    from clearsight import gc_policy

    gc_policy.starting()  # no collections while the server's modules load; serve() settles (gc_policy.py)
    from clearsight.config import ConfigError, load_config
    from clearsight.logs import setup_logging
    from clearsight.server import run_server

    overrides: dict[str, Any] = {}
    for key, value in (("storage.data_dir", data_dir), ("server.listen", listen), ("storage.retention", retention),
                       ("server.otlp_http_listen", otlp_http_listen), ("server.otlp_grpc_listen", otlp_grpc_listen),
                       ("log.level", log_level)):
        if value is not None:
            overrides[key] = value
    try:
        cfg = load_config(config, overrides=overrides)
    except ConfigError as e:
        typer.echo(f"clearsight: configuration error: {e}", err=True)
        raise typer.Exit(2) from None
    setup_logging(cfg.log.level, cfg.log.format)
    try:
        run_server(cfg)
    except ConfigError as e:
        typer.echo(f"clearsight: configuration error: {e}", err=True)
        raise typer.Exit(2) from None
    except Exception as e:
        from clearsight.cli.startup_errors import lock_holder_message

        message = lock_holder_message(e, cfg.storage.data_dir)
        if message is None:
            raise
        typer.echo(message, err=True)
        raise typer.Exit(1) from None


@app.command()
def query(
    expr: Annotated[str, typer.Argument(help="PromQL expression")],
    time_: Annotated[str | None, typer.Option("--time", help="Evaluation time (unix seconds, RFC3339, now, now-1h)")] = None,
    range_: Annotated[str | None, typer.Option("--range", help="Range query over this duration ending at --time, e.g. 1h")] = None,
    step: Annotated[str | None, typer.Option("--step", help="Range query step, e.g. 1m")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or csv")] = "table",
    url: Annotated[str, typer.Option("--url", envvar="CLEARSIGHT_URL", help="Server URL")] = "http://127.0.0.1:9800",
) -> None:
    """Run a PromQL query (instant, or a range with --range) and print the result."""
    from clearsight.cli.query import CliError, notes, render, run_query

    if output not in ("table", "json", "csv"):
        typer.echo("clearsight: --output must be table, json or csv", err=True)
        raise typer.Exit(2)
    if step is not None and range_ is None:
        typer.echo("clearsight: --step needs --range (an instant query has no step): add e.g. --range 1h", err=True)
        raise typer.Exit(2)
    try:
        body = run_query(url, expr, at=time_, range_=range_, step=step)
    except CliError as e:
        typer.echo(f"clearsight: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(render(body, output), nl=False)
    if output != "json":  # json prints the whole response, warnings and infos included
        for line in notes(body):
            typer.echo(line, err=True)


@app.command()
def logs(
    logql: Annotated[str, typer.Argument(help="LogQL query, e.g. '{app=\"api\"} |= \"error\"'")],
    since: Annotated[str, typer.Option("--since", help="How far back, e.g. 15m, 1h, 2d")] = "1h",
    from_: Annotated[str | None, typer.Option("--from", help="Start (RFC 3339 or unix seconds); overrides --since")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End (RFC 3339 or unix seconds); default now")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most lines to print")] = 100,
    forward: Annotated[bool, typer.Option("--forward", help="Oldest first (default: newest first)")] = False,
    step: Annotated[str | None, typer.Option("--step", help="Step of a metric query, e.g. 1m")] = None,
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Then keep printing new lines (live tail)")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="raw, table or json")] = "table",
    url: Annotated[str, typer.Option("--url", envvar="CLEARSIGHT_URL", help="Server URL")] = "http://127.0.0.1:9800",
) -> None:
    """Run a LogQL query and print its lines (or its series), like logcli; --follow tails new lines."""
    import time

    from clearsight.cli.logs import LogsCliError, follow, query_logs, render_answer, time_range

    if output not in ("raw", "table", "json"):
        typer.echo("clearsight: --output must be raw, table or json", err=True)
        raise typer.Exit(2)
    direction = "forward" if forward or follow_ else "backward"
    try:
        start, end = time_range(since, from_, to, time.time_ns())
        body = query_logs(url, logql, start_ns=start, end_ns=end, limit=limit, direction=direction, step=step)
        for line in render_answer(body, output, direction):
            typer.echo(line)
        if follow_:
            for line in follow(url, logql, start_ns=end, limit=limit, output=output):
                typer.echo(line)
    except LogsCliError as e:
        typer.echo(f"clearsight: {e}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command()
def events(
    type_: Annotated[list[str] | None, typer.Option("--type", help="Event type (repeatable), e.g. change")] = None,
    level: Annotated[list[str] | None, typer.Option("--level", help="DEBUG, INFO, WARN or ERROR (repeatable)")] = None,
    origin: Annotated[list[str] | None, typer.Option("--origin", help="Origin (repeatable)")] = None,
    since: Annotated[str, typer.Option("--since", help="How far back, e.g. 1h")] = "1h",
    limit: Annotated[int, typer.Option("--limit", help="Most events to print")] = 100,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    url: Annotated[str, typer.Option("--url", envvar="CLEARSIGHT_URL", help="Server URL")] = "http://127.0.0.1:9800",
) -> None:
    """List events (deploys, changes, security events...), newest first."""
    import time

    from clearsight.cli.logs import LogsCliError, query_events, render_events, time_range

    if output not in ("table", "json"):
        typer.echo("clearsight: --output must be table or json", err=True)
        raise typer.Exit(2)
    try:
        start, end = time_range(since, None, None, time.time_ns())
        found = query_events(url, start_ns=start, end_ns=end, types=type_ or [], levels=level or [],
                             origins=origin or [], limit=limit)
    except LogsCliError as e:
        typer.echo(f"clearsight: {e}", err=True)
        raise typer.Exit(1) from None
    for line in render_events(found, output):
        typer.echo(line)


agent_app = typer.Typer(add_completion=False, invoke_without_command=True,
                        help="Run the agent (collect this host and ship it to the server), or show its status.")


@agent_app.callback()
def agent(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="agent.yaml (docs/agent.md)")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Server URL (default http://127.0.0.1:9800)")] = None,
    interval: Annotated[str | None, typer.Option("--interval", help="Host collector interval, e.g. 10s")] = None,
    log_level: Annotated[str | None, typer.Option("--log-level")] = None,
    protocol: Annotated[str | None, typer.Option("--protocol", help="grpc (default) or http")] = None,
    grpc_address: Annotated[str | None, typer.Option("--grpc-address",
                                                     help="The server's OTLP/gRPC host:port")] = None,
) -> None:
    """Run the agent: collect this host's metrics and logs and ship them to the server."""
    if ctx.invoked_subcommand is not None:
        return
    import os
    import sys

    # The agent runs as `python -m clearsight.agent` in this same process (exec): it keeps the PID but not
    # the memory of the command line's imports (typer, httpx, ...), ~27 MiB instead of ~38.
    argv = [sys.executable, "-m", "clearsight.agent"]
    for flag, value in (("--config", config), ("--url", url), ("--interval", interval), ("--log-level", log_level),
                        ("--protocol", protocol), ("--grpc-address", grpc_address)):
        if value is not None:
            argv += [flag, str(value)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


@agent_app.command("status")
def agent_status(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="The agent's agent.yaml (for state.dir)")] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="The agent's state.dir")] = None,
) -> None:
    """Print a running agent's own metrics (sent, buffered, dropped, retries, collector errors and durations)."""
    from clearsight.agent.config import load_agent_config
    from clearsight.agent.main import state_dir as agent_state_dir
    from clearsight.agent.status import StatusError, read_status, render
    from clearsight.config import ConfigError

    try:
        d = state_dir or agent_state_dir(load_agent_config(config))
        typer.echo(render(read_status(d / "status.json")), nl=False)
    except (ConfigError, StatusError) as e:
        typer.echo(f"clearsight: {e}", err=True)
        raise typer.Exit(1) from None


app.add_typer(agent_app, name="agent")

from clearsight.cli.certs import app as _certs_app  # noqa: E402  (certs init|issue|revoke; cryptography loads per command)

app.add_typer(_certs_app, name="certs")

from clearsight.cli.rules import app as _rules_app  # noqa: E402  (the `rules check|test` commands)

app.add_typer(_rules_app, name="rules")

from clearsight.cli.alerts import alerts_command, silence_app  # noqa: E402  (alerts, silence add|list|expire)

app.command(name="alerts")(alerts_command)
app.add_typer(silence_app, name="silence")

from clearsight.cli.silence_schedules import app as _recurring_app  # noqa: E402  (silence recurring add|list|delete)

silence_app.add_typer(_recurring_app, name="recurring")

from clearsight.cli.health import health_command  # noqa: E402  (health --resource host:web-1)

app.command(name="health")(health_command)

from clearsight.cli.auth import register as _register_auth  # noqa: E402  (users|orgs|roles|apikeys; SQL loads per command)

_register_auth(app)

from clearsight.cli.audit import audit_app  # noqa: E402  (audit, audit verify; SQL loads per command)

app.add_typer(audit_app, name="audit")

from clearsight.cli.signing import signing_app  # noqa: E402  (signing create|list|revoke)

app.add_typer(signing_app, name="signing")


def main() -> None:
    app()
