"""Per-sample seeds: a sample's random draws depend on the run seed and its index only.

Kept in a module of its own, below both the simulators and the MoP implementation, so
that neither has to import the other for it.
"""

from __future__ import annotations


def sample_seed(run_seed: int, index: int) -> int:
    """The per-sample seed: a function of the run seed and the sample index only."""
    return (run_seed * 1_000_003 + index * 7_919 + 12_345) % (2**31 - 1)
