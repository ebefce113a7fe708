"""A small query's cost per request counted, not timed: instructions and simulated cache misses of
the listener's HTTP protocol and the fast lane answering it (bench/lane_inprocess.py's stack, the
request as Grafana sends it), under valgrind's callgrind.

The counts hardly vary for the same code, data and Python however busy the machine is (within
~0.03% run to run: time-dependent branches), so a change to the request path shows as a difference of a few thousand instructions or misses where a
timed benchmark on a shared 2-core machine needs many alternated rounds to see 5%. Only the
requests are counted (the collection is switched on and off around each one with callgrind's client
requests, from a small C helper this script compiles), each after ``--flush-mb`` MiB were written,
which evicts the simulated caches as a server asked in turn with other processes finds them.
The caches simulated: 32 KiB L1 instructions, 48 KiB L1 data, and a 2.5 MiB last level (this
machine's L2; its 48 MiB L3, shared with whatever else runs, is not modelled). Printed per request:
instructions (``Ir``), L1 misses (``I1mr``, ``D1mr``, ``D1mw``) and last-level misses (``ILmr``:
code, ``DLmr``/``DLmw``: data), the last the costly ones on a cold request.

    CLEARSIGHT_SHARED=/work/shared PYTHONPATH=src .venv/bin/python bench/request_callgrind.py --query up
    ... bench/request_callgrind.py --query 'max_over_time(node_load1[1h])' --requests 50
    ... bench/request_callgrind.py --query up --keep /tmp/up.out   # then: callgrind_annotate /tmp/up.out

Needs valgrind (its callgrind.h) and a C compiler; takes a few minutes (Python runs ~50x slower
under valgrind). Under valgrind a query's measured CPU exceeds the lane's inline limit and the data
ages past its recency limit, so the child raises both (prometheus_query.INLINE_MAX_CPU_S,
INLINE_RECENT_MS): the lane then answers inline, as the server does.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD = "_CLEARSIGHT_CALLGRIND_HELPER"  # set in the child: the helper library's path
HELPER_C = "#include <valgrind/callgrind.h>\nvoid cg_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }\n"
SHOWN = ("Ir", "I1mr", "ILmr", "D1mr", "DLmr", "D1mw", "DLmw")


def child(args: argparse.Namespace) -> int:
    """Under callgrind: the stack built, warmed up, then ``--requests`` requests counted."""
    import numpy as np
    from lane_inprocess import _load, build_stack, listener_protocol

    import clearsight.api.prometheus_query as prometheus_query

    prometheus_query.INLINE_MAX_CPU_S = 1e9  # (see the module's docstring)
    prometheus_query.INLINE_RECENT_MS = 1 << 62
    helper = ctypes.CDLL(os.environ[CHILD])
    stack = build_stack(args.data, _load(args.data), args.query, args.range_s)
    try:
        protocol, transport, request = listener_protocol(stack)
        for _ in range(300):
            protocol.data_received(request)
        transport.out.clear()
        lines = np.zeros(max(args.flush_mb, 1) << 20, dtype=np.uint8)[::64]
        for _ in range(args.requests):
            if args.flush_mb:
                lines += 1
            helper.cg_toggle()
            protocol.data_received(request)
            helper.cg_toggle()
        answered = [out for out in transport.out if out.startswith(b"HTTP/1.1 200")]
        if len(answered) != args.requests:
            print(f"only {len(answered)} of {args.requests} requests answered by the lane", file=sys.stderr)
            return 1
    finally:
        stack.built.close_stores()
    return 0


def totals(out_file: Path) -> dict[str, int]:
    """The run's event totals (callgrind_annotate's ``PROGRAM TOTALS``)."""
    text = subprocess.run(["callgrind_annotate", str(out_file)], capture_output=True, text=True, check=True).stdout
    lines = text.splitlines()
    events = next(ln for ln in lines if ln.startswith("Events shown:")).split(":", 1)[1].split()
    line = next(ln for ln in lines if "PROGRAM TOTALS" in ln)
    numbers = [int(x.replace(",", "")) for x in re.findall(r"([\d,]+) \(", line)]
    return dict(zip(events, numbers, strict=True))


def under_callgrind(tmp: Path, helper_c: str, child_var: str, script: Path, argv: list[str]) -> Path | None:
    """Runs ``script argv`` under callgrind (the caches simulated as the module's docstring says,
    collection off until the child toggles it) with ``helper_c`` compiled into ``tmp`` and its path in
    the child's ``child_var``; callgrind's output file (its dumps beside it, ``.N`` suffixed), or None
    (the child's error printed) when the run failed."""
    helper = tmp / "libcghelper.so"
    source = tmp / "cghelper.c"
    source.write_text(helper_c)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(helper), str(source)], check=True)
    out = tmp / "callgrind.out"
    cmd = ["valgrind", "--tool=callgrind", "--cache-sim=yes", "--collect-atstart=no", "--dump-instr=no",
           "--I1=32768,8,64", "--D1=49152,12,64", "--LL=2621440,10,64", f"--callgrind-out-file={out}",
           sys.executable, str(script.resolve()), *argv]
    run = subprocess.run(cmd, env={**os.environ, child_var: str(helper), "PYTHONHASHSEED": "0"},
                         capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr[-3000:], file=sys.stderr)
        return None
    return out


def common_args(p: argparse.ArgumentParser, requests: int) -> None:
    """The arguments of a counted run (this script's and bench/request_phases.py's)."""
    p.add_argument("--query", default="up")
    p.add_argument("--requests", type=int, default=requests)
    p.add_argument("--flush-mb", type=int, default=8, help="MiB written before each request (0: hot caches)")
    p.add_argument("--data", type=Path, default=Path("/tmp/clearsight-lane-inprocess"))


@contextlib.contextmanager
def counted_run(data: Path, helper_c: str, child_var: str, script: Path, argv: list[str] | None,
                prefix: str) -> Iterator[Path | None]:
    """``script`` run again with ``argv`` under callgrind (``under_callgrind``) after the data was
    loaded (or reused) here, outside valgrind; callgrind's output file, kept until the block ends,
    or None when the run failed."""
    from lane_inprocess import _load

    _load(data)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield under_callgrind(Path(tmp), helper_c, child_var, script, argv if argv is not None else sys.argv[1:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(p, requests=100)
    p.add_argument("--range", type=float, default=0.0, dest="range_s",
                   help="a range query over this many seconds up to the data's end instead of an instant query")
    p.add_argument("--keep", type=Path, default=None,
                   help="keep callgrind's output file here (per function: callgrind_annotate FILE)")
    args = p.parse_args(argv)
    if CHILD in os.environ:
        return child(args)
    with counted_run(args.data, HELPER_C, CHILD, Path(__file__), argv, "clearsight-callgrind-") as out:
        if out is None:
            return 1
        got = totals(out)
        if args.keep is not None:
            shutil.copyfile(out, args.keep)
    per = {k: got.get(k, 0) / args.requests for k in SHOWN}
    print(f"{args.query!r}{f' over {args.range_s:g} s' if args.range_s else ''}, {args.requests} requests"
          f"{f' after {args.flush_mb} MiB written each' if args.flush_mb else ', hot'}; per request:")
    print("  " + "  ".join(f"{k} {v:,.0f}" for k, v in per.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
