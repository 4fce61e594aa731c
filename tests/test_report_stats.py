"""The interval and tie rules the comparison and leaderboard pages rank with."""

from __future__ import annotations

import math

import pytest

from mop_bench.report.stats import compare, mean_interval, rank_with_ties


def test_mean_interval_known_numbers() -> None:
    iv = mean_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(0.975, 2) = 4.302653 -> half-width 4.302653 / sqrt(3)
    assert iv.mean == pytest.approx(2.0)
    assert iv.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    one = mean_interval([0.5])
    assert one.low is None and one.half_width is None and one.n == 1
    with pytest.raises(ValueError, match="non-finite"):
        mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="at least one"):
        mean_interval([])


def test_tie_and_win_rule() -> None:
    a = mean_interval([1.0, 1.1, 0.9])  # half-width ~0.248
    b = mean_interval([1.3, 1.4, 1.2])
    c = mean_interval([3.0, 3.1, 2.9])
    assert compare(a, b, higher_is_better=False) == "tie"  # diff 0.3 < 0.497
    assert compare(a, c, higher_is_better=False) == "win"
    assert compare(a, c, higher_is_better=True) == "loss"
    single_a, single_b = mean_interval([0.80]), mean_interval([0.803])
    assert compare(single_b, single_a, higher_is_better=True) == "win"
    assert compare(single_b, single_a, higher_is_better=True, noise_floor=0.005) == "tie"
    ranks = rank_with_ties({"a": a, "b": b, "c": c}, higher_is_better=False)
    assert ranks == {"a": 1, "b": 1, "c": 3}
