"""Shared by the whole suite: assertion rewriting for the store contract tests, registered before any test
module imports them (a module of another directory importing the workload first made it a collection error),
and Hypothesis without its per-example deadline: a deadline is a timing assertion, and on a loaded 2-core
CI machine an example taking 274 ms once (200 ms allowed) failed a property that held
(tests/unit/notify/test_recurring.py). A test that sets its own ``deadline`` keeps it."""

import pytest
from hypothesis import settings

pytest.register_assert_rewrite("clearsight.store.storetest")

settings.register_profile("clearsight", deadline=None)
settings.load_profile("clearsight")
