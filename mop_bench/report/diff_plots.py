"""Comparison plots of paired differences against one reference simulator.

Dots with per-simulator t-intervals over a few seeds overlap where the paired tests
find clear differences (the noise shared by two simulators of one seed cancels in
their difference, not in their separate intervals): temperature-only 0.409 ± 0.004 and
persona-only 0.441 ± 0.058 looked tied and ranked 1 and 2. These plots show what the
tests test instead: each simulator's difference from a reference simulator, with the
very interval the paired table prints (report/paired.py's `DiffTest`, not recomputed),
and the Holm-corrected verdict as the marker. The tests' Holm-adjusted p is never
below the unadjusted one, so an interval that covers 0 is always a tie; an interval
that clears 0 with a hollow marker is a difference the correction does not confirm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mop_bench.report.aggregate import Group, metric_label
from mop_bench.report.paired import PairedAnalysis

#: The reference when comparison.json names none and it is present.
DEFAULT_REFERENCE = "mop"


@dataclass(frozen=True)
class DiffRow:
    """One simulator's paired difference from the reference: simulator − reference."""

    sim: str
    difference: float | None
    low: float | None
    high: float | None
    verdict: str
    """'better' or 'worse' (than the reference, Holm-corrected), 'tie', 'not tested'."""
    p_holm: float | None = None
    note: str = ""


def candidates(group: Group, order: list[str]) -> list[str]:
    """Simulators a reference can be: the paired ones (never a calibration row)."""
    return [s for s in order if s in group.sims and s not in group.calibration]


def choose_reference(
    group: Group, order: list[str], requested: str | None, recorded: Any = None
) -> tuple[str | None, str]:
    """(reference, note). `requested` (a caller's or the command line's choice) must be
    one of `candidates`; `recorded` (comparison.json's "reference") falls back with a
    note when it is not; by default `mop`, else the first simulator in `order`."""
    names = candidates(group, order)
    if not names:
        return None, "no simulator besides the calibration row"
    if requested is not None:
        if requested not in names:
            raise ValueError(
                f"plot reference {requested!r} is not a paired simulator of this comparison "
                f"(choose from: {', '.join(names)})"
            )
        return requested, ""
    note = ""
    if recorded is not None:
        if str(recorded) in names:
            return str(recorded), ""
        note = (
            f"comparison.json names {str(recorded)!r} as the plots' reference, but it is not a "
            "paired simulator here; "
        )
    ref = DEFAULT_REFERENCE if DEFAULT_REFERENCE in names else names[0]
    return ref, note + (f"{ref} is the default reference" if note else "")


def rows_vs(analysis: PairedAnalysis, metric: str, ref: str, order: list[str]) -> list[DiffRow]:
    """Each other simulator's pair with `ref`, oriented as simulator − reference."""
    out: dict[str, DiffRow] = {}
    for r in analysis.pairs.get(metric, []):
        if ref not in (r.a, r.b):
            continue
        other = r.b if r.a == ref else r.a
        t = r.test
        if t is None:
            out[other] = DiffRow(other, None, None, None, "not tested", note=r.note)
            continue
        # PairResult's difference is a − b: flip it where the reference is `a`.
        sign = 1.0 if r.a == other else -1.0
        low, high = sorted((sign * t.ci_low, sign * t.ci_high))
        verdict = "tie" if r.better is None else ("better" if r.better == other else "worse")
        out[other] = DiffRow(other, sign * t.difference + 0.0, low, high, verdict, r.p_holm, r.note)
    return [out[s] for s in order if s in out]


def difference_plots(
    group: Group, analysis: PairedAnalysis, ref: str | None, order: list[str]
) -> dict[str, dict[str, str]]:
    """Per paired metric: {"uri", "caption"} of its difference plot against `ref`."""
    from mop_bench.report import plots

    if ref is None:
        return {}
    out = {}
    for m in analysis.metrics:
        rows = rows_vs(analysis, m, ref, order)
        if not rows:
            continue
        label = metric_label(m)
        n_pairs = len(analysis.pairs[m])
        uri = plots.difference_plot(
            [(r.sim, r.difference, r.low, r.high, r.verdict) for r in rows],
            metric=label,
            reference=ref,
            higher_is_better=group.higher_is_better(m),
        )
        out[m] = {
            "uri": uri,
            "caption": (
                f"{label}: each simulator's paired difference from {ref}, with the 95% "
                "interval the paired table prints. Filled: the Holm-corrected test finds a "
                f"difference (over the {n_pairs} pair{'s' * (n_pairs != 1)} of this metric); "
                "hollow: tie."
            ),
        }
    return out
