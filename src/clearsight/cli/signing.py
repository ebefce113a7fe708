"""``clearsight signing create|list|revoke``: an organisation's secrets for signed ingestion
(auth/signing.py), on the state database directly. A running server sees a revocation within 10 s
(the admin API, ``/api/v1/admin/signing_secrets``, revokes at once)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

CONFIG = Annotated[Path | None, typer.Option("--config", "-c", help="Server config file (auth.state_url, storage.data_dir)")]
DATA_DIR = Annotated[str | None, typer.Option("--data-dir", help="The server's data directory")]
ORG = Annotated[str | None, typer.Option("--org", help="Organisation (default: tenancy.default_tenant)")]

signing_app = typer.Typer(no_args_is_help=True, help="Signing secrets for signed ingestion: create, list, revoke.")


@contextmanager
def _secrets(config: Path | None, data_dir: str | None, org: str | None) -> Iterator[tuple[Any, str]]:
    from clearsight.auth.errors import AuthError
    from clearsight.auth.signing import SigningSecrets
    from clearsight.auth.state import StateDb, engine_url
    from clearsight.config import ConfigError, load_config

    try:
        cfg = load_config(config, overrides={"storage.data_dir": data_dir} if data_dir else None)
    except ConfigError as e:
        typer.echo(f"clearsight: configuration error: {e}", err=True)
        raise typer.Exit(2) from None
    Path(cfg.storage.data_dir).mkdir(parents=True, exist_ok=True)
    db = StateDb(engine_url(cfg.auth.state_url, cfg.storage.data_dir))
    try:
        yield SigningSecrets(db), org or cfg.tenancy.default_tenant
    except AuthError as e:
        typer.echo(f"clearsight: {e.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.close()


@signing_app.command("create")
def create(name: Annotated[str, typer.Argument(help="A name for the secret, e.g. the sender")],
           config: CONFIG = None, data_dir: DATA_DIR = None, org: ORG = None) -> None:
    """Create a secret; its key id and secret are printed once."""
    with _secrets(config, data_dir, org) as (secrets, o):
        view, secret = secrets.create(o, name)
    typer.echo(f"key id (x-org-key): {view.key_id}\nsecret: {secret}\n(shown only this once; organisation {o})")


@signing_app.command("list")
def list_(config: CONFIG = None, data_dir: DATA_DIR = None, org: ORG = None,
          output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text") -> None:
    """List the organisation's secrets (never the secret itself)."""
    with _secrets(config, data_dir, org) as (secrets, o):
        rows = [dataclasses.asdict(v) for v in secrets.list(o)]
    if output == "json":
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    for r in rows:
        created = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(r["created_ms"] / 1000))
        state = "revoked" if r["revoked_ms"] else "active"
        typer.echo(f"{r['id']:>4} {r['key_id']} {r['name']} {created} {state}")


@signing_app.command("revoke")
def revoke(secret_id: Annotated[int, typer.Argument(help="The id from `clearsight signing list`")],
           config: CONFIG = None, data_dir: DATA_DIR = None, org: ORG = None) -> None:
    """Revoke a secret (requests signed with it are refused)."""
    with _secrets(config, data_dir, org) as (secrets, o):
        v = secrets.revoke(o, secret_id)
    typer.echo(f"revoked {v.key_id} ({v.name})")
