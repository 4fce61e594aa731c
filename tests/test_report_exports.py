"""Cost accounting (timing.json totals) and a comparison's CSV/JSON/Markdown exports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_report import FAST, make_comparison

from mop_bench.report import render_comparison
from mop_bench.report.load import read_cost
from mop_bench.store import timing_totals

NEW = {
    "seconds": {"simulate": 10.0, "embed_and_score": 2.0},
    "simulate": {
        "chunks": 2,
        "chunks_generated": 2,
        "prepare_seconds": 4.0,
        "lm": {"generate_tokens": 300, "score_tokens": 1200},
    },
}
REUSE = {"seconds": {"simulate": 0.1, "embed_and_score": 0.0}, "simulate": {"chunks": 2}}
# Written before fit costs were recorded: its lm counters miss the fit's scoring.
LEGACY = {
    "seconds": {"simulate": 50.0},
    "simulate": {"chunks_generated": 2, "lm": {"generate_tokens": 999, "score_tokens": 0}},
}


def test_timing_totals_sum_work_and_skip_incomplete_counters() -> None:
    totals = timing_totals([NEW, REUSE, NEW])
    assert totals["invocations"] == 3
    assert totals["simulate_seconds"] == pytest.approx(20.1)
    assert totals["prepare_seconds"] == pytest.approx(8.0)
    assert totals["lm_score_tokens"] == 2400 and totals["lm_generate_tokens"] == 600
    legacy = timing_totals([LEGACY])
    assert legacy["simulate_seconds"] == 50.0
    assert "lm_generate_tokens" not in legacy and "prepare_seconds" not in legacy
    # Starting totals are added to, not replaced (history is capped, totals are not).
    assert timing_totals([NEW], totals)["invocations"] == 4


def test_read_cost_prefers_totals_and_names_bad_files(tmp_path: Path) -> None:
    (tmp_path / "timing.json").write_text(json.dumps({"history": [NEW, REUSE]}))
    assert read_cost(tmp_path)["simulate_seconds"] == pytest.approx(10.1)
    (tmp_path / "timing.json").write_text(
        json.dumps({"history": [REUSE], "totals": {"simulate_seconds": 77.0}})
    )
    assert read_cost(tmp_path) == {"simulate_seconds": 77.0}
    (tmp_path / "timing.json").write_text(json.dumps({"history": "oops"}))
    with pytest.raises(ValueError, match=r"timing\.json: field 'history'"):
        read_cost(tmp_path)
    assert read_cost(tmp_path / "nowhere") == {}


def test_comparison_writes_cost_table_and_exports(tmp_path: Path) -> None:
    comp = make_comparison(tmp_path)
    for n, run in enumerate(sorted((comp / "ag_news").glob("mop-*"))):
        totals = timing_totals([NEW]) | {"simulate_seconds": 100.0 + 10 * n}
        (run / "timing.json").write_text(json.dumps({"totals": totals}))
    # A metric the calibration run never computes (real has no fitted model, so no
    # heldout_nll) is "—", not "failed"; here its KL-cosine is left out the same way.
    for run in (comp / "ag_news").glob("real-*"):
        metrics = json.loads((run / "metrics.json").read_text())
        del metrics["kl_cosine"]
        (run / "metrics.json").write_text(json.dumps(metrics))
    html = render_comparison(comp, bootstrap=FAST).read_text()
    assert "Cost per seed" in html and 'href="summary.md"' in html

    md = (comp / "summary.md").read_text()
    lines = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines()}
    # mop: FID 0.90/0.91/0.92 -> 0.910 ± 0.025, rank 1; mean simulate 110 s over 3 seeds.
    assert "0.910 ± 0.025 (1)" in lines["mop"] and lines["mop"].endswith("| 110 |")
    # real: FID 0.4 on every seed -> "± 0.000" (not float round-off), and no rank.
    real = lines["real (calibration, length-matched to 64 tokens)"]
    assert "| 0.400 ± 0.000 |" in real and "failed" not in real and "| — |" in real
    assert lines["fixed-few-shot"].endswith("| — |")  # make_run writes no history
    assert "mop-no-exemplars" not in md  # incomparable runs stay out of the table

    df = pd.read_csv(comp / "summary.csv")
    mop_fid = df[(df.simulator == "mop") & (df.metric == "fid")].iloc[0]
    assert mop_fid["n_seeds"] == 3 and mop_fid["rank"] == 1
    assert mop_fid["simulate_seconds"] == pytest.approx(110.0)
    assert mop_fid["lm_score_tokens"] == 1200
    assert pd.isna(df[df.simulator == "real"]["lm_score_tokens"]).all()
    assert json.loads((comp / "summary.json").read_text())[0]["task"] == "ag_news"
