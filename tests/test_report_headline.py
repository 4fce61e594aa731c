"""What a reader sees first (issue 19, items 7 and 12): plots of paired differences that
never contradict the paired tests, a headline on every page whose verdicts are the
summary's, folded methods notes, numbers rounded by their interval, links back, and a
fit plot that shows something or nothing."""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from test_paired import FAST, planted_comparison
from test_report import SCRIPT, make_run

from mop_bench.report import build_leaderboard, render_comparison, render_run
from mop_bench.report.aggregate import Group
from mop_bench.report.bootstrap import PAIRED_METRICS
from mop_bench.report.diff_plots import choose_reference
from mop_bench.report.render import fmt_bounds, fmt_estimate, fmt_value

NAME = "planted"


def standard_comparison(tmp: Path) -> tuple[Path, Path]:
    """planted_comparison (mop, mop-no-exemplars, fixed-few-shot shifted away, real; seeds
    0 and 1) laid out as `compare` writes it: runs at results/<task>/<sim>-<fp>, the
    comparison at results/comparisons/NAME. Returns (results, comparison folder)."""
    results = tmp / "results"
    results.mkdir()
    comp = planted_comparison(results)
    shutil.move(comp / "ag_news", results / "ag_news")
    meta = json.loads((comp / "comparison.json").read_text())
    shutil.rmtree(comp)
    target = results / "comparisons" / NAME
    target.mkdir(parents=True)
    meta |= {
        "runs": [f"../../ag_news/{Path(r).name}" for r in meta["runs"]],
        "sims": ["mop", "fixed-few-shot", "mop-no-exemplars", "real"],
        "seeds": [0, 1],
        "preset": "default",
    }
    (target / "comparison.json").write_text(json.dumps(meta))
    return results, target


def best_by_summary(comp: Path) -> dict[str, set[str]]:
    """Per paired metric, the simulators summary.json ranks first."""
    rows = json.loads((comp / "summary.json").read_text())
    out: dict[str, set[str]] = {}
    for m in PAIRED_METRICS:
        ranks = {
            r["simulator"]: r["rank"]
            for r in rows
            if r["table"] == "simulators" and r["metric"] == m and r["rank"] is not None
        }
        if ranks and any(r["table"] == "paired" and r["metric"] == m for r in rows):
            out[m] = {s for s, k in ranks.items() if k == min(ranks.values())}
    return out


def headline_best(html: str) -> dict[str, set[str]]:
    """The first headline's verdicts as the page states them (data-best)."""
    found = re.findall(r'<li data-metric="([^"]+)" data-best="([^"]*)">', html)
    out: dict[str, set[str]] = {}
    for metric, best in found:
        out.setdefault(metric, set(best.split("|")) - {""})
    return out


# ----------------------------------------------------------------------------- numbers


def test_estimates_are_rounded_by_their_interval() -> None:
    # The pair: 0.409 ± 0.004 and 0.441 ± 0.058, each to the interval's digits.
    assert fmt_estimate(0.409, 0.0043) == "0.4090 ± 0.0043"
    assert fmt_estimate(0.441, 0.058) == "0.441 ± 0.058"
    assert fmt_estimate(0.9101, 0.02484) == "0.910 ± 0.025"
    assert fmt_estimate(1234.5, 51.0) == "1,234 ± 51"
    assert fmt_estimate(3.856, 0.0996) == "3.86 ± 0.10"  # rounding carries a digit
    assert fmt_estimate(0.5, None) == "0.500"  # no interval: fmt_num's rounding
    assert fmt_value(-0.0001, 0.3) == "0.00"  # no "-0.00"
    assert fmt_bounds(-0.229, -0.176, -0.203) == "-0.203 [-0.229, -0.176]"


# ----------------------------------------------------------------------------- plots


def test_comparison_plots_paired_differences_that_agree_with_the_tests(tmp_path: Path) -> None:
    _, comp = standard_comparison(tmp_path)
    html = unescape(render_comparison(comp, render_runs=False, bootstrap=FAST).read_text())
    for label in ("FID", "MAUVE", "KL-cosine", "held-out NLL (nats/token)"):
        assert f"{label}: each simulator's paired difference from mop" in html
        # The dot-and-interval chart of these metrics is gone (it showed ties the tests break).
        assert f"{label}: mean and 95% t-interval over seeds" not in html
    assert "copy rate: mean and 95% t-interval over seeds" in html  # unpaired: kept
    # Every plotted pair is a summary.json pair, with the table's interval and verdict:
    # an interval covering 0 is a tie, a Holm-corrected win clears 0.
    from mop_bench.report.aggregate import summarise
    from mop_bench.report.diff_plots import rows_vs
    from mop_bench.report.load import load_run
    from mop_bench.report.paired import analyse, apply_ranks

    rows = [r for r in json.loads((comp / "summary.json").read_text()) if r["table"] == "paired"]
    runs = [load_run(p) for p in sorted((comp.parent.parent / "ag_news").iterdir())]
    group = summarise(runs[0].comparable_key, runs)
    paired = analyse(group, comp / "paired_cache", FAST)
    apply_ranks(group, paired)
    seen = 0
    for m in paired.metrics:
        for d in rows_vs(paired, m, "mop", ["fixed-few-shot", "mop-no-exemplars"]):
            pair = next(
                r
                for r in rows
                if r["metric"] == m and {r["simulator"], r["versus"]} == {d.sim, "mop"}
            )
            if d.difference is None:
                assert pair["verdict"] == "not tested"
                continue
            sign = 1 if pair["simulator"] == d.sim else -1
            assert d.difference == pytest.approx(sign * pair["difference"])
            assert sorted((d.low, d.high)) == pytest.approx(
                sorted((sign * pair["diff_ci_low"], sign * pair["diff_ci_high"]))
            )
            covers_zero = d.low <= 0 <= d.high
            assert not (covers_zero and d.verdict != "tie"), (m, d)
            assert (d.verdict == "tie") == (pair["better"] is None)
            seen += 1
    assert seen >= 6
    # The planted shift: fixed-few-shot is worse than mop on FID, and the plot says so.
    fid = {d.sim: d for d in rows_vs(paired, "fid", "mop", ["fixed-few-shot"])}
    assert fid["fixed-few-shot"].verdict == "worse" and fid["fixed-few-shot"].low > 0


def test_the_plots_reference_is_a_recorded_option(tmp_path: Path) -> None:
    _, comp = standard_comparison(tmp_path)
    meta = json.loads((comp / "comparison.json").read_text())
    (comp / "comparison.json").write_text(json.dumps(meta | {"reference": "mop-no-exemplars"}))
    html = unescape(render_comparison(comp, render_runs=False, bootstrap=FAST).read_text())
    assert "FID: each simulator's paired difference from mop-no-exemplars" in html
    assert "the plots show differences from mop-no-exemplars" in html  # the headline says so
    html = unescape(
        render_comparison(
            comp, render_runs=False, bootstrap=FAST, reference="fixed-few-shot"
        ).read_text()
    )
    assert "FID: each simulator's paired difference from fixed-few-shot" in html
    with pytest.raises(ValueError, match=r"plot reference 'real' is not a paired simulator"):
        render_comparison(comp, render_runs=False, bootstrap=FAST, reference="real")
    (comp / "comparison.json").write_text(json.dumps(meta | {"reference": "gone"}))
    html = unescape(render_comparison(comp, render_runs=False, bootstrap=FAST).read_text())
    assert "comparison.json names 'gone' as the plots' reference" in html
    assert "FID: each simulator's paired difference from mop" in html


def test_plot_reference_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mop_bench.cli import main

    _, comp = standard_comparison(tmp_path)
    fast = ["--bootstrap-draws", str(FAST.draws), "--mauve-draws", str(FAST.mauve_draws), "-q"]
    assert main(["report", str(comp), "--plot-reference", "mop-no-exemplars", *fast]) == 0
    html = unescape((comp / "comparison.html").read_text())
    assert "FID: each simulator's paired difference from mop-no-exemplars" in html
    capsys.readouterr()
    assert main(["report", str(comp), "--plot-reference", "real", *fast]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a paired simulator" in err and "\n" not in err


def test_default_reference_is_mop_else_the_first_simulator() -> None:
    group = Group(key={}, runs=[], sims=["a", "mop", "real"], calibration={"real"})
    assert choose_reference(group, ["real", "a", "mop"], None) == ("mop", "")
    group.sims = ["b", "a", "real"]
    assert choose_reference(group, ["real", "b", "a"], None) == ("b", "")
    assert choose_reference(group, ["real", "b", "a"], None, recorded="a") == ("a", "")


# ----------------------------------------------------------------------------- headlines


def test_every_page_opens_with_the_summarys_verdicts_and_links_back(tmp_path: Path) -> None:
    results, comp = standard_comparison(tmp_path)
    page = render_comparison(comp, bootstrap=FAST)
    build_leaderboard(results, render_runs=False, bootstrap=FAST)
    want = best_by_summary(comp)
    assert want["fid"] == {"mop", "mop-no-exemplars"}  # the planted design
    html = page.read_text()
    head = html[html.index('<section class="headline">') :]
    head = head[: head.index("</section>")]
    for fact in ("smollm2-135m-instruct", "preset</b> default", "texts per simulator", "0, 1"):
        assert fact in head, fact
    assert headline_best(html) == want
    assert "mop and mop-no-exemplars tied for best" in head and "both beat fixed-few-shot" in head
    # Methods notes are folded; the page links to the index its render wrote.
    assert re.search(r'<details class="methods"><summary>How the cells, ranks', html)
    assert '<a href="../../index.html">index</a>' in html
    index = (results / "index.html").read_text()
    assert "<style>" in index and 'href="comparisons/planted/comparison.html"' in index
    assert headline_best(index) == want
    board = (results / "leaderboard.html").read_text()
    assert headline_best(board) == want  # same runs, same tests, same verdicts
    run_dir = next((results / "ag_news").glob("mop-[0-9a-f]*"))
    run_html = (run_dir / "report.html").read_text()
    assert '<a href="../../comparisons/planted/comparison.html">planted</a>' in run_html
    assert '<a href="../../index.html">index</a>' in run_html
    assert '<a href="../../leaderboard.html">leaderboard</a>' not in run_html  # not yet built
    assert headline_best(run_html) == want


def test_headlines_escape_what_they_quote(tmp_path: Path) -> None:
    run = make_run(tmp_path, "mop")
    config = json.loads((run / "config.json").read_text())
    config["spec"]["lm"]["model"] = SCRIPT
    (run / "config.json").write_text(json.dumps(config))
    html = render_run(run).read_text()
    assert "<script>" not in html and "&lt;script&gt;window.__pwned" in html
    assert "No comparison under this results folder lists this run" in html


# ----------------------------------------------------------------------------- fit plot


def _fit(run: Path, train: dict[str, Any]) -> None:
    fit = {"train": train, "taus": [0.6, 0.9, 1.0], "settings": {"top_m": 4}}
    (run / "fit" / "fit.json").write_text(json.dumps(fit))


def test_fit_plot_shows_persona_mass_and_passes_or_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path, "mop")
    steps = [5.0 - 0.1 * k for k in range(12)]  # 4 passes over 3 blocks
    record = {
        "persona_responsibility": [40.0, 0.0, 24.0],
        "personas_trained": [0, 2],
        "steps": steps,
        "blocks": 3,
        "epochs": [{"epoch": 0, "loss": 4.6}, {"epoch": 1, "loss": 4.0}],
        "lm_scorings": 10,
    }
    _fit(run, record)
    html = unescape(render_run(run).read_text())
    assert "share of the training texts' posterior mass" in html
    assert "mean over the 3 block(s) of each pass, 4 passes" in html
    assert html.count("data:image/svg+xml;base64,") == 4  # histogram, projection, 2 fit plots
    # Two epochs and nothing else: no 2-point "curve", and the page says why.
    _fit(run, {"epochs": record["epochs"], "lm_scorings": 10})
    html = render_run(run).read_text()
    assert html.count("data:image/svg+xml;base64,") == 2
    assert "No fit plot: the fit record holds neither" in html


def test_verdict_lines_say_what_the_tests_did_not_separate() -> None:
    from mop_bench.report.headline import verdicts

    def sim(name: str, rank: int | None) -> dict[str, Any]:
        return {"table": "simulators", "simulator": name, "metric": "fid", "rank": rank}

    def pair(a: str, b: str, better: str | None, p: float | None) -> dict[str, Any]:
        verdict = "not tested" if p is None else (f"{better} better" if better else "tie")
        return {"table": "paired", "metric": "fid", "simulator": a, "versus": b} | {
            "better": better,
            "p_holm": p,
            "verdict": verdict,
        }

    # a beats c, ties b; c beats b: a alone ranks first, yet does not beat b.
    rows = [sim("a", 1), sim("b", 2), sim("c", 2), pair("a", "b", None, 0.08)]
    rows += [pair("a", "c", "a", 0.001), pair("b", "c", "c", 0.01)]
    (line,) = verdicts(rows)
    assert line.best == ("a",)
    assert line.text == (
        "a ranks first, but is not separated from b (p_Holm = 0.080); beats c (p_Holm = 0.001)"
    )
    # Nothing tested (one simulator had no values): said so, no best named.
    (line,) = verdicts([sim("a", 1), sim("b", 1), pair("a", "b", None, None)])
    assert line.best == () and "no pair could be tested" in line.text
