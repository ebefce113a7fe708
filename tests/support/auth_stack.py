"""The server's real HTTP stack (every listener middleware, auth included) over a TestClient, with
users alice (admin of ``default``) and bob (of ``team-b``), for the identity tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.server import Built, _guarded, build

PW = "correct horse battery staple"


class Stack:
    def __init__(self, built: Built, app: Any) -> None:
        self.built = built
        self.app = app

    def client(self, base: str = "http://127.0.0.1") -> TestClient:
        """A client from a non-loopback address (no anonymous access)."""
        return TestClient(self.app, client=("10.0.0.9", 40000), base_url=base)


@contextmanager
def auth_stack(tmp_path: Path, *, bob_role: str = "admin", **overrides: Any) -> Iterator[Stack]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data"), **overrides})
    built = build(cfg)
    assert built.auth is not None
    built.auth.directory.create_user("alice", PW, "default", "admin")
    built.auth.directory.create_org("team-b")
    built.auth.directory.create_user("bob", PW, "team-b", bob_role)
    try:
        yield Stack(built, _guarded(create_app(built.services), cfg, built.auth))
    finally:
        built.store.close()
        if built.log_store is not None:
            built.log_store.close()
        built.auth.close()
