"""Compiled Python modules (native_python.txt, clearsight/_compiled.py): built, used, and never
run stale."""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clearsight import _compiled
from clearsight._compiled import SourceFirst, changed

REPO = Path(__file__).resolve().parents[2]
LISTED = [ln.strip() for ln in (REPO / "native_python.txt").read_text().splitlines()
          if ln.strip() and not ln.startswith("#")]


def _module(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def test_every_listed_module_runs_as_this_build_made_it() -> None:
    """By default (CI builds from scratch) none is compiled and each runs from its source, no
    extension module of an earlier build left beside it to shadow it; a build with
    CLEARSIGHT_COMPILED_PYTHON=1 (its manifest lists what it compiled) compiled every one, and the
    sources are the ones compiled. In CI the build is the default one."""
    assert LISTED
    recorded = json.loads(_compiled.MANIFEST.read_text())
    assert changed() == set()
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    compiled_build = bool(recorded)
    if os.environ.get("CI"):
        assert not compiled_build, "CI builds the default: nothing compiled"
    assert set(recorded) == ({_module(p) for p in LISTED} if compiled_build else set())
    for p in LISTED:
        mod = importlib.import_module(_module(p))
        assert mod.__file__ is not None
        if compiled_build:
            assert mod.__file__.endswith(suffixes), mod.__file__
        else:
            assert mod.__file__.endswith(".py"), mod.__file__
            assert not list((REPO / p).parent.glob(Path(p).stem + ".*.so")), p


def test_the_event_loop_modules_only() -> None:
    """Compiled code hides its frames from query/write_priority's stack walk: nothing of the query
    engine or the stores is listed (native_python.txt says why)."""
    for p in LISTED:
        assert p.startswith(("src/clearsight/api/", "src/clearsight/auth/", "src/clearsight/http_answer.py")), p
        assert "endpoints.py" not in p  # must stay a plain Python function (api/endpoints.py)


def _package(tmp_path: Path, source: str) -> Path:
    pkg = tmp_path / "cspkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(source)
    # a "compiled" module that is not one: importing it fails, so only the source can be imported
    (pkg / ("mod" + importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(b"not an ELF file")
    return pkg


def test_changed_compares_the_sources_with_the_manifest(tmp_path: Path) -> None:
    pkg = _package(tmp_path, "X = 'edited'\n")
    manifest = tmp_path / "m.json"
    same = hashlib.sha256((pkg / "mod.py").read_bytes()).hexdigest()
    manifest.write_text(json.dumps({"cspkg.mod": same, "cspkg.gone": "00"}))
    assert changed(manifest, tmp_path) == set()  # a module without source: the compiled one is all there is
    manifest.write_text(json.dumps({"cspkg.mod": "0" * 64}))
    assert changed(manifest, tmp_path) == {"cspkg.mod"}
    assert changed(manifest, tmp_path, pure=True) == {"cspkg.mod"}
    assert changed(tmp_path / "missing.json", tmp_path) == set()
    (tmp_path / "bad.json").write_text("{")
    assert changed(tmp_path / "bad.json", tmp_path) == set()


def test_source_first_imports_the_edited_source(tmp_path: Path) -> None:
    _package(tmp_path, "X = 'source'\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ImportError):
            importlib.import_module("cspkg.mod")  # the (broken) extension module wins by default
        sys.modules.pop("cspkg.mod", None)
        finder = SourceFirst({"cspkg.mod"}, tmp_path)
        sys.meta_path.insert(0, finder)
        try:
            mod = importlib.import_module("cspkg.mod")
            assert mod.X == "source" and mod.__file__ == str(tmp_path / "cspkg" / "mod.py")
        finally:
            sys.meta_path.remove(finder)
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("cspkg.mod", "cspkg"):
            sys.modules.pop(name, None)


def test_pure_python_runs_every_source() -> None:
    """CLEARSIGHT_PURE_PYTHON=1 (profilers): the sources, nothing printed."""
    code = ("import clearsight.api.fast_lane as f, clearsight.auth.usage as u; "
            "print(f.__file__.endswith('.py'), u.__file__.endswith('.py'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"CLEARSIGHT_PURE_PYTHON": "1", "PATH": "/usr/bin:/bin"}, cwd=REPO)
    assert out.stdout.split() == ["True", "True"] and out.stderr == ""
