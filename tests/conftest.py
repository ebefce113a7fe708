"""Shared by the whole suite: assertion rewriting for the store contract tests, registered before any test
module imports them (a module of another directory importing the workload first made it a collection error),
and Hypothesis without its per-example deadline: a deadline is a timing assertion, and on a loaded 2-core
CI machine an example taking 274 ms once (200 ms allowed) failed a property that held
(tests/unit/notify/test_recurring.py). A test that sets its own ``deadline`` keeps it.

Modules marked ``clock_bound`` run first: their parameters hold times taken when the module is
imported (at collection), and their servers answer differently once those times are old (the fast
lane evaluates inline only queries at most 15 minutes old). On a slow machine the suite reached
tests/integration/test_fast_lane.py 30 minutes after collection, and its lane counts failed."""

import pytest
from hypothesis import settings

pytest.register_assert_rewrite("clearsight.store.storetest")

settings.register_profile("clearsight", deadline=None)
settings.load_profile("clearsight")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``clock_bound`` tests first, the order otherwise kept (every xdist worker sorts alike)."""
    items.sort(key=lambda item: item.get_closest_marker("clock_bound") is None)
