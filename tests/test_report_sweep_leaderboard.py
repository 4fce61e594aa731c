"""Reports over many runs: the sweep page, and the leaderboard with its CSV/JSON exports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_report import _assert_safe_page, make_comparison, make_run

from mop_bench.report import build_leaderboard, render_sweep

# ----------------------------------------------------------------------------- sweep


def test_sweep_plots_and_table(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    points = []
    for personas in (4, 8):
        for pool in (250, 500):
            runs = [
                make_run(
                    sweep, "mop", s, personas=personas, pool=pool, fid=1.0 / personas + s * 0.01
                )
                for s in (0, 1)
            ]
            points.append(
                # values arrive as strings from the command line, as the sweep command writes them
                {
                    "values": {"personas": str(personas), "pool": str(pool)},
                    "runs": [str(r) for r in runs],
                }
            )
    (sweep / "sweep.json").write_text(
        json.dumps(
            {
                "task": "ag_news",
                "sim": "mop",
                "axes": {"personas": ["4", "8"], "pool": ["250", "500"]},
                "points": points,
            }
        )
    )
    html = render_sweep(sweep).read_text()
    # one plot per metric x axis: 5 metrics (fid, mauve, kl_cosine, downstream_f1,
    # copy_rate) x 2 axes
    assert html.count("data:image/svg+xml;base64,") == 10
    assert "0.130 ± 0.064" in html  # personas=8: fid values 0.125, 0.135
    assert '<td class="num">250</td>' in html


# ----------------------------------------------------------------------------- leaderboard


def test_leaderboard_groups_and_exports(tmp_path: Path) -> None:
    import pandas as pd

    comp = make_comparison(tmp_path)
    make_run(tmp_path / "other", "mop", 0, task="yelp", fid=0.95)
    out = build_leaderboard(tmp_path)
    assert out == tmp_path / "leaderboard.html"
    html = out.read_text()
    _assert_safe_page(html)
    assert "budget.n_samples: 50 (vs 300)" in html  # why the odd run is a separate group
    assert "1.769" in html and "3.535" in html  # Yelp and AGNews paper rows
    df = pd.read_csv(tmp_path / "leaderboard.csv")
    js = pd.read_json(tmp_path / "leaderboard.json", orient="records")
    assert len(df) == len(js)
    # ag_news majority group: 3 sims x 5 metrics; odd group: 1 x 5; yelp: 1 x 4 (no F1)
    assert len(df) == 3 * 5 + 5 + 4
    row = df[
        (df.task == "ag_news") & (df.simulator == "mop") & (df.metric == "fid") & (df.group == 1)
    ].iloc[0]
    assert row.n_seeds == 3 and row["mean"] == pytest.approx(0.91) and row["rank"] == 1
    assert row.ci_low == pytest.approx(0.91 - 0.02484, abs=1e-4)
    real = df[(df.simulator == "real") & (df.metric == "fid")].iloc[0]
    assert math.isnan(real["rank"])  # calibration rows are not ranked
    assert (comp / "ag_news").is_dir()
    for run in (comp / "ag_news").iterdir():
        assert (run / "report.html").is_file()
