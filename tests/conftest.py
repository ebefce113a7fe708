"""Shared by the whole suite: assertion rewriting for the store contract tests, registered before any test
module imports them (a module of another directory importing the workload first made it a collection error)."""

import pytest

pytest.register_assert_rewrite("clearsight.store.storetest")
