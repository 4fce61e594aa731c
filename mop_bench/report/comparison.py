"""Comparison and ablation pages: simulators side by side over seeds, ties honest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mop_bench import reference
from mop_bench.report.aggregate import Group, dedupe, metric_label, split_majority, summarise
from mop_bench.report.bootstrap import BootstrapSettings
from mop_bench.report.diff_plots import choose_reference, difference_plots
from mop_bench.report.export import (
    COLUMNS,
    group_key_id,
    group_records,
    markdown_table,
    write_tables,
)
from mop_bench.report.headline import Headline, facts, nav, results_root, verdicts
from mop_bench.report.load import REPORT, RunData, load_run, read_json_file, resolve_run_paths
from mop_bench.report.normalised import (
    DEFAULT_FLOOR,
    NORM_COLUMNS,
    needs_draws,
    norm_markdown,
    norm_view,
    normalise,
)
from mop_bench.report.paired import CACHE_DIR, PairedAnalysis, analyse, apply_ranks
from mop_bench.report.paired_view import (
    PAIRED_COLUMNS,
    SIGN,
    method_text,
    paired_markdown,
    paired_records,
    paired_tables,
)
from mop_bench.report.render import fmt_interval, relative_link, render_page
from mop_bench.report.stats import TIE_RULE
from mop_bench.report.views import (
    by_rank,
    cost_view,
    group_view,
    key_rows,
    mop_gaps,
    reference_view,
)

#: Stem of the comparison's exports: summary.csv, summary.json, summary.md.
SUMMARY = "summary"


def load_comparable(
    runs: list[RunData],
) -> tuple[list[RunData], list[tuple[RunData, str]]]:
    """Scored, de-duplicated runs sharing the majority comparable key; the rest with reasons."""
    excluded = [
        (r, "not scored (no metrics.json, or the run failed: see failed.json)")
        for r in runs
        if not r.has_metrics
    ]
    scored, dups = dedupe([r for r in runs if r.has_metrics])
    kept, odd = split_majority(scored)
    return kept, excluded + dups + odd


def render_comparison(
    comp_dir: Path,
    *,
    ablation: bool | None = None,
    render_runs: bool = True,
    bootstrap: BootstrapSettings | None = None,
    floor: str | None = None,
    reference: str | None = None,
) -> Path:
    """Write comparison.html (ablation.html for an ablation) into `comp_dir`.

    `ablation=None` follows comparison.json's "ablation" flag. Each listed run's own
    report is rendered too (unless `render_runs` is False), so the page's links work.
    `bootstrap` sets the paired tests' draws and seed (their draws are cached in
    `comp_dir/paired_cache/`). `floor` names the simulator scored 0 by the normalised
    score (None: comparison.json's "floor", else `temperature-only`). `reference` names
    the simulator the plots show paired differences from (None: comparison.json's
    "reference", else `mop` where present, else the first simulator).
    A comparison made by `compare` (under <results>/comparisons/) also refreshes the
    results folder's index page, which its pages link to.
    """
    comp_dir = Path(comp_dir)
    meta_path = comp_dir / "comparison.json"
    meta = read_json_file(meta_path)
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: expected a JSON object")
    if ablation is None:
        ablation = bool(meta.get("ablation", False))
    paths = resolve_run_paths(comp_dir, list(meta.get("runs") or []), meta_path)
    if not paths:
        raise ValueError(f"{meta_path}: field 'runs' lists no run directories")
    runs = [load_run(p) for p in paths]
    kept, excluded = load_comparable(runs)
    if not kept:
        raise ValueError(f"{meta_path}: none of the listed runs has metrics.json")
    group = summarise(kept[0].comparable_key, kept)
    floor = floor or str(meta.get("floor") or DEFAULT_FLOOR)
    paired = analyse(group, comp_dir / CACHE_DIR, bootstrap, also=needs_draws(group, floor))
    apply_ranks(group, paired)
    norm = normalise(group, paired, floor)
    task = str(meta.get("task") or kept[0].task)
    page = comp_dir / ("ablation.html" if ablation else "comparison.html")
    order = by_rank(group)
    listed = [str(s) for s in meta.get("sims") or []] + group.sims
    ref, ref_note = choose_reference(
        group, list(dict.fromkeys(listed)), reference, meta.get("reference")
    )
    view = group_view(group, comp_dir, metric_plots=difference_plots(group, paired, ref, order))
    records = [{"table": "simulators"} | r for r in group_records(task, 1, group, norm)]
    records += paired_records(task, 1, group_key_id(group), group, paired)
    # New columns go last: readers of the earlier summary.csv keep their positions.
    columns = ["table", *COLUMNS, *PAIRED_COLUMNS, *NORM_COLUMNS]
    write_tables(records, comp_dir / SUMMARY, columns)
    markdown = markdown_table(group, order, TIE_RULE)
    markdown += "\n" + norm_markdown(norm, order)
    if paired.metrics:
        markdown += "\n" + paired_markdown(paired, group)
        markdown += f"\nPlots: paired differences from {ref} (the plots' reference).\n"
    (comp_dir / SUMMARY).with_suffix(".md").write_text(markdown, encoding="utf-8")
    from mop_bench.report.index import render_index

    root = results_root(comp_dir)
    if root is not None:
        render_index(root)  # before the run pages, which link to it
    if render_runs:  # after summary.json: run pages quote its verdicts
        from mop_bench.report.run import render_run

        for run in runs:
            render_run(run.path)
        if root is not None:
            render_index(root)  # now listing those pages
    head = Headline(
        facts(kept, preset=meta.get("preset"), seeds=meta.get("seeds")),
        verdicts(records),
        _headline_note(paired, ref, ref_note),
    )
    context = {
        "headline": head,
        "nav": nav(comp_dir, root),
        "reference_sim": ref,
        "title": f"{'Ablation' if ablation else 'Comparison'} on {task}",
        "task": task,
        "ablation": ablation,
        "meta": {
            "sims": ", ".join(map(str, meta.get("sims") or group.sims)),
            "seeds": ", ".join(map(str, meta.get("seeds") or sorted({r.seed for r in kept}))),
        },
        "budget": key_rows(meta.get("budget") or {}),
        "key": key_rows(group.key),
        "group": view,
        "norm": norm_view(norm, order),
        "cost": cost_view(group),
        "summary": SUMMARY,
        "excluded": [
            {
                "sim": r.sim,
                "seed": r.seed,
                "href": relative_link(r.path / REPORT, comp_dir),
                "reason": why,
            }
            for r, why in excluded
        ],
        "ours": ours_vs_paper(group, task),
        "ablation_rows": ablation_table(group) if ablation else [],
        "reference": reference_view(task, highlight="MoP", ablation=ablation),
        "tie_rule": TIE_RULE,
        "paired": {
            "tables": paired_tables(paired, group),
            "method": method_text(paired),
            "sign": SIGN,
        },
    }
    return render_page(page, "comparison.html.j2", **context)


def _headline_note(paired: PairedAnalysis, ref: str | None, ref_note: str) -> str:
    if not paired.metrics:
        return "No paired tests: fewer than two simulators besides the calibration row."
    s = paired.settings
    text = (
        f"Verdicts from paired bootstrap tests ({s.draws} draws, Holm-corrected over the "
        f"pairs of each metric at α = {s.alpha}); the plots show differences from {ref}."
    )
    return text + (f" Note: {ref_note}." if ref_note else "")


def render_ablation(
    comp_dir: Path,
    *,
    render_runs: bool = True,
    bootstrap: BootstrapSettings | None = None,
    floor: str | None = None,
    reference: str | None = None,
) -> Path:
    """MoP and its ablations as one table beside the paper's Table 4 (writes ablation.html)."""
    return render_comparison(
        comp_dir,
        ablation=True,
        render_runs=render_runs,
        bootstrap=bootstrap,
        floor=floor,
        reference=reference,
    )


def ours_vs_paper(group: Group, task: str) -> dict[str, Any]:
    """Ordering of our simulators per paper metric, and MoP's relative gap, beside the paper's."""
    order: dict[str, list[str]] = {}
    for m, hib in reference.PAPER_METRICS.items():
        if m not in group.metrics:
            continue
        cells = [
            (s, group.cells[(s, m)])
            for s in group.sims
            if s not in group.calibration and group.cells[(s, m)].interval is not None
        ]
        cells.sort(key=lambda sc: sc[1].interval.mean if sc[1].interval else 0.0, reverse=hib)
        order[m] = [f"{s} (rank {c.rank})" for s, c in cells]
    ours = mop_gaps(group)
    return {
        "rows": [
            {
                "metric": metric_label(m),
                "ours": ours.get(m),
                "paper": reference.paper_gap(task, m),
                "order": order.get(m, []),
            }
            for m in reference.PAPER_METRICS
        ]
    }


def ablation_table(group: Group) -> list[dict[str, Any]]:
    """Our MoP variants beside Table 4, with each variant's gap to MoP in both."""
    paper = {r.method: r for r in reference.ablation_rows()}
    by_method = {
        reference.paper_method_for(group.sim_spec(s)): s
        for s in group.sims
        if reference.paper_method_for(group.sim_spec(s))
    }
    mop_sim = by_method.get("MoP")
    rows = []
    for sim in group.sims:
        method = reference.paper_method_for(group.sim_spec(sim))
        cells = []
        for m in reference.PAPER_METRICS:
            c = group.cells.get((sim, m))
            iv = c.interval if c else None
            base = group.cells.get((mop_sim, m)) if mop_sim else None
            gap = None
            if iv and base and base.interval and base.interval.mean != 0 and sim != mop_sim:
                gap = reference.relative_gap(iv.mean, base.interval.mean)
            p = paper.get(method) if method else None
            pgap = None
            if p and method != "MoP":
                pgap = reference.relative_gap(p.value(m), paper["MoP"].value(m))
            cells.append(
                {
                    "ours": fmt_interval(iv),
                    "gap": gap,
                    "paper": p.value(m) if p else None,
                    "paper_gap": pgap,
                }
            )
        rows.append(
            {
                "sim": sim,
                "method": method or "(not in Table 4)",
                "cells": cells,
                "calibration": sim in group.calibration,
            }
        )
    return rows
