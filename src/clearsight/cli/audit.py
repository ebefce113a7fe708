"""``clearsight audit [--since 24h] [--org ...]`` lists the audit log; ``clearsight audit verify`` checks
its hash chain (exit 1 and the problems when a row was modified or deleted). Both read the state
database directly (``auth.state_url`` or ``<data_dir>/auth.db``); the server need not run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

CONFIG = Annotated[Path | None, typer.Option("--config", "-c", help="Server config file (auth.state_url, storage.data_dir)")]
DATA_DIR = Annotated[str | None, typer.Option("--data-dir", help="The server's data directory")]

audit_app = typer.Typer(add_completion=False, invoke_without_command=True,
                        help="The audit log: list entries, or verify its hash chain.")


@contextmanager
def _audit_log(config: Path | None, data_dir: str | None) -> Iterator[Any]:
    from clearsight.auth.audit import AuditLog
    from clearsight.auth.state import StateDb, engine_url
    from clearsight.config import ConfigError, load_config

    try:
        cfg = load_config(config, overrides={"storage.data_dir": data_dir} if data_dir else None)
    except ConfigError as e:
        typer.echo(f"clearsight: configuration error: {e}", err=True)
        raise typer.Exit(2) from None
    if not cfg.auth.state_url and not (Path(cfg.storage.data_dir) / "auth.db").exists():
        typer.echo(f"clearsight: no state database in {cfg.storage.data_dir} (has the server run?)", err=True)
        raise typer.Exit(1)
    db = StateDb(engine_url(cfg.auth.state_url, cfg.storage.data_dir))
    try:
        yield AuditLog(db)
    finally:
        db.close()


def _since_ms(since: str) -> int:
    from clearsight.config import parse_duration_ms

    try:
        return int(time.time() * 1000) - parse_duration_ms(since)
    except ValueError as e:
        typer.echo(f"clearsight: --since: {e}", err=True)
        raise typer.Exit(2) from None


def _line(row: dict[str, Any]) -> str:
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row["ts_ms"] / 1000))
    detail = orjson.dumps(row["detail"]).decode() if row["detail"] else ""
    return (f"{row['id']:>6} {ts} {row['org']} {row['actor']} {row['action']} {row['outcome']} "
            f"{row['target']} ip={row['source_ip'] or '-'} trace={row['trace_id'] or '-'} {detail}").rstrip()


@audit_app.callback()
def audit(
    ctx: typer.Context,
    config: CONFIG = None,
    data_dir: DATA_DIR = None,
    since: Annotated[str, typer.Option("--since", help="How far back, e.g. 1h, 7d")] = "24h",
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation (default: all)")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="e.g. user:alice, apikey:ci")] = None,
    action: Annotated[str | None, typer.Option("--action", help="e.g. auth.login, apikey.create")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="success or failure")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=5000)] = 1000,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
) -> None:
    """List audit entries, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    with _audit_log(config, data_dir) as log:
        rows = log.query(org, actor=actor, action=action, outcome=outcome, since_ms=_since_ms(since), limit=limit)
    if output == "json":
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    for row in rows:
        typer.echo(_line(row))


@audit_app.command("verify")
def verify(config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """Recompute the hash chain: exit 0 when intact, 1 (with the problems) when rows were changed or deleted."""
    with _audit_log(config, data_dir) as log:
        res = log.verify()
    if res.ok:
        typer.echo(f"audit log intact: {res.entries} entries, head {res.head_hash}")
        return
    typer.echo(f"audit log DAMAGED ({res.entries} entries read):", err=True)
    for p in res.problems:
        typer.echo(f"  {p}", err=True)
    raise typer.Exit(1)
