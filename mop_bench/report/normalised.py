"""A normalised score beside the raw metrics: 0 = a named zero-shot floor, 100 = `real`.

Raw FID or KL-cosine values mean little across tasks, encoders and sample sizes; what a
reader wants is how much of the way from a zero-shot simulator to real data a simulator
goes (as SimBench and OpinionQA report). Per metric and simulator x:

    score = 100 * (floor - x) / (floor - real)

which is 0 for the floor, 100 for the calibration row, and sign-correct for both
directions (a lower FID and a higher MAUVE both raise it; worse than the floor is
negative, better than real above 100). Over seeds the score is a ratio of means over the
seeds where floor, real and x all have a value: 100 * mean(F - X) / mean(F - R).

Interval: the paired bootstrap draws of report/paired.py (one resample of sample
indices and one of the golden set per seed, shared by every simulator of that seed)
give a draw of the score each; SE = their standard deviation and the interval is
score ± z SE, the normal-approximation rule the paired tests use (docs/report.md:
resampling biases FID and KL-cosine, so only the draws' spread is used, not their
centre). The `format` share is not normalised: floor and real both sit near 0, so the
ratio is noise.

Nothing is defaulted: without the floor or `real` in the group, or where real has no
value (held-out NLL: real has no fitted model), or where floor == real, the score is
absent or None with the reason stated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mop_bench.report.aggregate import Group, metric_label
from mop_bench.report.load import RunData
from mop_bench.report.paired import PairedAnalysis

#: The zero-shot prompt with one fitted temperature: what any simulator should beat.
DEFAULT_FLOOR = "temperature-only"
#: The calibration row (held-out real texts): the best a simulator could score.
CEILING = "real"
#: Metrics given a normalised score, in table order (held-out NLL is stated out).
# `format` is not normalised: the floor and real both fail on about 0-1% of texts, so a
# ratio of their difference is noise (-200 for one failing text in 300).
NORM_METRICS = ("fid", "mauve", "kl_cosine", "heldout_nll")
#: Columns the normalised score appends to summary.csv / leaderboard.csv (per row).
NORM_COLUMNS = ["norm", "norm_lo", "norm_hi", "norm_floor", "norm_note"]


@dataclass(frozen=True)
class NormCell:
    """One simulator's normalised score on one metric."""

    score: float | None
    """None with `note` saying why (never a default)."""
    low: float | None = None
    high: float | None = None
    seeds: tuple[int, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Normalised:
    """Normalised scores of a group: per (simulator, metric), with reasons where none."""

    floor: str
    ceiling: str
    metrics: tuple[str, ...] = ()
    """Metrics with a column (a column may still be None where floor == real)."""
    cells: Mapping[tuple[str, str], NormCell] = field(default_factory=dict)
    reasons: Mapping[str, str] = field(default_factory=dict)
    """Per metric of NORM_METRICS without a usable score: why."""
    reason: str = ""
    """Why the group has no normalised score at all ("" when it has one)."""
    z: float = 1.96

    @property
    def available(self) -> bool:
        return not self.reason

    def cell(self, sim: str, metric: str) -> NormCell | None:
        return self.cells.get((sim, metric))

    def method(self) -> str:
        return (
            f"Normalised score: 0 = {self.floor} (the floor), 100 = {self.ceiling} (the "
            f"calibration row); 100 × (floor − x) / (floor − real), the same for ↓ and ↑ "
            f"metrics, over the seeds where all three have a value. 95% interval: score ± "
            f"{self.z:.2f} × the SE of the paired bootstrap draws (the paired tests' "
            f"resamples). Below 0: worse than the floor; above 100: closer than real data."
        )


def needs_draws(group: Group, floor: str) -> tuple[str, ...]:
    """Calibration simulators whose bootstrap draws the normalised score needs."""
    ok = floor in group.sims and CEILING in group.sims and CEILING in group.calibration
    return (CEILING,) if ok else ()


def normalise(group: Group, analysis: PairedAnalysis, floor: str = DEFAULT_FLOOR) -> Normalised:
    """The normalised score of every simulator of `group` (see the module docstring).

    `analysis` must come from `analyse(..., also=needs_draws(group, floor))` for the
    intervals; without draws the scores stand without an interval, and say so.
    """
    from scipy.stats import norm

    z = float(norm.ppf(1.0 - analysis.settings.alpha / 2.0))
    why = _missing(group, floor)
    if why:
        return Normalised(floor, CEILING, reason=why, z=z)
    metrics: list[str] = []
    cells: dict[tuple[str, str], NormCell] = {}
    reasons: dict[str, str] = {}
    for m in NORM_METRICS:
        if m not in group.metrics:
            continue
        if not group.cells[(CEILING, m)].values:
            reasons[m] = (
                f"{CEILING} has no held-out NLL (no fitted model to score held-out texts "
                "with), so there is no 100 to map to"
                if m == "heldout_nll"
                else f"{CEILING} has no {metric_label(m)}"
            )
            continue
        if not group.cells[(floor, m)].values:
            reasons[m] = f"the floor {floor} has no {metric_label(m)}"
            continue
        metrics.append(m)
        level = _level_reason(group, floor, m)
        if level:
            reasons[m] = level
        for sim in group.sims:
            cells[(sim, m)] = (
                NormCell(None, note=level) if level else _cell(group, analysis, floor, sim, m, z)
            )
    return Normalised(floor, CEILING, tuple(metrics), cells, reasons, z=z)


def _missing(group: Group, floor: str) -> str:
    if floor not in group.sims:
        return (
            f"no normalised score: the floor {floor!r} is not among this group's simulators "
            f"({', '.join(group.sims)}); choose one with --floor"
        )
    if floor in group.calibration:
        return f"no normalised score: the floor {floor!r} is a calibration row"
    if CEILING not in group.sims or CEILING not in group.calibration:
        return f"no normalised score: the calibration row {CEILING!r} is not in this group"
    return ""


def _level_reason(group: Group, floor: str, metric: str) -> str:
    common = set(group.cells[(floor, metric)].seeds) & set(group.cells[(CEILING, metric)].seeds)
    if not common:
        return f"the floor and {CEILING} share no seed with a {metric_label(metric)} value"
    gap = np.mean(
        [_value(group, floor, s, metric) - _value(group, CEILING, s, metric) for s in common]
    )
    if gap == 0:
        return f"the floor {floor} equals {CEILING} on {metric_label(metric)}: no scale"
    return ""


def _run(group: Group, sim: str, seed: int) -> RunData | None:
    return next((r for r in group.runs_of(sim) if r.seed == seed), None)


def _value(group: Group, sim: str, seed: int, metric: str) -> float:
    run = _run(group, sim, seed)
    value = None if run is None else run.value(metric)
    assert value is not None, (sim, seed, metric)  # callers pass seeds with a value
    return value


def _cell(
    group: Group, analysis: PairedAnalysis, floor: str, sim: str, metric: str, z: float
) -> NormCell:
    seeds = sorted(
        set(group.cells[(sim, metric)].seeds)
        & set(group.cells[(floor, metric)].seeds)
        & set(group.cells[(CEILING, metric)].seeds)
    )
    if not seeds:
        return NormCell(
            None, note=f"{sim} has no {metric_label(metric)} on a seed of the floor and {CEILING}"
        )
    f = np.array([_value(group, floor, s, metric) for s in seeds])
    r = np.array([_value(group, CEILING, s, metric) for s in seeds])
    x = np.array([_value(group, sim, s, metric) for s in seeds])
    if (f - r).mean() == 0:
        return NormCell(None, seeds=tuple(seeds), note=f"floor equals {CEILING} on these seeds")
    # + 0.0: the floor's own 0 divided by a negative gap (↑ metrics) would print "-0.0".
    # The ratio first: 100 * a / a can round off 100, (a / a) * 100 cannot.
    score = float(100.0 * ((f - x).mean() / (f - r).mean())) + 0.0
    draws, why = _score_draws(group, analysis, floor, sim, metric, seeds)
    if draws is None:
        return NormCell(score, seeds=tuple(seeds), note=why)
    se = float(draws.std(ddof=1))
    return NormCell(score, score - z * se + 0.0, score + z * se + 0.0, tuple(seeds))


def _score_draws(
    group: Group, analysis: PairedAnalysis, floor: str, sim: str, metric: str, seeds: list[int]
) -> tuple[np.ndarray | None, str]:
    """Draws of the score from the per-seed draws of floor, real and `sim`."""
    per: dict[str, list[np.ndarray]] = {floor: [], CEILING: [], sim: []}
    for s in seeds:
        for who in per:
            d = _draws(group, analysis, who, s, metric)
            if d is None:
                return None, f"no bootstrap draws for {who} (seed {s}): no interval"
            per[who].append(d)
    f, r, x = (np.mean(per[who], axis=0) for who in (floor, CEILING, sim))
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = 100.0 * ((f - x) / (f - r))
    if not np.isfinite(draws).all():
        return None, f"a bootstrap draw put the floor level with {CEILING}: no interval"
    return draws, ""


def _draws(
    group: Group, analysis: PairedAnalysis, sim: str, seed: int, metric: str
) -> np.ndarray | None:
    return analysis.draws.get((sim, seed), {}).get(metric)


# ----------------------------------------------------------------------------- views


def fmt_norm(cell: NormCell | None) -> str:
    """'57.2 [41.0, 73.4]', or '—' (the reason is in the note)."""
    if cell is None or cell.score is None:
        return "—"
    if cell.low is None or cell.high is None:
        return f"{cell.score:.1f}"
    return f"{cell.score:.1f} [{cell.low:.1f}, {cell.high:.1f}]"


def norm_fields(norm: Normalised | None, sim: str, metric: str) -> dict[str, Any]:
    """The NORM_COLUMNS of one simulator x metric record (None where no score, and why)."""
    if norm is None:
        return dict.fromkeys(NORM_COLUMNS)
    cell = norm.cell(sim, metric)
    if not norm.available:
        note = norm.reason
    elif metric not in NORM_METRICS:
        note = f"not normalised (only {', '.join(metric_label(m) for m in NORM_METRICS)})"
    elif cell is None:
        note = norm.reasons.get(metric, "")
    else:
        note = cell.note or None
    return {
        "norm": None if cell is None else cell.score,
        "norm_lo": None if cell is None else cell.low,
        "norm_hi": None if cell is None else cell.high,
        "norm_floor": norm.floor,
        "norm_note": note or None,
    }


def norm_view(norm: Normalised, order: list[str]) -> dict[str, Any]:
    """Template-ready: one row per simulator in `order`, one cell per normalised metric."""
    rows = []
    for sim in order:
        cells = {}
        for m in norm.metrics:
            c = norm.cell(sim, m)
            cells[m] = {"text": fmt_norm(c), "note": c.note if c else ""}
        rows.append({"sim": sim, "cells": cells})
    return {
        "available": norm.available,
        "floor": norm.floor,
        "ceiling": norm.ceiling,
        "reason": norm.reason,
        "labels": {m: metric_label(m) for m in norm.metrics},
        "rows": rows if norm.metrics else [],
        "reasons": [f"{metric_label(m)}: {why}" for m, why in norm.reasons.items()],
        "method": norm.method(),
    }


def norm_markdown(norm: Normalised, order: list[str]) -> str:
    """The normalised scores as a small Markdown table (or the reason there is none)."""
    head = f"## Normalised score (0 = {norm.floor}, 100 = {norm.ceiling})"
    if not norm.available:
        return f"{head}\n\n{norm.reason}.\n"
    lines = [head, "", norm.method(), ""]
    if norm.metrics:
        cols = ["simulator", *(metric_label(m) for m in norm.metrics)]
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for sim in order:
            cells = [fmt_norm(norm.cell(sim, m)) for m in norm.metrics]
            lines.append("| " + " | ".join([sim, *cells]) + " |")
        lines.append("")
        for m in norm.metrics:
            if m in norm.reasons:
                continue
            notes: dict[str, list[str]] = {}
            for sim in order:
                c = norm.cell(sim, m)
                if c is not None and c.note:
                    notes.setdefault(c.note, []).append(sim)
            lines += [f"{metric_label(m)}: {why} ({', '.join(ss)})." for why, ss in notes.items()]
    lines += [f"Not normalised: {metric_label(m)}: {why}." for m, why in norm.reasons.items()]
    return "\n".join(lines) + "\n"
