"""A module imported on first use.

pyarrow costs ~50 MiB of RSS once imported (its shared libraries and their relocations), and only
the log and span stores use it, for writes, seals and reads of logs and spans. Those modules bind
``pa = lazy_module("pyarrow")`` (the real import under ``TYPE_CHECKING``), so a server that never
writes or reads a log line or a span never loads pyarrow.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``: the first attribute read imports it, later reads go to it."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{'' if self._module is None else ' (loaded)'}>"


def lazy_module(name: str) -> Any:
    return LazyModule(name)
