"""The cyclic garbage collector's view of a long-running server.

CPython's collector pauses the process (with the GIL held) to walk every object it tracks in the
generation it collects; a full (generation 2) collection walks them all. Once the server is built,
~167k objects it keeps until it stops (modules, functions, classes, the stores' and the API's
objects) are tracked, and a full collection then costs 41-64 ms of CPU, a pause every request in
flight waits through (measured in process after loading 1 h of node_exporter-like data: five
``gc.collect()`` timed with ``time.thread_time``). CPython runs one whenever the objects that
survived since the last one exceed a quarter of those that survived before, so a server that
slowly accumulates objects meets one now and then. ``settle`` collects once and then freezes
what is left (``gc.freeze``): those objects move to a permanent generation that collections skip,
so later collections walk only what was created since (a full collection right after: under
0.1 ms). Frozen objects are never collected as cycles (reference counting still frees them):
objects made at start-up live as long as the process anyway.

``starting`` turns the collector off while the server imports its modules and opens its stores
(``settle`` turns it back on): the ~250k objects made then are nearly all kept, yet the collector,
triggered every 700 allocations, walked them again and again: ``import clearsight.cli.main,
clearsight.server`` takes 0.81-0.86 s of CPU with the collector on, 0.70-0.72 s off (bytecode
cached; 1.19-1.29 against 1.08-1.15 s when every module is compiled). What start-up makes and
drops in cycles waits for ``settle``'s collection."""

from __future__ import annotations

import gc


def starting() -> None:
    """Turns the cyclic collector off until ``settle``."""
    gc.disable()


def settle() -> int:
    """Collects, then freezes every object still tracked, and turns the collector on (again);
    returns how many objects are frozen now."""
    gc.collect()
    gc.freeze()
    gc.enable()
    return gc.get_freeze_count()


__all__ = ["settle", "starting"]
