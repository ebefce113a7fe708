import pytest

pytest.register_assert_rewrite("clearsight.store.storetest")
