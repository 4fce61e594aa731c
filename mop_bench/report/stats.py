"""Seed-replicate statistics for reports: mean, 95% t-interval, and the interval tie rule.

A benchmark table that ranks simulators by a mean over a handful of seeds invites
reading noise as progress, so a difference only counts as a win when it is larger than
the uncertainty around it. Comparison pages replace the interval rule with paired tests
where they exist (report/paired.py), and so does the leaderboard; the interval rule
remains for metrics without one and for sweeps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["win", "loss", "tie"]


@dataclass(frozen=True)
class Interval:
    """Mean of replicate values with a two-sided t-interval (None with fewer than 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    confidence: float = 0.95

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean

    @property
    def has_interval(self) -> bool:
        return self.low is not None


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and Student-t interval over replicates (seeds).

    With one value there is no estimate of spread, so no interval is reported rather
    than a misleading zero-width one.
    """
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("mean_interval needs at least one value")
    bad = [v for v in vals if not math.isfinite(v)]
    if bad:
        raise ValueError(f"mean_interval got non-finite values: {bad}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = len(vals)
    mean = math.fsum(vals) / n
    if n < 2:
        return Interval(mean=mean, low=None, high=None, n=n, confidence=confidence)
    from scipy import stats

    var = math.fsum((v - mean) ** 2 for v in vals) / (n - 1)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * math.sqrt(var / n)
    return Interval(mean=mean, low=mean - half, high=mean + half, n=n, confidence=confidence)


def margin(a: Interval, b: Interval, noise_floor: float = 0.0) -> float:
    """The smallest difference of means that counts as a real difference.

    Intervals that overlap are a tie: the margin is the sum of the half-widths (a
    missing interval contributes nothing), never below `noise_floor` (e.g. half of
    MAUVE's spread over k-means seeds, which exists even with one run seed).
    """
    return max(noise_floor, (a.half_width or 0.0) + (b.half_width or 0.0))


def compare(
    a: Interval, b: Interval, *, higher_is_better: bool, noise_floor: float = 0.0
) -> Verdict:
    """Does `a` beat `b`? 'tie' when the difference is within `margin(a, b)`."""
    diff = a.mean - b.mean if higher_is_better else b.mean - a.mean
    if abs(diff) <= margin(a, b, noise_floor):
        return "tie"
    return "win" if diff > 0 else "loss"


def rank_with_ties(
    intervals: Mapping[str, Interval],
    *,
    higher_is_better: bool,
    noise_floors: Mapping[str, float] | None = None,
) -> dict[str, int]:
    """Rank = 1 + the number of entries that beat this one under `compare`.

    Entries that tie share a rank, and an entry is never placed below another it was
    not shown to lose to. (The noise floor of a pair is the larger of the two.)
    """
    floors = noise_floors or {}
    ranks: dict[str, int] = {}
    for name, iv in intervals.items():
        beaten_by = 0
        for other, ov in intervals.items():
            if other == name:
                continue
            floor = max(floors.get(name, 0.0), floors.get(other, 0.0))
            if compare(ov, iv, higher_is_better=higher_is_better, noise_floor=floor) == "win":
                beaten_by += 1
        ranks[name] = 1 + beaten_by
    return ranks


#: How sweeps rank (their points are different settings, not one paired design).
INTERVAL_RULE = (
    "Each cell is the mean over run seeds with a 95% Student-t interval. Two simulators "
    "tie when their intervals overlap, i.e. when the difference of means is not larger "
    "than the sum of the two half-widths; for MAUVE the margin is never smaller than half "
    "of the spread over k-means seeds. A simulator's rank is 1 + the number of simulators "
    "that beat it, so tied simulators share a rank. With a single seed there is no "
    "interval: the value is shown, and only MAUVE's k-means spread can make a tie."
)

#: How comparison, ablation and leaderboard pages rank (report/paired.py, docs/report.md).
TIE_RULE = (
    "Each cell is the mean over run seeds with a 95% Student-t interval, as a description. "
    "Ranks on FID, MAUVE, KL-cosine and held-out NLL come from paired tests: for every "
    "pair of simulators the difference is bootstrapped within each seed (one resample of "
    "the sample indices both share and one of the golden set), pooled over seeds, tested "
    "two-sided with the bootstrap standard error, and Holm-corrected over the pairs of "
    "the metric at α = 0.05. A simulator's rank is 1 + the number of simulators that beat "
    "it in those tests, so simulators not shown to differ share a rank. Metrics without a "
    "paired test (downstream F1, label fidelity, copy rate) rank by interval overlap: two "
    "simulators tie there when their intervals overlap."
)
