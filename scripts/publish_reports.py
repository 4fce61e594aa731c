"""Publish comparisons from a results folder into reports/: the small files that
re-rendering needs (no generations, no embeddings; see mop_bench/report/manifest.py),
and the pages, leaderboard and index rendered from that copy. Afterwards
`mop-bench report reports/results/comparisons/NAME` and
`mop-bench leaderboard reports/results` re-render it with the same numbers.

    python scripts/publish_reports.py RESULTS_DIR [REPORTS_DIR] [--only NAME ...]

REPORTS_DIR defaults to reports/. Every comparison under RESULTS_DIR/comparisons/ is
published unless --only names some. reports/results/ is replaced as a whole, and only
once the new copy is complete. The bootstrap options must match the ones the
comparisons were rendered with (the defaults, unless you changed them), or every draw
is recomputed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mop_bench.report.bootstrap import BootstrapSettings
    from mop_bench.report.publish import publish

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("results", type=Path, metavar="RESULTS_DIR")
    p.add_argument("reports", type=Path, nargs="?", default=Path("reports"), metavar="REPORTS_DIR")
    p.add_argument("--only", nargs="+", metavar="NAME", help="comparison folder names to publish")
    p.add_argument("--bootstrap-draws", type=int, default=1000)
    p.add_argument("--mauve-draws", type=int, default=200)
    p.add_argument("--bootstrap-seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("mop_bench").setLevel(logging.INFO)  # ours only: no library chatter
    settings = BootstrapSettings(
        draws=args.bootstrap_draws, mauve_draws=args.mauve_draws, seed=args.bootstrap_seed
    )
    try:
        out = publish(args.results, args.reports, args.only, bootstrap=settings)
    except (FileNotFoundError, ValueError) as exc:
        print(f"publish_reports: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"published {len(out.comparisons)} comparison(s) and {len(out.runs)} run(s) to "
        f"{args.reports / 'results'} ({out.bytes / 1e6:.1f} MB of data beside the pages); "
        f"index: {args.reports / 'index.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
