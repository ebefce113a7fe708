"""The real app in process: ``build`` on a temp data directory, a Starlette ``TestClient`` over it,
the stores closed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from starlette.testclient import TestClient

from clearsight.api.app import create_app
from clearsight.config import load_config
from clearsight.server import build


def app_client(
    data_dir: Path, overrides: dict[str, str] | None = None, *, trust_tenant_header: bool = False
) -> Iterator[TestClient]:
    """Yields a client of the app built from the defaults plus ``overrides`` (``section.key``)."""
    cfg = load_config(env={}, overrides={"storage.data_dir": str(data_dir), **(overrides or {})})
    cfg.tenancy.trust_tenant_header = trust_tenant_header
    built = build(cfg)
    try:
        with TestClient(create_app(built.services)) as c:
            yield c
    finally:
        built.store.close()
        if built.log_store is not None:
            built.log_store.close()
        if built.auth is not None:
            built.auth.close()
