"""``clearsight users|orgs|roles|apikeys create|list|revoke``: the identity state database, directly
(the server need not run; it sees changes within ``auth.key_cache_ttl``). ``clearsight login``:
a session's refresh token (or an API key) stored per server URL for the commands that talk to a
server (``query``, ``alerts``, ``silence``, ``health``, ``logs``, ``events``), which exchange a refresh
token for an access token (``POST /api/v1/auth/refresh``, storing the rotated refresh token) and
send it as ``Authorization: Bearer``."""

from __future__ import annotations

import dataclasses
import getpass
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

CONFIG = Annotated[Path | None, typer.Option("--config", "-c", help="Server config file (auth.state_url, storage.data_dir)")]
DATA_DIR = Annotated[str | None, typer.Option("--data-dir", help="The server's data directory")]
ORG = Annotated[str | None, typer.Option("--org", help="Organisation (default: tenancy.default_tenant)")]
OUTPUT = Annotated[str, typer.Option("--output", "-o", help="table or json")]

users_app = typer.Typer(no_args_is_help=True, help="Users of an organisation: create, list, revoke.")
orgs_app = typer.Typer(no_args_is_help=True, help="Organisations: create, list, revoke (delete).")
roles_app = typer.Typer(no_args_is_help=True, help="Custom roles of an organisation: create, list, revoke.")
apikeys_app = typer.Typer(no_args_is_help=True, help="API keys of an organisation: create, list, revoke.")


@dataclasses.dataclass
class _State:
    directory: Any
    keys: Any
    sessions: Any
    default_org: str


@contextmanager
def _state(config: Path | None, data_dir: str | None) -> Iterator[_State]:
    from clearsight.auth.errors import AuthError
    from clearsight.auth.system import open_state, sessions_of
    from clearsight.config import ConfigError, load_config

    try:
        cfg = load_config(config, overrides={"storage.data_dir": data_dir} if data_dir else None)
    except ConfigError as e:
        typer.echo(f"clearsight: configuration error: {e}", err=True)
        raise typer.Exit(2) from None
    Path(cfg.storage.data_dir).mkdir(parents=True, exist_ok=True)
    db, directory, keys = open_state(cfg)
    try:
        yield _State(directory, keys, sessions_of(cfg, directory),
                     cfg.tenancy.default_tenant)
    except AuthError as e:
        typer.echo(f"clearsight: {e.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.close()


def _fmt_ms(ms: Any) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ms / 1000))


def _print(rows: list[Any], output: str, columns: list[str]) -> None:
    dicts = [dataclasses.asdict(r) if dataclasses.is_dataclass(r) and not isinstance(r, type) else dict(r)
             for r in rows]
    if output == "json":
        typer.echo(orjson.dumps(dicts, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(*columns)
    for d in dicts:
        table.add_row(*(_fmt_ms(d[c]) if c.endswith("_ms") else
                        ", ".join(d[c]) if isinstance(d[c], list) else str(d[c]) for c in columns))
    Console().print(table)


def _password(given: str | None, from_stdin: bool, username: str) -> str:
    if given:
        return given
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"Password for {username}: ")
    if getpass.getpass("Again: ") != first:
        typer.echo("clearsight: the passwords differ", err=True)
        raise typer.Exit(1)
    return first


def _org(st: _State, org: str | None) -> str:
    return org or st.default_org


# -- users
@users_app.command("create")
def users_create(username: str, role: Annotated[str, typer.Option("--role", help="Role in the organisation")] = "viewer",
                 password: Annotated[str | None, typer.Option("--password", help="Else --password-stdin or a prompt")] = None,
                 password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
                 org: ORG = None, config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """Create a user in an organisation (or add an existing user to it with --role)."""
    with _state(config, data_dir) as st:
        from clearsight.auth.errors import Conflict

        try:
            m = st.directory.create_user(username, _password(password, password_stdin, username), _org(st, org), role)
        except Conflict:
            m = st.directory.set_membership(username, _org(st, org), role)
        typer.echo(f"user {m.username} (id {m.id}) is {m.role} in {_org(st, org)}")


@users_app.command("list")
def users_list(org: ORG = None, output: OUTPUT = "table", config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """List the members of an organisation."""
    with _state(config, data_dir) as st:
        _print(st.directory.list_members(_org(st, org)), output,
               ["id", "username", "role", "disabled", "created_ms", "last_login_ms"])


@users_app.command("revoke")
def users_revoke(username: str, config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """Disable a user and end their sessions (every organisation)."""
    with _state(config, data_dir) as st:
        st.directory.disable_user(username)
        st.sessions.end_all(st.directory.user_id(username))
        typer.echo(f"user {username} disabled")


# -- organisations
@orgs_app.command("create")
def orgs_create(name: str, config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """Create an organisation."""
    with _state(config, data_dir) as st:
        typer.echo(f"organisation {st.directory.create_org(name).name} created")


@orgs_app.command("list")
def orgs_list(output: OUTPUT = "table", config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """List organisations."""
    with _state(config, data_dir) as st:
        _print(st.directory.list_orgs(), output, ["id", "name", "created_ms"])


@orgs_app.command("revoke")
def orgs_revoke(name: str, config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """Delete an organisation with its memberships, roles and keys (not its stored data)."""
    with _state(config, data_dir) as st:
        if name == st.default_org:
            typer.echo("clearsight: the default organisation cannot be deleted", err=True)
            raise typer.Exit(1)
        st.directory.delete_org(name)
        typer.echo(f"organisation {name} deleted")


# -- roles
@roles_app.command("create")
def roles_create(name: str, permissions: Annotated[str, typer.Option("--permissions", help="Comma-separated, e.g. metrics:read,logs:read")],
                 selector: Annotated[str, typer.Option("--selector", help='Label matchers narrowing what holders see, e.g. {team="payments"}')] = "",
                 org: ORG = None, config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """Create a custom role from permissions (optionally narrowed to the series and logs matching a selector)."""
    with _state(config, data_dir) as st:
        perms = [p.strip() for p in permissions.split(",") if p.strip()]
        r = st.directory.create_role(_org(st, org), name, perms, selector)
        narrowed = f", narrowed to {r.selector}" if r.selector else ""
        typer.echo(f"role {r.name} created: {', '.join(r.permissions)}{narrowed}")


@roles_app.command("list")
def roles_list(org: ORG = None, output: OUTPUT = "table", config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """List the built-in and custom roles of an organisation."""
    with _state(config, data_dir) as st:
        _print(st.directory.list_roles(_org(st, org)), output, ["name", "builtin", "permissions", "selector"])


@roles_app.command("revoke")
def roles_revoke(name: str, org: ORG = None, config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """Delete a custom role (refused while members hold it)."""
    with _state(config, data_dir) as st:
        st.directory.delete_role(_org(st, org), name)
        typer.echo(f"role {name} deleted")


# -- API keys
@apikeys_app.command("create")
def apikeys_create(name: str, role: Annotated[str, typer.Option("--role", help="Role of the key")] = "ingest",
                   expires_in: Annotated[str | None, typer.Option("--expires-in", help="e.g. 90d")] = None,
                   allow: Annotated[str, typer.Option("--allow-cidrs", help="Comma-separated CIDRs the key may come from")] = "",
                   org: ORG = None, output: OUTPUT = "table", config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """Create an API key; the key is printed once."""
    from clearsight.config import parse_duration_ms

    expires_ms = None
    if expires_in:
        try:
            expires_ms = int(time.time() * 1000) + parse_duration_ms(expires_in)
        except ValueError as e:
            typer.echo(f"clearsight: --expires-in: {e}", err=True)
            raise typer.Exit(2) from None
    with _state(config, data_dir) as st:
        view, key = st.keys.create(_org(st, org), name, role, expires_ms=expires_ms, allowed_cidrs=allow)
        if output == "json":
            typer.echo(orjson.dumps({**dataclasses.asdict(view), "key": key}).decode())
            return
        typer.echo(f"API key {view.id} ({view.name}, role {view.role}, organisation {view.org}); shown only once:\n{key}")


@apikeys_app.command("list")
def apikeys_list(org: ORG = None, output: OUTPUT = "table", config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """List the API keys of an organisation (prefixes only)."""
    with _state(config, data_dir) as st:
        _print(st.keys.list(_org(st, org)), output,
               ["id", "name", "prefix", "role", "allowed_cidrs", "created_ms", "expires_ms", "revoked_ms", "last_used_ms"])


@apikeys_app.command("revoke")
def apikeys_revoke(key_id: int, org: ORG = None, config: CONFIG = None, data_dir: DATA_DIR = None) -> None:
    """Revoke an API key (a running server stops accepting it within auth.key_cache_ttl)."""
    with _state(config, data_dir) as st:
        st.keys.revoke(_org(st, org), key_id)
        typer.echo(f"API key {key_id} revoked")


# -- stored credentials of the HTTP commands
def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "clearsight" / "credentials.json"


def _load_credentials() -> dict[str, str]:
    try:
        doc = orjson.loads(credentials_path().read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(doc, dict) else {}


_access_tokens: dict[str, str] = {}  # base URL -> access token got in this process


def _access_token(base: str, refresh_token: str) -> str:
    """An access token for a stored refresh token (once per process); the rotated refresh token
    replaces the stored one. A refused refresh removes it and says to sign in again."""
    import httpx

    if base in _access_tokens:
        return _access_tokens[base]
    try:
        r = httpx.post(base + "/api/v1/auth/refresh", json={"refresh_token": refresh_token}, timeout=30)
    except httpx.HTTPError as e:
        typer.echo(f"clearsight: cannot reach {base}: {e}", err=True)
        raise typer.Exit(1) from None
    creds = _load_credentials()
    if r.status_code != 200:
        creds.pop(base, None)
        _store_credentials(creds)
        typer.echo(f"clearsight: the stored session for {base} ended ({r.status_code}): run clearsight login",
                   err=True)
        raise typer.Exit(1)
    data = r.json()["data"]
    if data.get("refresh_token"):
        creds[base] = data["refresh_token"]
        _store_credentials(creds)
    _access_tokens[base] = str(data["token"])
    return _access_tokens[base]


def auth_headers(url: str) -> dict[str, str]:
    """``Authorization`` for ``url`` when ``clearsight login`` stored a session or key for it, else
    from ``CLEARSIGHT_API_KEY`` when set, else none (then a server on this machine answers as the
    anonymous principal)."""
    from clearsight.auth.sessions import REFRESH_PREFIX

    base = url.rstrip("/")
    token = _load_credentials().get(base) or os.environ.get("CLEARSIGHT_API_KEY", "")
    if token.startswith(REFRESH_PREFIX):
        token = _access_token(base, token)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _store_credentials(creds: dict[str, str]) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps(creds, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def login_command(
    url: Annotated[str, typer.Option("--url", envvar="CLEARSIGHT_URL", help="Server URL")] = "http://127.0.0.1:9800",
    username: Annotated[str, typer.Option("--username", "-u")] = "admin",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
    api_key_stdin: Annotated[bool, typer.Option("--api-key-stdin", help="Store an API key read from stdin instead")] = False,
    org: ORG = None,
) -> None:
    """Sign in to a server and store the session's refresh token (or an API key) for the other commands
    (0600 file)."""
    import httpx

    base = url.rstrip("/")
    if api_key_stdin:
        token = stored = sys.stdin.readline().strip()
    else:
        body = {"username": username, "password": _password(None, password_stdin, username)}
        if org:
            body["org"] = org
        try:
            r = httpx.post(base + "/api/v1/auth/login", json=body, timeout=30)
        except httpx.HTTPError as e:
            typer.echo(f"clearsight: cannot reach {base}: {e}", err=True)
            raise typer.Exit(1) from None
        if r.status_code != 200:
            typer.echo(f"clearsight: login failed ({r.status_code}): {r.json().get('error', r.text[:200])}", err=True)
            raise typer.Exit(1)
        token = r.json()["data"]["token"]
        stored = r.json()["data"]["refresh_token"]
    try:
        r = httpx.get(base + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as e:
        typer.echo(f"clearsight: cannot reach {base}: {e}", err=True)
        raise typer.Exit(1) from None
    if r.status_code != 200:
        typer.echo(f"clearsight: the server refused the credentials ({r.status_code})", err=True)
        raise typer.Exit(1)
    me = r.json()["data"]
    creds = _load_credentials()
    creds[base] = stored
    _store_credentials(creds)
    _access_tokens.pop(base, None)
    typer.echo(f"signed in to {base} as {me['name']} ({', '.join(me['roles'])} in {me['org']}); "
               f"stored in {credentials_path()}")


def register(app: typer.Typer) -> None:
    """Adds ``login`` and the four command groups to the ``clearsight`` command."""
    app.command(name="login")(login_command)
    app.add_typer(users_app, name="users")
    app.add_typer(orgs_app, name="orgs")
    app.add_typer(roles_app, name="roles")
    app.add_typer(apikeys_app, name="apikeys")
