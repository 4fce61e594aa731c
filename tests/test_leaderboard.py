"""The leaderboard ranks as the comparison pages do, only among runs on equal terms, and
never replaces a good board with an empty one (issue 19, items 1-3)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from test_paired import FAST, planted_comparison
from test_report import make_comparison, make_run

from mop_bench.cli import main
from mop_bench.report import build_leaderboard, render_comparison

#: Few draws through the command line too (the CLI's minimum is 20).
FAST_ARGS = ["--bootstrap-draws", str(FAST.draws), "--mauve-draws", str(FAST.mauve_draws), "-q"]


def _ranks(df: pd.DataFrame) -> dict[tuple[str, str], float]:
    return {(r.simulator, r.metric): r["rank"] for _, r in df.iterrows()}


def test_leaderboard_ranks_equal_the_comparison_ranks(tmp_path: Path) -> None:
    comp = planted_comparison(tmp_path)
    render_comparison(comp, render_runs=False, bootstrap=FAST)
    summary = pd.read_csv(comp / "summary.csv")
    want = _ranks(summary[summary.table == "simulators"])
    build_leaderboard(tmp_path, render_runs=False, bootstrap=FAST)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert set(board.group) == {1}  # one comparison: one group
    got = _ranks(board)
    assert got.keys() == want.keys()
    for cell, rank in want.items():
        assert got[cell] == rank or (pd.isna(got[cell]) and pd.isna(rank)), cell
    # The planted design separates fixed-few-shot on FID: the interval rule tied it.
    assert got[("fixed-few-shot", "fid")] == 3 and got[("mop", "fid")] == 1
    html = (tmp_path / "leaderboard.html").read_text()
    assert "Holm-corrected" in html and "same paired tests" in html


def test_leaderboard_reuses_the_comparisons_cached_draws(tmp_path: Path) -> None:
    from mop_bench.report.paired import CACHE_DIR

    comp = planted_comparison(tmp_path)
    render_comparison(comp, render_runs=False, bootstrap=FAST)
    cached = {p.name: p.read_bytes() for p in (comp / CACHE_DIR).glob("*.npz")}
    out = tmp_path / "board"
    build_leaderboard(tmp_path, out, render_runs=False, bootstrap=FAST)
    # Same runs, same settings: the same entries, copied rather than recomputed.
    assert {p.name for p in (out / CACHE_DIR).glob("*.npz")} == set(cached)


def test_leaderboard_groups_by_seed_set_and_configuration(tmp_path: Path) -> None:
    make_comparison(tmp_path, odd_one=False)  # mop, fixed-few-shot, real: seeds 0, 1, 2
    comp = tmp_path / "comp"
    make_run(comp, "mop-no-exemplars", 0, fid=0.5)  # a 1-seed ablation run, same key
    for seed in (0, 1, 2):  # the same name with other settings (a sweep's point)
        make_run(comp, "mop", seed, personas=4, fid=5.0)
    build_leaderboard(tmp_path, render_runs=False, bootstrap=FAST)
    df = pd.read_csv(tmp_path / "leaderboard.csv")
    groups = df[df.metric == "fid"].groupby("group")["simulator"].apply(sorted).to_dict()
    assert groups == {1: ["fixed-few-shot", "mop", "real"], 2: ["mop"], 3: ["mop-no-exemplars"]}
    fid = df[df.metric == "fid"].set_index(["group", "simulator"])
    assert fid.loc[(1, "mop"), "mean"] == pytest.approx(0.91)  # not pooled with personas=4
    assert fid.loc[(1, "mop"), "n_seeds"] == 3 and fid.loc[(3, "mop-no-exemplars"), "rank"] == 1
    html = (tmp_path / "leaderboard.html").read_text()
    assert "seeds 0 (vs 0, 1, 2)" in html
    assert "another configuration of mop: simulator.n_personas: 4 (vs 16)" in html


def _published(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A board built from runs, then copied without the runs' data (as publish does)."""
    results = tmp_path / "results"
    make_run(results, "mop", 0)
    make_run(results, "fixed-few-shot", 0, fid=2.0)
    build_leaderboard(results, render_runs=False, bootstrap=FAST)
    pub = tmp_path / "pub"
    pub.mkdir()
    for name in ("leaderboard.html", "leaderboard.csv", "leaderboard.json"):
        shutil.copy2(results / name, pub / name)
    return pub, {p.name: p.read_bytes() for p in pub.iterdir()}


def test_leaderboard_without_scored_runs_refuses_and_keeps_the_board(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub, before = _published(tmp_path)
    assert b"fixed-few-shot" in before["leaderboard.csv"]
    assert main(["leaderboard", str(pub), *FAST_ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mop-bench: error: ") and "no scored run" in err and "\n" not in err
    assert {p.name: p.read_bytes() for p in pub.iterdir()} == before


def test_leaderboard_out_is_a_directory(tmp_path: Path) -> None:
    results = tmp_path / "results"
    make_run(results, "mop", 0)
    existing = tmp_path / "existing"
    existing.mkdir()
    assert main(["leaderboard", str(results), "--out", str(existing), *FAST_ARGS]) == 0
    fresh = tmp_path / "lb2"  # not there yet: created
    assert main(["leaderboard", str(results), "--out", str(fresh), *FAST_ARGS]) == 0
    for folder in (existing, fresh):
        assert sorted(p.name for p in folder.glob("leaderboard*")) == [
            "leaderboard.csv",
            "leaderboard.html",
            "leaderboard.json",
        ]
    assert not (tmp_path / "lb2.csv").exists()
    # A file, or a name that reads as a file, is refused before anything is written.
    (tmp_path / "a_file").write_text("keep")
    assert main(["leaderboard", str(results), "--out", str(tmp_path / "a_file"), *FAST_ARGS]) == 2
    assert (tmp_path / "a_file").read_text() == "keep"
    assert main(["leaderboard", str(results), "--out", str(tmp_path / "x.html"), *FAST_ARGS]) == 2
    assert not (tmp_path / "x.html").exists()
