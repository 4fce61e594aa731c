"""Copy rendered pages and leaderboard exports from a results directory into reports/,
keeping their relative layout (so every link works), and write reports/index.html.

    python scripts/publish_reports.py RESULTS_DIR [REPORTS_DIR]
"""

from __future__ import annotations

import datetime
import html
import shutil
import sys
from pathlib import Path

KEEP = (
    "*.html",
    "leaderboard.csv",
    "leaderboard.json",
    "summary.csv",
    "summary.json",
    "summary.md",
)


def publish(results: Path, reports: Path) -> None:
    target = reports / "results"
    if target.exists():
        shutil.rmtree(target)
    for pattern in KEEP:
        for src in results.rglob(pattern):
            dst = target / src.relative_to(results)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    # Comparison and ablation pages (an ablation is a comparison rendered as ablation.html).
    pages = sorted(
        [*target.glob("comparisons/*/comparison.html"), *target.glob("comparisons/*/ablation.html")]
    )
    items = "".join(
        f'<li><a href="{html.escape(p.relative_to(reports).as_posix())}">'
        f"{html.escape(p.parent.name)}</a></li>"
        for p in pages
    )
    (reports / "index.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>mop-bench reports</title>"
        "<h1>mop-bench comparison reports</h1>"
        f"<p>Published by scripts/publish_reports.py on {datetime.date.today()} (CI regenerates "
        "the smoke comparisons with scripts/regenerate_reports.sh).</p>"
        f"<ul>{items}<li><a href='results/leaderboard.html'>leaderboard</a></li></ul>\n",
        encoding="utf-8",
    )
    print(f"published {len(pages)} comparison/ablation page(s) to {reports}")


if __name__ == "__main__":
    publish(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "reports"))
