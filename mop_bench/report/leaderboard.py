"""The leaderboard: every scored run under a results folder, ranked only among equals.

Runs are grouped by task and then by comparable key (same budget, data sizes, LM,
encoder and metric settings); a group is never ranked against another, and the page
says what sets each extra group apart.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mop_bench.report.aggregate import dedupe, group_by_key, summarise
from mop_bench.report.export import group_records, write_tables
from mop_bench.report.load import REPORT, RunData, find_run_dirs, key_diff, load_run
from mop_bench.report.render import relative_link, render_page
from mop_bench.report.stats import INTERVAL_RULE
from mop_bench.report.views import group_view, key_rows, reference_view
from mop_bench.store import incomplete_reason

log = logging.getLogger(__name__)


def build_leaderboard(
    results_dir: Path, out: Path | None = None, *, render_runs: bool = True
) -> Path:
    """Write leaderboard.html (default: in `results_dir`) plus .csv and .json beside it."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: results directory not found")
    out = Path(out) if out is not None else results_dir / "leaderboard.html"
    runs = [load_run(p) for p in find_run_dirs(results_dir)]
    for path in find_run_dirs(results_dir, incomplete=True):
        log.warning("leaderboard: skipped %s: %s", path, incomplete_reason(path))
    if render_runs:
        from mop_bench.report.run import render_run

        for run in runs:
            render_run(run.path)
    runs, duplicates = dedupe(runs)
    tasks: dict[str, list[RunData]] = {}
    for run in runs:
        tasks.setdefault(run.task, []).append(run)
    sections, records = [], []
    for task in sorted(tasks):
        groups = group_by_key(tasks[task])
        ref_key = groups[0][0]
        views = []
        for n, (key, members) in enumerate(groups, start=1):
            group = summarise(key, members)
            records.extend(group_records(task, n, group))
            why = "; ".join(key_diff(key, ref_key)) if n > 1 else ""
            views.append(
                {
                    "n": n,
                    "why": why or ("" if n == 1 else "comparable key differs"),
                    "n_runs": len(members),
                    "key": key_rows(key),
                    "view": group_view(group, out.parent, plots=False),
                }
            )
        sections.append(
            {"task": task, "groups": views, "reference": reference_view(task, highlight="MoP")}
        )
    write_tables(records, out)
    return render_page(
        out,
        "leaderboard.html.j2",
        sections=sections,
        results_dir=str(results_dir),
        n_runs=len(runs),
        duplicates=[
            {"path": str(r.path), "href": relative_link(r.path / REPORT, out.parent), "reason": why}
            for r, why in duplicates
        ],
        csv_name=out.with_suffix(".csv").name,
        json_name=out.with_suffix(".json").name,
        tie_rule=INTERVAL_RULE,
    )
