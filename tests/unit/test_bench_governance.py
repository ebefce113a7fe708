"""``bench/governance.py``'s verdict (issue 8 point 3: remote-write p99 with 20 heavy queries
within 2x of idle): the pooled ratio and the median of the rounds' ratios must both be within
the target, so interleaved rounds make the reading steadier but never easier; and its CPU
accounting from ``/proc``."""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from tests.support.bench_module import load


@pytest.fixture(scope="module")
def gov() -> ModuleType:
    return load("governance")


def test_pooled_and_per_round_ratios(gov: ModuleType) -> None:
    base = [float(x) for x in range(1, 101)]  # p99 of 100 samples: the 99th smallest
    idle = [base, base]
    loaded = [[2 * x for x in base], [3 * x for x in base]]
    pooled, per_round = gov.p99_ratios(idle, loaded)
    assert per_round == [pytest.approx(99 * 2 / 99), pytest.approx(99 * 3 / 99)]
    # pooled: the 198th smallest of 200 samples, 99 idle and 294 (3 x 98) loaded
    assert pooled == pytest.approx(294 / 99)


def test_verdict_needs_both_the_pooled_ratio_and_the_median_within_target(gov: ModuleType) -> None:
    assert gov.verdict(1.9, [1.5, 1.8, 2.0]) == "met"
    assert gov.verdict(2.1, [1.5, 1.8, 2.0]) == "not met"  # pooled over the target
    assert gov.verdict(1.9, [2.5, 2.4, 1.0]) == "not met"  # median over the target
    assert gov.verdict(2.0, [2.0]) == "met"  # "within" includes the target itself


def test_verdict_refuses_a_machine_busy_elsewhere(gov: ModuleType) -> None:
    assert gov.verdict(1.2, [1.1, 1.3], busy_elsewhere=1.8).startswith("not measured")
    assert gov.verdict(1.2, [1.1, 1.3], busy_elsewhere=0.4) == "met"
    assert gov.verdict(2.5, [2.5], busy_elsewhere=0.4) == "not met"


def test_ratios_refuse_rounds_that_do_not_pair(gov: ModuleType) -> None:
    with pytest.raises(ValueError):
        gov.p99_ratios([[1.0]], [[1.0], [2.0]])


def test_cpu_use_counts_this_process(gov: ModuleType) -> None:
    use = gov.CpuUse(os.getpid())
    assert use.describe() == "n/a (no /proc)"  # nothing measured yet
    assert use.elsewhere() is None
    use.start()
    t0 = os.times()
    while os.times().user - t0.user < 0.3:  # burn some CPU in this process
        sum(range(10_000))
    use.stop()
    assert use.wall > 0
    assert use.process > 0
    assert use.machine > 0
    elsewhere = use.elsewhere()
    assert elsewhere is not None and elsewhere == pytest.approx((use.machine - use.process) / use.wall)
    assert use.describe().startswith(f"{use.machine / use.wall:.2f} cores busy: server ")
