"""Python modules compiled with Cython, and their sources when those changed since.

``setup.py`` compiles the modules listed in ``native_python.txt`` (plain Python, compiled as they
are) next to their sources and records each source's sha256 in ``_compiled.json``. Python imports a
compiled module before its source, so a source edited after the build would silently not run:
``prefer_changed_sources`` (called when the package is imported) compares each recorded digest with
the source on disk and imports the source of every module that changed, saying so once on stderr
(``make setup`` compiles them again). ``CLEARSIGHT_PURE_PYTHON=1`` imports every source (for
profilers that read Python frames, such as py-spy: compiled functions have none).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

MANIFEST = Path(__file__).with_name("_compiled.json")
ROOT = Path(__file__).resolve().parent.parent  # the directory holding the package


def source_of(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def changed(manifest: Path = MANIFEST, root: Path = ROOT, pure: bool = False) -> set[str]:
    """The compiled modules whose source is not the one compiled (all of them with ``pure``)."""
    try:
        recorded: dict[str, str] = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return set()
    if pure:
        return set(recorded)
    out = set()
    for module, digest in recorded.items():
        try:
            now = hashlib.sha256(source_of(module, root).read_bytes()).hexdigest()
        except OSError:
            continue  # no source (an installed wheel): the compiled module is all there is
        if now != digest:
            out.add(module)
    return out


class SourceFirst:
    """A meta path finder importing ``modules`` from their ``.py`` source under ``root``."""

    def __init__(self, modules: set[str], root: Path = ROOT) -> None:
        self.modules = modules
        self.root = root

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if name not in self.modules:
            return None
        src = source_of(name, self.root)
        return importlib.util.spec_from_file_location(
            name, src, loader=importlib.machinery.SourceFileLoader(name, str(src)))


def prefer_changed_sources() -> None:
    stale = changed(pure=os.environ.get("CLEARSIGHT_PURE_PYTHON", "") not in ("", "0"))
    if not stale or any(isinstance(f, SourceFirst) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, SourceFirst(stale))
    if not os.environ.get("CLEARSIGHT_PURE_PYTHON"):
        print(f"clearsight: {len(stale)} compiled module(s) older than their source, running the source "
              f"({', '.join(sorted(stale))}); `make setup` compiles them again", file=sys.stderr)
