"""The index page of a results folder: each comparison with its headline, the
leaderboard, and every run's report, in the style of the other pages.

Written to `<results>/index.html` whenever a comparison under `<results>/comparisons/`
is rendered or the leaderboard is built, so every page can link to it; the publishing
script writes a second copy one folder up (reports/index.html), with links from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mop_bench.report.headline import (
    INDEX,
    Headline,
    comparison_facts,
    comparison_page,
    comparisons_of,
    read_summary,
    verdicts,
)
from mop_bench.report.load import CONFIG, REPORT, find_run_dirs, read_json_file
from mop_bench.report.render import relative_link, render_page


def render_index(results: Path, out: Path | None = None) -> Path:
    """Write the index of `results` to `out` (default `results/index.html`)."""
    results = Path(results)
    out = Path(out) if out is not None else results / INDEX
    page_dir = out.parent
    comparisons = []
    for comp_dir, meta in comparisons_of(results):
        page = comparison_page(comp_dir, meta)
        try:
            records = read_summary(comp_dir)
            head = Headline(
                comparison_facts(comp_dir, meta),
                verdicts(records or []),
                "" if records is not None else "not rendered yet (mop-bench report FOLDER)",
            )
        except (FileNotFoundError, ValueError):
            # One broken comparison must not stop the pages of the others (and the error
            # names the machine's paths: `mop-bench report` on it says what is wrong).
            head = Headline(note="its summary.json or a run's config.json is unreadable")
        comparisons.append(
            {
                "name": comp_dir.name,
                "kind": "ablation" if meta.get("ablation") else "comparison",
                "href": relative_link(page, page_dir) if page.is_file() else None,
                "headline": head,
            }
        )
    board = results / "leaderboard.html"
    return render_page(
        out,
        "index.html.j2",
        title="mop-bench results",
        comparisons=comparisons,
        leaderboard=relative_link(board, page_dir) if board.is_file() else None,
        runs=_runs(results, page_dir),
        nav=[],
    )


def _runs(results: Path, page_dir: Path) -> list[dict[str, Any]]:
    """Every run directory under `results` with a rendered report, by task and name."""
    rows = []
    for path in find_run_dirs(results) + find_run_dirs(results, incomplete=True):
        config = read_json_file(path / CONFIG)
        spec = config.get("spec") if isinstance(config, dict) else None
        if not isinstance(spec, dict) or not (path / REPORT).is_file():
            continue
        rows.append(
            {
                "task": str(spec.get("task", path.parent.name)),
                "sim": str((spec.get("simulator") or {}).get("name", path.name)),
                "seed": spec.get("seed", 0),
                "dir": f"{path.parent.name}/{path.name}",
                "href": relative_link(path / REPORT, page_dir),
                "scored": (path / "metrics.json").is_file(),
            }
        )
    return sorted(rows, key=lambda r: (r["task"], r["sim"], r["seed"], r["dir"]))
