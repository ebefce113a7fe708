"""The native-histogram contract checks (store/storetest/contract_histograms.py) against the embedded
store, with samples in the head and with compaction after every commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearsight.store.storetest.contract import Check
from clearsight.store.storetest.contract_histograms import HISTOGRAM_CHECKS
from tests.unit.store.test_contract_embedded import FACTORIES


@pytest.mark.parametrize("factory", list(FACTORIES), ids=list(FACTORIES))
@pytest.mark.parametrize("check", HISTOGRAM_CHECKS, ids=lambda c: c.__name__)
def test_histogram_contract(check: Check, factory: str, tmp_path: Path) -> None:
    check(FACTORIES[factory], tmp_path)
