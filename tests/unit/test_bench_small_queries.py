"""``bench/small_queries.py``'s verdict on issue 7 point 2's targets (printed by ``bench/ci.py`` in
every CI run): every query at or below 1.0x Prometheus' median latency, the geometric mean at or
below 0.6x, and at least 0.5x its requests/s at every client count."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.support.bench_module import load


@pytest.fixture(scope="module")
def sq() -> ModuleType:
    return load("small_queries")


def test_met_only_when_every_target_holds(sq: ModuleType) -> None:
    assert sq.target_verdict([0.4, 0.5, 1.0], [0.5, 2.0]).endswith(": met")  # geomean 0.585x
    assert sq.target_verdict([0.3, 0.3, 1.01], [2.0, 2.0]).endswith("not met")  # one query over 1.0x
    assert sq.target_verdict([0.7, 0.7, 0.7], [2.0, 2.0]).endswith("not met")  # geomean 0.7x
    assert sq.target_verdict([0.4, 0.4], [2.0, 0.49]).endswith("not met")  # throughput under 0.5x


def test_the_verdict_names_its_figures(sq: ModuleType) -> None:
    line = sq.target_verdict([0.25, 1.0], [0.8, 1.6])
    assert "worst 1.00x" in line and "geomean 0.50x" in line and "throughput 0.80x" in line
