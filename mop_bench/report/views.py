"""Template-ready views shared by the comparison, ablation and leaderboard pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mop_bench import reference
from mop_bench.report.aggregate import COST_FIELDS, Group, metric_label, metric_sets
from mop_bench.report.load import REPORT
from mop_bench.report.render import fmt_interval, relative_link


def reference_view(
    task: str, highlight: str | None = None, ablation: bool = False
) -> dict[str, Any]:
    """The paper's rows for `task` (Table 1, Table 2 and, for AGNews or ablations, Table 4)."""
    rows = reference.table1_rows(task)
    col = reference.paper_task(task)
    metrics = list(reference.PAPER_METRICS)
    return {
        "paper_task": col or task,
        "table1": rows,
        "table4": reference.ablation_rows() if (ablation or col == "AGNews") else [],
        "f1": reference.downstream_f1(task),
        "order": {m: reference.ordering(rows, m) for m in metrics} if rows else {},
        "gap": {m: reference.paper_gap(task, m) for m in metrics},
        "highlight": highlight,
        "note": reference.NOTE,
        "citation": reference.CITATION,
    }


def group_view(
    group: Group,
    page_dir: Path,
    *,
    plots: bool = True,
    metric_plots: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Rows (one per simulator) with interval text, spread, rank and report links.

    `metric_plots` replaces a metric's dot-and-interval plot (comparison pages pass the
    paired-difference plots of report/diff_plots.py for the paired metrics)."""
    rows = []
    for sim in by_rank(group):
        cells: dict[str, dict[str, Any] | None] = {}
        for m in group.metrics:
            c = group.cells.get((sim, m))
            if c is None or c.interval is None:
                failed = c is not None and c.missing > 0
                cells[m] = _failed_cell(c.missing) if c is not None and failed else None
                continue
            cells[m] = {
                "text": fmt_interval(c.interval),
                "spread": c.spread,
                "missing": c.missing,
                "rank": c.rank,
                "tied": group.shares_rank(sim, m),
            }
        links = [
            {"seed": r.seed, "href": relative_link(r.path / REPORT, page_dir)}
            for r in group.runs_of(sim)
        ]
        rows.append(
            {
                "sim": sim,
                "seeds": group.seeds(sim),
                "cells": cells,
                "links": links,
                "calibration": sim in group.calibration,
                "calibration_note": group.calibration_note(sim),
                "paper": reference.paper_method_for(group.sim_spec(sim)),
            }
        )
    hib = {m: group.higher_is_better(m) for m in group.metrics}
    view = {
        "sets": metric_sets(group.metrics),
        "labels": {m: metric_label(m) for m in group.metrics},
        "hib": hib,
        "rows": rows,
        "plots": [],
    }
    if plots:
        view["plots"] = _metric_plots(group, hib, metric_plots or {})
    return view


def cost_view(group: Group) -> dict[str, Any]:
    """Mean work per seed for each simulator (same row order as group_view)."""
    rows = []
    for sim in by_rank(group):
        cost, n_runs = group.cost(sim), len(group.runs_of(sim))
        cells = {}
        for name in COST_FIELDS:
            if name not in cost:
                cells[name] = "—"
                continue
            mean, count = cost[name]
            text = f"{mean:,.1f}" if abs(mean) < 100 else f"{mean:,.0f}"
            cells[name] = text if count == n_runs else f"{text} ({count} of {n_runs} seeds)"
        rows.append({"sim": sim, "calibration": sim in group.calibration, "cells": cells})
    return {"labels": COST_FIELDS, "rows": rows}


def _metric_plots(
    group: Group, hib: dict[str, bool], replaced: dict[str, dict[str, str]]
) -> list[dict[str, str]]:
    from mop_bench.report import plots

    out = []
    for m in group.metrics:
        if m in replaced:
            out.append(replaced[m])
            continue
        sims = [s for s in group.sims if group.cells[(s, m)].interval is not None]
        if not sims:
            continue
        ivs = [group.cells[(s, m)].interval for s in sims]
        uri = plots.interval_plot(
            [
                (
                    metric_label(m),
                    sims,
                    [iv.mean for iv in ivs],
                    [iv.low for iv in ivs],
                    [iv.high for iv in ivs],
                )
            ],
            xlabel="simulator",
            ylabel=f"{metric_label(m)} ({'higher' if hib[m] else 'lower'} is better)",
            categorical=True,
        )
        out.append(
            {
                "uri": uri,
                "caption": f"{metric_label(m)}: mean and 95% t-interval over seeds (hollow: one "
                "seed, no interval); no paired test, so ranks follow these intervals' overlap",
            }
        )
    return out


def by_rank(group: Group) -> list[str]:
    """Simulators best first by the first metric (rank, then mean); calibration last."""
    if not group.metrics:
        return list(group.sims)
    first = group.metrics[0]

    def key(sim: str) -> tuple[bool, int, float, str]:
        c = group.cells[(sim, first)]
        mean = c.interval.mean if c.interval else float("inf")
        signed = -mean if c.higher_is_better and c.interval else mean
        return (sim in group.calibration, c.rank if c.rank is not None else 10**6, signed, sim)

    return sorted(group.sims, key=key)


def _failed_cell(missing: int) -> dict[str, Any]:
    return {
        "text": "failed / missing",
        "spread": None,
        "missing": missing,
        "rank": None,
        "tied": False,
    }


def key_rows(key: dict[str, Any]) -> list[tuple[str, Any]]:
    from mop_bench.report.render import flatten, show

    return [(k, show(v)) for k, v in flatten(key)]


def mop_gaps(group: Group) -> dict[str, float | None]:
    """Our relative gap of `mop`-equivalent runs vs the best non-MoP, non-calibration
    simulator per paper metric (None when either side is missing)."""
    mop = [s for s in group.sims if reference.paper_method_for(group.sim_spec(s)) == "MoP"]
    out: dict[str, float | None] = {}
    for m, hib in reference.PAPER_METRICS.items():
        out[m] = None
        if not mop or m not in group.metrics:
            continue
        mine = group.cells[(mop[0], m)].interval
        others = [
            group.cells[(s, m)].interval
            for s in group.sims
            if s not in mop and s not in group.calibration and group.cells[(s, m)].interval
        ]
        if mine is None or not others:
            continue
        best = max(iv.mean for iv in others) if hib else min(iv.mean for iv in others)
        if best != 0:
            out[m] = reference.relative_gap(mine.mean, best)
    return out
