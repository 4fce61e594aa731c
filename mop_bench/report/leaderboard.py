"""The leaderboard: every scored run under a results folder, ranked only among equals.

Runs are grouped by task, comparable key (same budget, data sizes, LM, encoder and
metric settings), seed set and simulator configuration (report/board_groups.py); a group
is never ranked against another, and the page says what sets each extra group apart.
Within a group FID, MAUVE, KL-cosine and held-out NLL are ranked with the comparison
pages' paired tests (report/paired.py), so a leaderboard and a comparison built from the
same runs give the same ranks; the other metrics keep the interval rule.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mop_bench.report.aggregate import dedupe, summarise
from mop_bench.report.board_groups import board_groups
from mop_bench.report.bootstrap import BootstrapSettings
from mop_bench.report.export import COLUMNS, group_key_id, group_records, write_tables
from mop_bench.report.headline import Headline, facts, nav, verdicts
from mop_bench.report.load import REPORT, RunData, find_run_dirs, load_run
from mop_bench.report.normalised import (
    DEFAULT_FLOOR,
    NORM_COLUMNS,
    needs_draws,
    norm_view,
    normalise,
)
from mop_bench.report.paired import CACHE_DIR, analyse, apply_ranks
from mop_bench.report.paired_view import paired_records
from mop_bench.report.render import relative_link, render_page
from mop_bench.report.stats import TIE_RULE
from mop_bench.report.views import group_view, key_rows, reference_view
from mop_bench.store import incomplete_reason

log = logging.getLogger(__name__)

#: Stem of the leaderboard's files inside its output folder.
STEM = "leaderboard"
#: Suffixes that show an `out_dir` was meant as a file (the option used to be a prefix).
_FILE_SUFFIXES = {".html", ".htm", ".csv", ".json"}


def build_leaderboard(
    results_dir: Path,
    out_dir: Path | None = None,
    *,
    render_runs: bool = True,
    bootstrap: BootstrapSettings | None = None,
    floor: str = DEFAULT_FLOOR,
) -> Path:
    """Write leaderboard.html, .csv and .json into `out_dir` (default: `results_dir`).

    Each group's normalised score maps `floor` to 0 and the `real` row to 100 (a group
    without either says so and has none).

    Refuses (ValueError, nothing written) when `results_dir` holds no scored run: an
    empty board would replace a good one, as running it on a published copy of the
    pages (which keeps no metrics.json) once did. Paired-test draws are cached in
    `out_dir/paired_cache/`; entries the comparisons under `results_dir` cached are
    reused. Returns the page's path.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: results directory not found")
    out_dir = Path(out_dir) if out_dir is not None else results_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: --out must be a directory (it is a file)")
    if not out_dir.exists() and out_dir.suffix.lower() in _FILE_SUFFIXES:
        raise ValueError(
            f"{out_dir}: --out names a directory; the leaderboard writes "
            f"{STEM}.html, {STEM}.csv and {STEM}.json inside it"
        )
    runs = [load_run(p) for p in find_run_dirs(results_dir)]
    for path in find_run_dirs(results_dir, incomplete=True):
        log.warning("leaderboard: skipped %s: %s", path, incomplete_reason(path))
    if not runs:
        raise ValueError(
            f"{results_dir}: no scored run (a directory with config.json and metrics.json) "
            f"under it; nothing written, an existing {STEM}.html is left as it was"
        )
    out = out_dir / f"{STEM}.html"
    if render_runs:
        from mop_bench.report.run import render_run

        for run in runs:
            render_run(run.path)
    runs, duplicates = dedupe(runs)
    tasks: dict[str, list[RunData]] = {}
    for run in runs:
        tasks.setdefault(run.task, []).append(run)
    # Draws cached by the comparisons are the same draws (they depend only on the run).
    read_also = tuple(
        p for p in sorted(results_dir.rglob(CACHE_DIR)) if p.is_dir() and p != out_dir / CACHE_DIR
    )
    sections, records = [], []
    for task in sorted(tasks):
        views = []
        for n, board in enumerate(board_groups(tasks[task]), start=1):
            group = summarise(board.key, list(board.runs))
            paired = analyse(
                group,
                out_dir / CACHE_DIR,
                bootstrap,
                read_also=read_also,
                also=needs_draws(group, floor),
            )
            apply_ranks(group, paired)
            norm = normalise(group, paired, floor)
            rows = group_records(task, n, group, norm)
            records.extend(rows)
            view = group_view(group, out_dir, plots=False)
            # The verdicts a comparison of these runs states (same tests, same records).
            pairs = paired_records(task, n, group_key_id(group), group, paired)
            head = Headline(facts(list(board.runs), seeds=board.seeds), verdicts(rows + pairs))
            views.append(
                {
                    "n": n,
                    "why": board.why,
                    "n_runs": len(board.runs),
                    "seeds": ", ".join(map(str, board.seeds)),
                    "key": key_rows(board.key),
                    "view": view,
                    "headline": head,
                    "norm": norm_view(norm, [row["sim"] for row in view["rows"]]),
                }
            )
        sections.append(
            {"task": task, "groups": views, "reference": reference_view(task, highlight="MoP")}
        )
    write_tables(records, out_dir / STEM, [*COLUMNS, *NORM_COLUMNS])
    from mop_bench.report.index import render_index

    # The results folder's index is written only where the board is (the default).
    own_index = out_dir.resolve() == results_dir.resolve()
    if own_index:
        out_dir = results_dir  # one spelling, for the links below
        render_index(results_dir)  # before the page, which links to it
    page = render_page(
        out,
        "leaderboard.html.j2",
        nav=[
            link
            for link in nav(out_dir, results_dir if out_dir == results_dir else None)
            if link[0] != "leaderboard"  # this page
        ],
        sections=sections,
        results_dir=_shown_results_dir(results_dir, out_dir),
        n_runs=len(runs),
        duplicates=[
            {
                "path": relative_link(r.path, results_dir),
                "href": relative_link(r.path / REPORT, out_dir),
                "reason": why,
            }
            for r, why in duplicates
        ],
        csv_name=f"{STEM}.csv",
        json_name=f"{STEM}.json",
        tie_rule=TIE_RULE,
    )
    if own_index:
        render_index(results_dir)  # now listing the board
    return page


def _shown_results_dir(results_dir: Path, out_dir: Path) -> str:
    """The results folder as the page names it: never the machine's absolute path."""
    rel = relative_link(results_dir, out_dir)
    return "this folder" if rel == "." else rel
