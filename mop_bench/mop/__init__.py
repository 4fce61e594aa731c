"""The one Mixture-of-Personas implementation; every MoP-based simulator configures it."""

from mop_bench.mop.simulator import MoPSimulator

__all__ = ["MoPSimulator"]
