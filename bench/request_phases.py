"""Where a small query's cold cost is, by phase of the fast lane: ``bench/request_callgrind.py``'s
count (the listener's protocol given Grafana's GET, caches evicted before each request) with the
counters dumped at the lane's boundaries (``CALLGRIND_DUMP_STATS_AT`` from a small C helper, called
by wrappers put around the lane's parts), summed per phase. Attribution, not a benchmark: the
wrappers' own calls are inside the figures, and a phase that runs first pays for the interpreter
code every later phase shares.

    CLEARSIGHT_SHARED=/work/shared PYTHONPATH=src .venv/bin/python bench/request_phases.py --query up
    ... bench/request_phases.py --query up --split front    # the request's head and plan in parts
    ... bench/request_phases.py --query up --split answer   # the engine, the store's read, the JSON

Phases: ``1`` the protocol to the plan, ``2`` the guards, ``3`` the application's prelude, ``4`` the
answer (engine, store, encoding), ``5`` the audit and zstd checks, ``6`` the answer's head and the
write, ``7`` the bookkeeping after the write; ``--split`` cuts ``1`` or ``4`` finer (a phase is named by
the mark that ends it: with ``--split answer`` an instant selector read by ``select_latest``, which
calls no ``select_data``, has its engine prelude and store read in ``4c``). It opens the same
``--data`` store as request_callgrind.py: run them one after the other. Needs valgrind
(its callgrind.h) and a C compiler; a few minutes.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD = "_CLEARSIGHT_PHASES_HELPER"  # set in the child: the helper library's path
HELPER_C = ("#include <valgrind/callgrind.h>\nvoid cg_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }\n"
            "void cg_dump(const char* s) { CALLGRIND_DUMP_STATS_AT(s); }\n")
SHOWN = ("Ir", "ILmr", "DLmr", "DLmw")


def _wrap(mod: Any, name: str, mark: Callable[[bytes], None], before: bytes, after: bytes) -> None:
    f = getattr(mod, name)

    def wrapped(*a: Any, **k: Any) -> Any:
        mark(before)
        out = f(*a, **k)
        mark(after)
        return out

    setattr(mod, name, wrapped)


def child(args: argparse.Namespace) -> int:
    """Under callgrind: the stack built, its parts wrapped, ``--requests`` requests counted."""
    import numpy as np
    from lane_inprocess import _load, build_stack, listener_protocol

    import clearsight.api.fast_lane as fast_lane
    import clearsight.api.http_limits as http_limits
    import clearsight.api.prometheus_query as prometheus_query
    import clearsight.query.promql.engine as engine

    prometheus_query.INLINE_MAX_CPU_S = 1e9  # (as request_callgrind.py: valgrind is slow)
    prometheus_query.INLINE_RECENT_MS = 1 << 62
    helper = ctypes.CDLL(os.environ[CHILD])
    dump = helper.cg_dump
    dump.argtypes = [ctypes.c_char_p]
    on = [False]

    def mark(name: bytes) -> None:
        if on[0]:
            dump(name)

    stack = build_stack(args.data, _load(args.data), args.query)
    lane = stack.lane
    if args.split == "front":
        _wrap(http_limits, "parse_request", mark, b"1a protocol entry", b"1b parse_request")
        _wrap(fast_lane, "query_params", mark, b"1c express and serve head", b"1d query_params")
        _wrap(fast_lane, "new_trace", mark, b"1f after plan", b"1g new_trace")
    elif args.split == "answer":
        _wrap(engine, "select_data", mark, b"4a engine prelude", b"4b store select")
        _wrap(engine, "_bare_rows", mark, b"4c read and kernel", b"4d result rows")
        _wrap(prometheus_query, "encode_result", mark, b"4e engine return", b"4f encode_result")
        _wrap(prometheus_query, "success", mark, b"4g between", b"4h success")
    guard = lane._guard

    def guarded(*a: Any) -> Any:
        mark(b"1 front and plan")
        out = guard(*a)
        mark(b"2 guards")
        return out

    lane._guard = guarded
    for path, ln in list(lane.routes.items()):
        route = ln.route

        def answer(plan: Any, tenant: str, route: Any = route) -> Any:
            mark(b"3 app prelude")
            out = route.answer(plan, tenant)
            mark(b"4 answer")
            return out

        def plan(*a: Any, route: Any = route) -> Any:
            mark(b"1e0 params")
            out = route.plan(*a)
            mark(b"1e plan")
            return out

        changed = {"answer": answer, "plan": plan} if args.split == "front" else {"answer": answer}
        lane.routes[path] = ln._replace(route=route._replace(**changed))
    respond_now = lane.hot.respond_now

    def responding(scope: Any, response: Any) -> Any:
        mark(b"5 audit and zstd checks")
        return respond_now(scope, response)

    lane.hot.respond_now = responding
    try:
        protocol, transport, request = listener_protocol(stack)
        write = transport.write

        def writing(data: bytes) -> None:
            mark(b"6 head and write")
            write(data)

        transport.write = writing  # type: ignore[method-assign]
        for _ in range(300):
            protocol.data_received(request)
        transport.out.clear()
        lines = np.zeros(max(args.flush_mb, 1) << 20, dtype=np.uint8)[::64]
        for _ in range(args.requests):
            if args.flush_mb:
                lines += 1
            helper.cg_toggle()
            on[0] = True
            protocol.data_received(request)
            mark(b"7 after")
            on[0] = False
            helper.cg_toggle()
        if sum(out.startswith(b"HTTP/1.1 200") for out in transport.out) != args.requests:
            print("not every request was answered by the lane", file=sys.stderr)
            return 1
    finally:
        stack.built.close_stores()
    return 0


def main(argv: list[str] | None = None) -> int:
    from request_callgrind import common_args, counted_run

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(p, requests=50)
    p.add_argument("--split", choices=("none", "front", "answer"), default="none",
                   help="cut the request's front (1) or its answer (4) into finer phases")
    args = p.parse_args(argv)
    if CHILD in os.environ:
        return child(args)
    with counted_run(args.data, HELPER_C, CHILD, Path(__file__), argv, "clearsight-phases-") as out:
        if out is None:
            return 1
        phases: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for part in out.parent.glob(out.name + "*"):
            text = part.read_text(errors="replace")
            found = re.search(r"^desc: Trigger: Client Request: (.*)$", text, re.M)
            if found is None:
                continue
            events = re.search(r"^events: (.*)$", text, re.M)
            totals = re.search(r"^summary: (.*)$", text, re.M)
            assert events is not None and totals is not None
            phases[found.group(1)].update(dict(zip(events.group(1).split(), map(int, totals.group(1).split()),
                                                  strict=True)))
    n = args.requests
    print(f"{args.query!r}, {n} requests after {args.flush_mb} MiB written each; per request "
          "(LL: last-level misses, code + data):")
    print(f"{'phase':<28}" + "".join(f"{k:>10}" for k in SHOWN) + f"{'LL':>10}")
    total: collections.Counter[str] = collections.Counter()
    for name in sorted(phases):
        c = phases[name]
        total.update(c)
        print(f"{name:<28}" + "".join(f"{c[k] / n:>10,.0f}" for k in SHOWN)
              + f"{(c['ILmr'] + c['DLmr'] + c['DLmw']) / n:>10,.0f}")
    print(f"{'total':<28}" + "".join(f"{total[k] / n:>10,.0f}" for k in SHOWN)
          + f"{(total['ILmr'] + total['DLmr'] + total['DLmw']) / n:>10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
