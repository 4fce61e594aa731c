"""The normalised score (0 = a named floor, 100 = `real`, paired-bootstrap intervals) on
comparison pages, summaries and the leaderboard; and `mop-bench table` (Table 1's
layout in Markdown, LaTeX and CSV, marks from the comparisons' paired tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_paired import _nll
from test_report import FAST, make_run

from mop_bench.cli import main
from mop_bench.report import build_leaderboard, render_comparison
from mop_bench.report.export import COLUMNS
from mop_bench.report.normalised import NORM_COLUMNS
from mop_bench.report.paired_view import PAIRED_COLUMNS

FAST_ARGS = ["--bootstrap-draws", str(FAST.draws), "--mauve-draws", str(FAST.mauve_draws), "-q"]

#: Planted values, exact in binary: the floor at 0, real at 100, mop halfway (50) and
#: fixed-few-shot a quarter of the way (25) on every metric, in both directions.
PLANTED: dict[str, dict[str, float]] = {
    "temperature-only": {"fid": 1.0, "mauve": 0.25, "kl": 0.5, "format": 12},
    "fixed-few-shot": {"fid": 0.875, "mauve": 0.375, "kl": 0.4375, "format": 9},
    "mop": {"fid": 0.75, "mauve": 0.5, "kl": 0.375, "format": 6},
    "real": {"fid": 0.5, "mauve": 0.75, "kl": 0.25, "format": 0},
}
N_SYNTH = 60  # make_run's synthetic embeddings


def norm_comparison(root: Path, sims: tuple[str, ...] = tuple(PLANTED), **meta: Any) -> Path:
    """A 2-seed comparison of `sims` with the PLANTED values (format: failing indices
    out of 60; held-out NLL for every non-calibration simulator)."""
    comp = root / "comp"
    comp.mkdir()
    runs = []
    for seed in (0, 1):
        for sim in sims:
            v = PLANTED[sim]
            run = make_run(comp, sim, seed, fid=v["fid"], mauve=v["mauve"], kl=v["kl"])
            metrics = json.loads((run / "metrics.json").read_text())
            failed = list(range(0, 5 * int(v["format"]), 5))
            metrics["format"] = {
                "name": "format",
                "value": len(failed) / N_SYNTH,
                "higher_is_better": False,
                "settings": {},
                "details": {"n": N_SYNTH, "n_failed": len(failed), "failed_indices": failed},
            }
            if sim != "real":
                nll = 2.0 + 0.25 * len(sim) / 10
                metrics["heldout_nll"] = _nll(nll, [f"golden:{i}" for i in range(30)])
            (run / "metrics.json").write_text(json.dumps(metrics))
            runs.append(str(run))
    (comp / "comparison.json").write_text(
        json.dumps({"task": "ag_news", "runs": runs, "budget": {}} | meta)
    )
    return comp


def _norm(comp: Path) -> pd.DataFrame:
    df = pd.read_csv(comp / "summary.csv")
    return df[df.table == "simulators"].set_index(["simulator", "metric"])


# ----------------------------------------------------------------------------- normalised


def test_normalised_score_exact_on_planted_values(tmp_path: Path) -> None:
    comp = norm_comparison(tmp_path)
    html = render_comparison(comp, render_runs=False, bootstrap=FAST).read_text()
    df = pd.read_csv(comp / "summary.csv")
    # The existing columns keep their places; the normalised ones come last.
    assert list(df.columns) == ["table", *COLUMNS, *PAIRED_COLUMNS, *NORM_COLUMNS]
    sims = _norm(comp)
    for m in ("fid", "mauve", "kl_cosine"):
        assert sims.loc[("temperature-only", m), "norm"] == 0.0
        assert sims.loc[("real", m), "norm"] == 100.0
        assert sims.loc[("mop", m), "norm"] == pytest.approx(50.0, abs=1e-9)
        assert sims.loc[("fixed-few-shot", m), "norm"] == pytest.approx(25.0, abs=1e-9)
        for sim in ("mop", "fixed-few-shot"):
            row = sims.loc[(sim, m)]
            assert row.norm_lo < row.norm < row.norm_hi, (sim, m)  # a real interval
        # by construction: the floor's draws are all 0, real's all 100
        assert sims.loc[("temperature-only", m), "norm_hi"] == 0.0
        assert sims.loc[("real", m), "norm_lo"] == 100.0
    assert (sims.norm_floor == "temperature-only").all()
    # held-out NLL: real has none, so no 100 to map to, and the row says so
    nll = sims.xs("heldout_nll", level="metric")
    assert nll.norm.isna().all() and nll.norm_note.str.contains("real has no held-out NLL").all()
    assert sims.loc[("mop", "copy_rate"), "norm_note"].startswith("not normalised")
    # format shares near 0 for both floor and real: a ratio of noise, not normalised
    assert sims.loc[("mop", "format"), "norm_note"].startswith("not normalised")
    mop = sims.loc[("mop", "fid")]
    assert f"50.0 [{mop.norm_lo:.1f}, {mop.norm_hi:.1f}]" in html
    assert "Normalised score (0 = temperature-only, 100 = real)" in html
    assert "Not normalised: held-out NLL (nats/token): real has no held-out NLL" in html
    md = (comp / "summary.md").read_text()
    assert "## Normalised score (0 = temperature-only, 100 = real)" in md
    assert re.search(r"\| mop \| 50\.0 \[[-\d.]+, [-\d.]+\] \|", md)


def test_missing_floor_gives_no_column_and_a_reason(tmp_path: Path) -> None:
    from mop_bench.report.paired import CACHE_DIR

    comp = norm_comparison(tmp_path, sims=("fixed-few-shot", "mop", "real"))
    html = render_comparison(comp, render_runs=False, bootstrap=FAST).read_text()
    sims = _norm(comp)
    assert sims.norm.isna().all() and sims.norm_lo.isna().all()
    why = "no normalised score: the floor 'temperature-only' is not among this group's"
    assert sims.norm_note.str.startswith(why).all()
    assert why.replace("'", "&#39;") in html  # escaped, as all page text
    assert "Normalised score (0 = temperature-only" in html
    section = html.split("<h3>Normalised score")[1].split("<h2")[0]
    assert "<table>" not in section  # the reason, no empty table
    assert why in (comp / "summary.md").read_text()
    # without a floor, real's draws are not computed
    assert len(list((comp / CACHE_DIR).glob("*.npz"))) == 2 * 2


def test_floor_option_and_remembered_floor(tmp_path: Path) -> None:
    comp = norm_comparison(tmp_path)
    assert main(["report", str(comp), "--floor", "fixed-few-shot", *FAST_ARGS]) == 0
    sims = _norm(comp)
    assert sims.loc[("fixed-few-shot", "fid"), "norm"] == 0.0
    assert sims.loc[("mop", "fid"), "norm"] == pytest.approx(100 / 3, abs=1e-9)
    assert sims.loc[("temperature-only", "mauve"), "norm"] == pytest.approx(-100 / 3, abs=1e-9)
    assert (sims.norm_floor == "fixed-few-shot").all()
    # comparison.json's floor (written by `compare --floor`) is what a plain re-render uses
    meta = json.loads((comp / "comparison.json").read_text())
    (comp / "comparison.json").write_text(json.dumps(meta | {"floor": "mop"}))
    render_comparison(comp, render_runs=False, bootstrap=FAST)
    assert _norm(comp).loc[("mop", "kl_cosine"), "norm"] == 0.0


def test_floor_level_with_real_on_one_metric(tmp_path: Path) -> None:
    comp = norm_comparison(tmp_path)
    for run in (comp / "ag_news").glob("temperature-only-*"):
        metrics = json.loads((run / "metrics.json").read_text())
        metrics["kl_cosine"]["value"] = PLANTED["real"]["kl"]
        (run / "metrics.json").write_text(json.dumps(metrics))
    html = render_comparison(comp, render_runs=False, bootstrap=FAST).read_text()
    kl = _norm(comp).xs("kl_cosine", level="metric")
    assert kl.norm.isna().all()
    assert kl.norm_note.str.contains("equals real on KL-cosine: no scale").all()
    assert _norm(comp).loc[("mop", "fid"), "norm"] == pytest.approx(50.0)
    assert "Not normalised: KL-cosine: the floor temperature-only equals real" in html


def test_floor_name_is_escaped_on_the_page(tmp_path: Path) -> None:
    comp = norm_comparison(tmp_path, sims=("mop", "real", "fixed-few-shot"))
    hostile = "<script>alert(1)</script>"
    html = render_comparison(comp, render_runs=False, bootstrap=FAST, floor=hostile).read_text()
    assert hostile not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_leaderboard_carries_the_normalised_score(tmp_path: Path) -> None:
    comp = norm_comparison(tmp_path)
    render_comparison(comp, render_runs=False, bootstrap=FAST)
    want = _norm(comp)
    build_leaderboard(tmp_path, render_runs=False, bootstrap=FAST)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert list(board.columns) == [*COLUMNS, *NORM_COLUMNS]
    got = board.set_index(["simulator", "metric"])
    for cell in [("mop", "fid"), ("fixed-few-shot", "mauve"), ("mop", "kl_cosine")]:
        for col in ("norm", "norm_lo", "norm_hi"):
            assert got.loc[cell, col] == pytest.approx(want.loc[cell, col]), (cell, col)
    assert json.loads((tmp_path / "leaderboard.json").read_text())[0]["norm_floor"] == (
        "temperature-only"
    )
    html = (tmp_path / "leaderboard.html").read_text()
    assert "Normalised score (0 = temperature-only, 100 = real)" in html


# ----------------------------------------------------------------------------- table


def fake_summary(
    root: Path,
    name: str,
    task: str,
    means: dict[str, dict[str, float]],
    verdicts: dict[tuple[str, str, str], str],
    *,
    seeds: int = 3,
) -> Path:
    """A rendered comparison folder as `mop-bench table` reads it: comparison.json and a
    summary.json with simulator rows (`means`: sim -> metric -> mean) and paired rows
    (`verdicts`: (metric, a, b) -> 'tie' | '<sim> better' | 'not tested')."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "comparison.json").write_text(json.dumps({"task": task, "runs": []}))
    hib = {"fid": False, "mauve": True, "kl_cosine": False}
    rows: list[dict[str, Any]] = [
        {
            "table": "simulators",
            "task": task,
            "simulator": sim,
            "calibration": sim == "real",
            "metric": m,
            "higher_is_better": hib[m],
            "n_seeds": seeds,
            "mean": v,
            "half_width": 0.01 if seeds > 1 else None,
        }
        for sim, ms in means.items()
        for m, v in ms.items()
    ]
    rows += [
        {"table": "paired", "task": task, "simulator": a, "versus": b, "metric": m, "verdict": v}
        for (m, a, b), v in verdicts.items()
    ]
    (folder / "summary.json").write_text(json.dumps(rows))
    return folder


MEANS = {
    "temperature-only": {"fid": 0.5, "mauve": 0.1, "kl_cosine": 0.4},
    "fixed-few-shot_x&y": {"fid": 0.31, "mauve": 0.6, "kl_cosine": 0.05},
    "mop": {"fid": 0.3, "mauve": 0.7, "kl_cosine": 0.08},
    "real": {"fid": 0.2, "mauve": 0.99, "kl_cosine": 0.01},
}


def _verdicts(fid_tie: bool) -> dict[tuple[str, str, str], str]:
    out = {}
    for m in ("fid", "mauve", "kl_cosine"):
        out[(m, "fixed-few-shot_x&y", "mop")] = "tie"
        out[(m, "mop", "temperature-only")] = "mop better"
        out[(m, "fixed-few-shot_x&y", "temperature-only")] = "fixed-few-shot_x&y better"
    if not fid_tie:
        out[("fid", "fixed-few-shot_x&y", "mop")] = "mop better"
    return out


def test_table_writes_three_files_with_bold_ties_and_escaping(tmp_path: Path, capsys) -> None:
    yelp = fake_summary(tmp_path, "yelp-default", "yelp", MEANS, _verdicts(fid_tie=True))
    mine = fake_summary(tmp_path, "mine", "mytask", MEANS, _verdicts(fid_tie=False), seeds=1)
    out = tmp_path / "out" / "t1"
    assert main(["table", str(yelp), str(mine), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    paths = [out.with_name("t1.md"), out.with_name("t1.tex"), out.with_name("t1.csv")]
    assert printed == [str(p) for p in paths] and all(p.is_file() for p in paths)

    md = paths[0].read_text()
    ffs = next(line for line in md.splitlines() if line.startswith("| fixed-few-shot"))
    cells = [c.strip() for c in ffs.strip("|").split("|")]
    # yelp: mop has the best FID, ffs tied with it in the paired test; ffs has the best
    # KL-cosine; mytask (1 seed, no ±): the FID test found mop better, so no mark.
    assert cells[0] == r"fixed-few-shot\_x&y"
    assert cells[1] == "0.310 ± 0.010 †" and cells[3] == "**0.050 ± 0.010**"
    assert cells[4] == "0.310" and cells[5] == "0.600 †"
    mop = next(line for line in md.splitlines() if line.startswith("| mop"))
    assert "**0.300 ± 0.010**" in mop and "**0.700 ± 0.010**" in mop
    real = next(line for line in md.splitlines() if line.startswith("| real"))
    assert "**" not in real and "(calibration)" in real  # never the best
    # The published block: only the paper's tasks (yelp, not mytask), clearly labelled.
    ours, paper = md.split("## Published: the paper's Table 1")
    assert "Another LM, encoder and n: comparable in ordering, not in value" in paper
    assert "| MoP | **0.948** | **0.826** | **0.067** |" in paper
    assert "mytask" not in paper and "AGNews" not in paper and "ZeroGen" not in ours

    tex = paths[1].read_text()
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule(lr){2-4}"):
        assert rule in tex
    assert r"fixed-few-shot\_x\&y & 0.310 $\pm$ 0.010$^{\dagger}$" in tex
    assert "_x&y" not in tex  # every special escaped
    assert r"mop & \textbf{0.300 $\pm$ 0.010}" in tex
    assert r"\multicolumn{3}{c}{mytask}" in tex and r"\multicolumn{3}{c}{Yelp}" in tex

    df = pd.read_csv(paths[2]).set_index(["block", "simulator"])
    assert df.loc[("ours", "fixed-few-shot_x&y"), "yelp.fid.mark"] == "tie"
    assert df.loc[("ours", "fixed-few-shot_x&y"), "mytask.fid.mark"] == "worse"
    assert df.loc[("ours", "mop"), "yelp.fid.mark"] == "best"
    assert df.loc[("ours", "mop"), "yelp.fid.pm"] == 0.01
    assert pd.isna(df.loc[("ours", "mop"), "mytask.fid.pm"])
    assert df.loc[("paper", "MoP"), "yelp.fid"] == 0.948
    assert pd.isna(df.loc[("paper", "MoP"), "mytask.fid"])


def test_tie_marks_follow_the_paired_verdicts(tmp_path: Path) -> None:
    from mop_bench.report.table import build_table

    folder = fake_summary(tmp_path, "c", "yelp", MEANS, _verdicts(fid_tie=True))
    assert build_table([folder]).cells[("fixed-few-shot_x&y", "yelp", "fid")].mark == "tie"
    # Same means, the comparison's test now separates them: the mark goes.
    rows = json.loads((folder / "summary.json").read_text())
    for r in rows:
        if r["table"] == "paired" and r["metric"] == "fid" and r["versus"] == "mop":
            r["verdict"] = "mop better"
    (folder / "summary.json").write_text(json.dumps(rows))
    table = build_table([folder])
    assert table.cells[("fixed-few-shot_x&y", "yelp", "fid")].mark == "worse"
    assert table.cells[("temperature-only", "yelp", "fid")].mark == "worse"


def test_table_marks_equal_a_rendered_comparisons_tests(tmp_path: Path) -> None:
    from test_paired import planted_comparison

    from mop_bench.report.table import build_table

    comp = planted_comparison(tmp_path)
    render_comparison(comp, render_runs=False, bootstrap=FAST)
    df = pd.read_csv(comp / "summary.csv")
    table = build_table([comp])
    for m in ("fid", "mauve", "kl_cosine"):
        col = df[(df.table == "simulators") & (df.metric == m) & ~df.calibration]
        hib = bool(col.higher_is_better.iloc[0])
        best = col.loc[col["mean"].idxmax() if hib else col["mean"].idxmin(), "simulator"]
        pairs = df[(df.table == "paired") & (df.metric == m)]
        for sim in col.simulator:
            if sim == best:
                continue
            pair = pairs[
                ((pairs.simulator == sim) & (pairs.versus == best))
                | ((pairs.simulator == best) & (pairs.versus == sim))
            ].iloc[0]
            mark = table.cells[(sim, "ag_news", m)].mark
            assert (mark == "tie") == (pair.verdict == "tie"), (m, sim, pair.verdict)


def test_table_refuses_a_folder_that_is_not_a_comparison(tmp_path: Path, capsys) -> None:
    good = fake_summary(tmp_path, "good", "yelp", MEANS, _verdicts(fid_tie=True))
    run = make_run(tmp_path / "results", "mop", 0)
    assert main(["table", str(good), str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mop-bench: error: {run}: not a comparison folder (no comparison.json)"
    unrendered = tmp_path / "unrendered"
    unrendered.mkdir()
    (unrendered / "comparison.json").write_text("{}")
    assert main(["table", str(unrendered)]) == 2
    assert "no summary.json" in capsys.readouterr().err
    assert main(["table", str(tmp_path / "missing")]) == 2


def test_table_out_directory_and_stdout(tmp_path: Path, capsys) -> None:
    folder = fake_summary(tmp_path, "c", "ag_news", MEANS, _verdicts(fid_tie=True))
    assert main(["table", str(folder)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("## Ours: Table 1 layout") and "AGNews" in printed
    outdir = tmp_path / "tables"
    outdir.mkdir()
    assert main(["table", str(folder), "--out", str(outdir)]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["table1.csv", "table1.md", "table1.tex"]
    # a new folder, named with its trailing slash, is a folder too
    assert main(["table", str(folder), "--out", f"{tmp_path}/new/"]) == 0
    assert (tmp_path / "new" / "table1.tex").is_file()
    assert main(["table", str(folder), "--out", str(tmp_path / "t.md")]) == 0
    assert sorted(p.name for p in tmp_path.glob("t.*")) == ["t.csv", "t.md", "t.tex"]


def test_paper_numbers_match_reference_md() -> None:
    """reference.TABLE1 (what the table's published block shows) is REFERENCE.md's
    section 6, number for number."""
    from mop_bench.reference import TABLE1

    ref = Path("/work/shared/REFERENCE.md")
    if not ref.is_file():
        pytest.skip("REFERENCE.md is not on this machine")
    section = ref.read_text().split("## 6.")[1].split("## 6b.")[0]
    tasks = ["AGNews", "Yelp", "SST-2", "IMDB"]
    for method, scores in TABLE1.items():
        line = next(x for x in section.splitlines() if x.startswith(f"| {method} |"))
        groups = [g.strip() for g in line.strip("|").split("|")[1:]]
        for task, text in zip(tasks, groups, strict=True):
            assert tuple(float(v) for v in text.split(" / ")) == scores[task], (method, task)
