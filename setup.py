"""Build hook: compiles the native decoders (Cython) when Cython and a C compiler are present.

Without them the package still installs; ``clearsight.ingest.remote_write`` then logs a warning and
uses its pure-Python walk. The generated C sources go to ``build/`` (not into the source tree).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
# The manifest of compiled Python modules: module -> sha256 of the source compiled
# (clearsight/__init__.py runs the source of a module whose source changed since).
MANIFEST = HERE / "src" / "clearsight" / "_compiled.json"


def _compiled_python() -> list[str]:
    """The Python modules compiled with Cython (native_python.txt), as source paths."""
    lines = (HERE / "native_python.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _module(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


class _BuildExt(build_ext):
    """build_ext, then the manifest of the compiled Python modules' sources."""

    def run(self) -> None:
        super().run()
        names = {e.name for e in self.extensions}
        for p in _compiled_python():  # not compiled this time: an older build's module must not shadow it
            if _module(p) not in names:
                for so in (HERE / p).parent.glob(Path(p).stem + ".*.so"):
                    so.unlink()
        digests = {_module(p): hashlib.sha256((HERE / p).read_bytes()).hexdigest()
                   for p in _compiled_python() if _module(p) in names}
        MANIFEST.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")


def _numpy_headers() -> dict[str, Any]:
    """What a module that ``cimport``s numpy (clearsight/_ndarray.pxd) compiles with: numpy's headers
    (numpy is a build requirement: pyproject.toml), its pre-1.7 API hidden."""
    import numpy

    return {"include_dirs": [numpy.get_include()], "define_macros": [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]}


def _extensions() -> list[Extension]:
    if os.environ.get("CLEARSIGHT_NO_NATIVE"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("clearsight: Cython is not installed; building without native decoders")
        return []
    exts = [
        Extension(
            "clearsight.ingest._prompb",
            ["src/clearsight/ingest/_prompb.pyx"],
            extra_compile_args=["-O3"],
        ),
        Extension(
            "clearsight.ingest._lokipb",
            ["src/clearsight/ingest/_lokipb.pyx"],
            extra_compile_args=["-O3"],
        ),
        Extension(
            "clearsight.query._preempt",
            ["src/clearsight/query/_preempt.pyx"],
            extra_compile_args=["-O2"],
        ),
        Extension(
            "clearsight.api._idle_spin",
            ["src/clearsight/api/_idle_spin.pyx"],
            extra_compile_args=["-O2"],
        ),
        Extension(
            "clearsight.api._urldecode",
            ["src/clearsight/api/_urldecode.pyx"],
            extra_compile_args=["-O2"],
        ),
        Extension(
            "clearsight.api._reqhead",
            ["src/clearsight/api/_reqhead.pyx"],
            extra_compile_args=["-O2"],
        ),
        Extension(
            "clearsight.api._jsonfmt",
            ["src/clearsight/api/_jsonfmt.pyx"],
            extra_compile_args=["-O3"],
            **_numpy_headers(),
        ),
        Extension(
            "clearsight.query.promql._rate",
            ["src/clearsight/query/promql/_rate.pyx"],
            # bit-identical to the numpy path: no fused multiply-add
            extra_compile_args=["-O3", "-ffp-contract=off"],
        ),
        Extension(
            "clearsight.query.promql._aggfold",
            ["src/clearsight/query/promql/_aggfold.pyx"],
            # bit-identical to the numpy path: no fused multiply-add
            extra_compile_args=["-O3", "-ffp-contract=off"],
        ),
        Extension(
            "clearsight.query.promql._overtime",
            ["src/clearsight/query/promql/_overtime.pyx"],
            # bit-identical to the numpy path: no fused multiply-add
            extra_compile_args=["-O3", "-ffp-contract=off"],
        ),
        Extension(
            "clearsight.query.promql._selector",
            ["src/clearsight/query/promql/_selector.pyx"],
            extra_compile_args=["-O3"],
            **_numpy_headers(),
        ),
        Extension(
            "clearsight.store.embedded._headsel",
            ["src/clearsight/store/embedded/_headsel.pyx"],
            extra_compile_args=["-O3"],
            **_numpy_headers(),
        ),
        Extension(
            "clearsight.store.embedded._inrange",
            ["src/clearsight/store/embedded/_inrange.pyx"],
            extra_compile_args=["-O3"],
            **_numpy_headers(),
        ),
        Extension(
            "clearsight.store.embedded._chunkdec",
            ["src/clearsight/store/embedded/_chunkdec.pyx"],
            extra_compile_args=["-O3"],
        ),
        Extension(
            "clearsight.model._fptable",
            ["src/clearsight/model/_fptable.pyx"],
            extra_compile_args=["-O3"],
        ),
        Extension(
            "clearsight.store.embedded._logscan",
            ["src/clearsight/store/embedded/_logscan.pyx"],
            extra_compile_args=["-O3", "-D_GNU_SOURCE"],
        ),
    ]
    native = list(cythonize(exts, build_dir="build/cython", include_path=["src"],
                            compiler_directives={"language_level": "3"}))
    if os.environ.get("CLEARSIGHT_COMPILED_PYTHON", "") in ("", "0"):
        return native  # (the build's cleanup removes what an earlier build compiled of them)
    # Opt-in: plain Python modules of the event loop's request path, compiled as they are. Measured
    # slower than the interpreter on CPython 3.11, hot and cold (docs/architecture.md, "Compiled
    # code"), so off unless asked. Annotations are not enforced (annotation_typing off): the modules
    # run exactly as the interpreter runs them.
    plain = [Extension(_module(p), [p], extra_compile_args=["-O2"]) for p in _compiled_python()]
    return native + list(cythonize(plain, build_dir="build/cython",
                                   compiler_directives={"language_level": "3", "annotation_typing": False,
                                                        "binding": True}))


setup(ext_modules=_extensions(), cmdclass={"build_ext": _BuildExt})
