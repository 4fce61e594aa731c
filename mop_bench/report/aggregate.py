"""Grouping runs into comparable sets and summarising them per simulator over seeds."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mop_bench.report.load import RunData, key_diff, key_id
from mop_bench.report.stats import Interval, mean_interval, rank_with_ties

METRIC_LABELS = {
    "fid": "FID",
    "mauve": "MAUVE",
    "kl_cosine": "KL-cosine",
    "downstream_f1": "downstream F1",
    "label_fidelity": "label fidelity",
    "copy_rate": "copy rate",
    "format": "format failures",
    "heldout_nll": "held-out NLL (nats/token)",
}
#: Metric sets, each rendered as its own block of tables.
METRIC_SETS: list[tuple[str, tuple[str, ...]]] = [
    ("Distribution match (the paper's Table 1 metrics)", ("fid", "mauve", "kl_cosine")),
    # Right after FID and co.: a broken prompt (echoed headers, assistant replies, empty
    # texts) moves them like any other difference, and must be read next to them.
    (
        "Format (share of texts that echo the prompt, reply as an assistant, or are empty)",
        ("format",),
    ),
    ("Held-out likelihood (what the fit optimises; deterministic)", ("heldout_nll",)),
    ("Downstream use and faithfulness", ("downstream_f1", "label_fidelity", "copy_rate")),
]
#: Cost columns (run timing totals, see store.timing_totals), mean per seed.
COST_FIELDS = {
    "simulate_seconds": "simulate s (fit + generation)",
    "prepare_seconds": "of which fit + personas s",
    "embed_and_score_seconds": "embed + score s",
    "lm_generate_tokens": "LM tokens generated",
    "lm_score_tokens": "LM tokens scored",
}
#: Results that are breakdowns, not one comparable number.
NOT_RANKED = {"per_label"}


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name.replace("_", " "))


def metric_order(names: set[str] | list[str]) -> list[str]:
    known = [m for _, ms in METRIC_SETS for m in ms]
    return [m for m in known if m in names] + sorted(n for n in names if n not in known)


def metric_sets(names: list[str]) -> list[tuple[str, list[str]]]:
    """The METRIC_SETS restricted to `names`, plus 'Other metrics' for the rest."""
    out = []
    used: set[str] = set()
    for title, ms in METRIC_SETS:
        present = [m for m in ms if m in names]
        used.update(present)
        if present:
            out.append((title, present))
    rest = [m for m in names if m not in used]
    if rest:
        out.append(("Other metrics", rest))
    return out


@dataclass
class Cell:
    """One simulator x metric summary over seeds."""

    values: list[float]
    seeds: list[int]
    interval: Interval | None
    higher_is_better: bool
    spread: float | None = None
    """Mean over runs of the metric's internal seed spread (MAUVE's k-means seeds)."""
    missing: int = 0
    """Runs of this simulator with no value for the metric (failed or not computed)."""
    rank: int | None = None

    @property
    def noise_floor(self) -> float:
        return 0.0 if self.spread is None else self.spread / 2.0


@dataclass
class Group:
    """Mutually comparable runs, summarised per simulator and metric."""

    key: dict[str, Any]
    runs: list[RunData]
    sims: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    calibration: set[str] = field(default_factory=set)

    def seeds(self, sim: str) -> list[int]:
        return sorted({r.seed for r in self.runs if r.sim == sim})

    def runs_of(self, sim: str) -> list[RunData]:
        return sorted((r for r in self.runs if r.sim == sim), key=lambda r: r.seed)

    def sim_spec(self, sim: str) -> dict[str, Any]:
        return self.runs_of(sim)[0].spec["simulator"]

    def calibration_note(self, sim: str) -> str:
        """What a calibration row shows: held-out texts cut to the simulators' token
        budget (the default in comparisons) or at full length."""
        if sim not in self.calibration:
            return ""
        spec = self.runs_of(sim)[0].spec
        if spec["simulator"].get("length_matched", False):
            tokens = spec.get("budget", {}).get("max_new_tokens")
            return f"length-matched to {tokens} tokens"
        return "full-length texts"

    def higher_is_better(self, metric: str) -> bool:
        """The metric's direction (every cell of one metric carries the same vote)."""
        return next(c.higher_is_better for (_, m), c in self.cells.items() if m == metric)

    def shares_rank(self, sim: str, metric: str) -> bool:
        """Whether another simulator holds the same rank on `metric` (shown as "1=")."""
        rank = self.cells[(sim, metric)].rank
        return rank is not None and any(
            s != sim and self.cells[(s, metric)].rank == rank for s in self.sims
        )

    def cost(self, sim: str) -> dict[str, tuple[float, int]]:
        """Per COST_FIELDS key: (mean per seed, number of runs that recorded it)."""
        out = {}
        for name in COST_FIELDS:
            vals = [r.cost[name] for r in self.runs_of(sim) if name in r.cost]
            if vals:
                out[name] = (statistics.fmean(vals), len(vals))
        return out


def dedupe(runs: list[RunData]) -> tuple[list[RunData], list[tuple[RunData, str]]]:
    """Drop repeated runs (same fingerprint): counting one twice would shrink intervals."""
    seen: dict[str, RunData] = {}
    dropped: list[tuple[RunData, str]] = []
    for run in runs:
        first = seen.get(run.fingerprint)
        if first is not None:
            # Named relative to the results folder: pages never show the machine's paths.
            where = f"{first.path.parent.name}/{first.path.name}"
            dropped.append((run, f"duplicate of {where} (same fingerprint)"))
        else:
            seen[run.fingerprint] = run
    return list(seen.values()), dropped


def group_by_key(runs: list[RunData]) -> list[tuple[dict[str, Any], list[RunData]]]:
    """Runs split by comparable key, largest group first (ties: key text)."""
    groups: dict[str, list[RunData]] = {}
    keys: dict[str, dict[str, Any]] = {}
    for run in runs:
        kid = key_id(run.comparable_key)
        groups.setdefault(kid, []).append(run)
        keys[kid] = run.comparable_key
    order = sorted(groups, key=lambda k: (-len(groups[k]), -len({r.sim for r in groups[k]}), k))
    return [(keys[k], groups[k]) for k in order]


def split_majority(runs: list[RunData]) -> tuple[list[RunData], list[tuple[RunData, str]]]:
    """Keep the runs sharing the most common comparable key; the rest, with reasons."""
    groups = group_by_key(runs)
    if not groups:
        return [], []
    ref_key, kept = groups[0]
    excluded = []
    for key, members in groups[1:]:
        diff = "; ".join(key_diff(key, ref_key)) or "comparable key differs"
        for run in members:
            excluded.append((run, f"not comparable with the majority: {diff}"))
    return kept, excluded


def summarise(key: dict[str, Any], runs: list[RunData], confidence: float = 0.95) -> Group:
    """Per simulator x metric: values over seeds, interval, spread, and tie-aware rank.

    Calibration rows (`real`) get cells but no rank: they bound what a simulator can
    reach, they do not compete.
    """
    group = Group(key=key, runs=runs)
    group.sims = sorted({r.sim for r in runs}, key=lambda s: (s == "real", s))
    group.calibration = {r.sim for r in runs if r.is_calibration}
    names = {m for r in runs for m in r.metrics if m not in NOT_RANKED}
    group.metrics = metric_order(names)
    for metric in group.metrics:
        hib_votes = Counter(
            bool(r.metrics[metric].get("higher_is_better", False))
            for r in runs
            if metric in r.metrics
        )
        hib = hib_votes.most_common(1)[0][0]
        for sim in group.sims:
            members = group.runs_of(sim)
            vals, seeds, spreads = [], [], []
            missing = 0
            for r in members:
                v = r.value(metric)
                if v is None:
                    # A calibration run never computes some metrics (real has no
                    # fitted model, so no heldout_nll): not applicable, not failed.
                    n_a = r.is_calibration and metric not in r.metrics and metric not in r.errors
                    # ...nor does a generator without a likelihood (literature baselines,
                    # outside texts): the run records why, as "not available: ..."
                    n_a = n_a or str(r.errors.get(metric, "")).startswith("not available")
                    missing += 0 if n_a else 1
                    continue
                vals.append(v)
                seeds.append(r.seed)
                s = r.spread(metric)
                if s is not None:
                    spreads.append(s)
            cell = Cell(
                values=vals,
                seeds=seeds,
                interval=mean_interval(vals, confidence) if vals else None,
                higher_is_better=hib,
                spread=statistics.fmean(spreads) if spreads else None,
                missing=missing,
            )
            group.cells[(sim, metric)] = cell
        ranked = {
            s: group.cells[(s, metric)]
            for s in group.sims
            if s not in group.calibration and group.cells[(s, metric)].interval is not None
        }
        ranks = rank_with_ties(
            {s: c.interval for s, c in ranked.items() if c.interval is not None},
            higher_is_better=hib,
            noise_floors={s: c.noise_floor for s, c in ranked.items()},
        )
        for sim, rank in ranks.items():
            group.cells[(sim, metric)].rank = rank
    return group
