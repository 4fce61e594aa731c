"""HTML reports: one run, a comparison, a sweep, an ablation, and the leaderboard.

Rendering only: these read run directories and write HTML/CSV/JSON next to them; they
never generate or score. Every page is one self-contained, offline HTML file.
"""

from __future__ import annotations

from mop_bench.report.comparison import render_ablation, render_comparison
from mop_bench.report.leaderboard import build_leaderboard
from mop_bench.report.run import render_run
from mop_bench.report.sweep import render_sweep

__all__ = [
    "build_leaderboard",
    "render_ablation",
    "render_comparison",
    "render_run",
    "render_sweep",
]
