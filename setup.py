"""Build hook: compiles the native decoders (Cython) when Cython and a C compiler are present.

Without them the package still installs; ``clearsight.ingest.remote_write`` then logs a warning and
uses its pure-Python walk. The generated C sources go to ``build/`` (not into the source tree).
"""

from __future__ import annotations

import os

from setuptools import Extension, setup


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
            "clearsight.api._jsonfmt",
            ["src/clearsight/api/_jsonfmt.pyx"],
            extra_compile_args=["-O3"],
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
        ),
        Extension(
            "clearsight.store.embedded._headsel",
            ["src/clearsight/store/embedded/_headsel.pyx"],
            extra_compile_args=["-O3"],
        ),
        Extension(
            "clearsight.store.embedded._inrange",
            ["src/clearsight/store/embedded/_inrange.pyx"],
            extra_compile_args=["-O3"],
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
    return list(cythonize(exts, build_dir="build/cython", include_path=["src"],
                          compiler_directives={"language_level": "3"}))


setup(ext_modules=_extensions())
