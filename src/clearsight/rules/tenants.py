"""Rule groups managed through the HTTP API, per tenant.

Each tenant's groups live in namespaces: one Prometheus-format rule file per namespace at
``<root>/<tenant>/<namespace>.yml``, evaluated by that tenant's own ``RuleManager`` (its own query
and write functions, so a tenant's rules read and write only its series). A change is validated
whole before anything is written (errors name the namespace, group, rule and field); the file is
replaced atomically and the tenant's manager reloads it, keeping the state of unchanged rules.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from clearsight.rules.manager import RuleManager
from clearsight.rules.model import ExprChecker, RuleFileError, parse_rule_text

log = logging.getLogger("clearsight.rules")

_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")

# Builds the manager of one tenant evaluating the given rule file globs.
ManagerFactory = Callable[[str, list[str]], RuleManager]


class NotFound(Exception):
    pass


def check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise RuleFileError([f"invalid {kind} {name!r}: 1-128 of A-Z a-z 0-9 _ . - (not starting with .)"])


class TenantRuleSets:
    def __init__(self, root: Path, make_manager: ManagerFactory, check_expr: ExprChecker | None = None) -> None:
        self.root = root
        self.make_manager = make_manager
        self.check_expr = check_expr
        self.managers: dict[str, RuleManager] = {}
        self._running = False
        self._lock = asyncio.Lock()

    def _dir(self, tenant: str) -> Path:
        return self.root / tenant

    def _path(self, tenant: str, namespace: str) -> Path:
        check_name("namespace", namespace)
        return self._dir(tenant) / f"{namespace}.yml"

    def _manager(self, tenant: str) -> RuleManager:
        m = self.managers.get(tenant)
        if m is None:
            m = self.make_manager(tenant, [str(self._dir(tenant) / "*.yml")])
            self.managers[tenant] = m
        return m

    def load(self) -> None:
        """Loads every tenant's saved namespaces (a tenant whose files no longer load is logged
        and left out)."""
        if not self.root.is_dir():
            return
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            m = self._manager(d.name)
            try:
                m.load()
            except RuleFileError as e:
                log.error("tenant rules not loaded", extra={"tenant": d.name, "errors": e.errors})
                del self.managers[d.name]

    async def start(self) -> None:
        self._running = True
        for m in list(self.managers.values()):
            await m.start()

    async def stop(self) -> None:
        self._running = False
        for m in list(self.managers.values()):
            await m.stop()

    def all_managers(self) -> list[RuleManager]:
        return list(self.managers.values())

    # ------------------------------------------------------------------ reads

    def namespaces(self, tenant: str) -> dict[str, str]:
        d = self._dir(tenant)
        if not d.is_dir():
            return {}
        return {p.stem: p.read_text() for p in sorted(d.glob("*.yml"))}

    def namespace(self, tenant: str, namespace: str) -> str:
        path = self._path(tenant, namespace)
        if not path.is_file():
            raise NotFound(f"no rule namespace {namespace!r}")
        return path.read_text()

    # ------------------------------------------------------------------ changes

    def _validate(self, namespace: str, text: str) -> None:
        # Errors read "<namespace>:<line>: group ..., rule ... field ...".
        parse_rule_text(text, namespace, self.check_expr)

    async def _apply(self, tenant: str, namespace: str, text: str | None) -> None:
        path = self._path(tenant, namespace)
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
        m = self._manager(tenant)
        ok, err = await m.reload()
        if not ok:  # cannot happen for validated text unless the disk changed under us
            raise RuleFileError([err])
        if self._running and not m.running:
            await m.start()

    async def put_namespace(self, tenant: str, namespace: str, text: str) -> None:
        """Replaces a namespace with a rule file (``groups: [...]``, YAML or JSON)."""
        async with self._lock:
            self._path(tenant, namespace)
            self._validate(namespace, text)
            await self._apply(tenant, namespace, text)

    async def set_group(self, tenant: str, namespace: str, text: str) -> None:
        """Adds or replaces (by name) one group (a mapping with ``name``, ``rules``, ...)."""
        async with self._lock:
            path = self._path(tenant, namespace)
            parse_rule_text(text, namespace, self.check_expr, single_group=True)  # errors: lines of the body
            group = yaml.safe_load(text)
            doc: dict[str, Any] = {"groups": []}
            if path.is_file():
                doc = yaml.safe_load(path.read_text()) or {"groups": []}
            groups = [g for g in doc.get("groups") or [] if g.get("name") != group.get("name")]
            groups.append(group)
            text_all = yaml.safe_dump({"groups": groups}, sort_keys=False)
            self._validate(namespace, text_all)
            await self._apply(tenant, namespace, text_all)

    async def delete_group(self, tenant: str, namespace: str, group: str) -> None:
        async with self._lock:
            path = self._path(tenant, namespace)
            if not path.is_file():
                raise NotFound(f"no rule namespace {namespace!r}")
            doc = yaml.safe_load(path.read_text()) or {}
            groups = doc.get("groups") or []
            kept = [g for g in groups if g.get("name") != group]
            if len(kept) == len(groups):
                raise NotFound(f"no rule group {group!r} in namespace {namespace!r}")
            await self._apply(tenant, namespace,
                              yaml.safe_dump({"groups": kept}, sort_keys=False) if kept else None)

    async def delete_namespace(self, tenant: str, namespace: str) -> None:
        async with self._lock:
            if not self._path(tenant, namespace).is_file():
                raise NotFound(f"no rule namespace {namespace!r}")
            await self._apply(tenant, namespace, None)
