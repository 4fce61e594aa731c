"""Paired comparisons: the bootstrap metrics match the metric functions, the test keeps
its level on planted null data and finds planted shifts, and comparison pages and
exports carry the paired tables, ranks and power lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_report import make_run

from mop_bench.metrics.fid import fid
from mop_bench.metrics.kl_cosine import kl_cosine
from mop_bench.metrics.mauve import mauve_score
from mop_bench.report import bootstrap as bs
from mop_bench.report import render_comparison
from mop_bench.report.aggregate import metric_label

FAST = bs.BootstrapSettings(draws=200, mauve_draws=20)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# ----------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(("n", "dim"), [(30, 48), (80, 12)])  # n <= d and n > d paths
def test_fid_draws_equal_metric_fid(n: int, dim: int) -> None:
    rng = np.random.default_rng(1)
    real = _unit(rng.normal(size=(120, dim)))
    synths = [_unit(rng.normal(size=(n, dim)) + 0.2 * k) for k in range(2)]
    idx_s, idx_r = bs.resample_indices(FAST, 3, n, 120)
    got = bs.fid_draws(real, synths, idx_s[:4], idx_r[:4])
    for k in range(2):
        for b in range(4):
            want = fid(real[idx_r[b]], synths[k][idx_s[b]]).value
            assert got[k, b] == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("within", [False, True])
def test_kl_unit_weights_equal_metric_kl_cosine(within: bool) -> None:
    rng = np.random.default_rng(2)
    real, synth = _unit(rng.normal(size=(90, 8))), _unit(rng.normal(size=(40, 8)) + 0.3)
    rl, sl = rng.integers(0, 3, 90), rng.integers(0, 3, 40)
    cfg = bs.KLSettings(bins=20, epsilon=1e-6, max_pairs=10_000, within_label=within)
    real_pairs = bs.pair_bins(real, rl, cfg, np.random.default_rng(0))
    synth_pairs = bs.pair_bins(synth, sl, cfg, np.random.default_rng(0))
    got = bs.kl_draws(real_pairs, [synth_pairs], np.arange(40)[None], np.arange(90)[None], cfg)
    want = kl_cosine(
        real,
        synth,
        rng=np.random.default_rng(0),
        bins=20,
        max_pairs=10_000,
        within_label=within,
        real_labels=rl,
        synth_labels=sl,
    ).value
    assert got[0, 0] == pytest.approx(want, rel=1e-9)
    # A resample that repeats an item adds no pair of that item with its own copy.
    counts = np.zeros(40)
    counts[[0, 1]] = [3, 1]
    hist = bs.weighted_hist(synth_pairs, counts, cfg)
    assert hist.max() > 1 - 1e-3  # the one pair (0, 1), weight 3: one bin holds it all


def test_holm_worked_example() -> None:
    # sorted p: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.06, 0.04)
    assert bs.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert bs.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_diff_test_refuses_inconsistent_inputs() -> None:
    t = bs.diff_test(0.0, np.zeros(50), 0.05, 0.8)
    assert t.p == 1.0 and t.se == 0.0
    with pytest.raises(ValueError, match="all equal"):
        bs.diff_test(0.3, np.zeros(50), 0.05, 0.8)
    with pytest.raises(ValueError, match="finite"):
        bs.diff_test(0.1, np.array([1.0, np.nan]), 0.05, 0.8)


# ----------------------------------------------------------------------------- level, power


NULL = bs.BootstrapSettings(draws=100)  # 100 draws estimate an SE to about 7%


def _replicate(rng: np.random.Generator, shift: float, seeds: int = 1) -> dict[str, float]:
    """One paired experiment on embeddings: p-values for FID and KL-cosine.

    Both simulators differ from the golden distribution (offset mean, narrower spread),
    as real simulators do; B is A shifted by `shift`. (Where a simulator matches the
    golden distribution exactly, FID sits at its minimum, the bootstrap over-estimates
    its spread and the test is conservative; see docs/report.md.) The shift also narrows
    B's spread, which moves its pairwise cosines (what KL-cosine sees).
    """
    dim, n, n_real = 6, 150, 200
    mix = np.eye(dim) + 0.3 * rng.normal(size=(dim, dim))
    values: dict[str, list[float]] = {"fid": [], "kl_cosine": []}
    draws: dict[str, list[np.ndarray]] = {k: [] for k in values}
    cfg = bs.KLSettings(bins=20, epsilon=1e-6, max_pairs=20_000, within_label=False)
    for s in range(seeds):
        real = rng.normal(size=(n_real, dim)) @ mix + 1.0
        a = 0.9 * rng.normal(size=(n, dim)) @ mix + 1.5
        b = 0.9 * (1 - shift / 2) * rng.normal(size=(n, dim)) @ mix + 1.5 + shift
        a32, b32, r32 = (x.astype(np.float32) for x in (a, b, real))
        idx_s, idx_r = bs.resample_indices(NULL, s, n, n_real)
        fd = bs.fid_draws(r32, [a32, b32], idx_s, idx_r)
        values["fid"].append(fid(r32, a32).value - fid(r32, b32).value)
        draws["fid"].append(fd[0] - fd[1])
        rp = bs.pair_bins(r32, None, cfg, np.random.default_rng(0))
        sp = [bs.pair_bins(x, None, cfg, np.random.default_rng(0)) for x in (a32, b32)]
        kd = bs.kl_draws(rp, sp, idx_s, idx_r, cfg)
        full = bs.kl_draws(rp, sp, np.arange(n)[None], np.arange(n_real)[None], cfg)
        values["kl_cosine"].append(full[0, 0] - full[1, 0])
        draws["kl_cosine"].append(kd[0] - kd[1])
    return {
        m: bs.diff_test(float(np.mean(values[m])), np.mean(draws[m], axis=0), 0.05, 0.8).p
        for m in values
    }


def _nll_replicate(rng: np.random.Generator, shift: float, seeds: int = 1) -> float:
    """The p-value of a held-out NLL difference on 200 shared texts per seed (the
    default subset size): per-text difficulty is shared by both models, their own
    noise is not."""
    values, draws = [], []
    for s in range(seeds):
        ntok = rng.integers(5, 30, 200).astype(float)
        hard = rng.gamma(2.0, 1.0, 200)
        lp_a = -ntok * (hard + rng.normal(0, 0.3, 200)).clip(0.05)
        lp_b = -ntok * (hard + shift + rng.normal(0, 0.3, 200)).clip(0.05)
        idx = bs.rng(NULL, s, "heldout_nll").integers(0, 200, (NULL.draws, 200))
        values.append(lp_b.sum() / ntok.sum() - lp_a.sum() / ntok.sum())
        draws.append(bs.nll_draws(lp_a, ntok, idx) - bs.nll_draws(lp_b, ntok, idx))
    return bs.diff_test(float(np.mean(values)), np.mean(draws, axis=0), 0.05, 0.8).p


def _check_null(name: str, p: np.ndarray) -> None:
    fpr = float((p < 0.05).mean())
    assert fpr <= 0.07, f"{name}: false-positive rate {fpr:.3f} at nominal 0.05"
    # roughly uniform: about a quarter of the p-values in each quartile
    counts = np.histogram(p, bins=[0, 0.25, 0.5, 0.75, 1.0])[0]
    assert counts.min() >= 0.15 * p.size, f"{name}: p-values far from uniform: {counts}"


def test_null_false_positive_rate_and_uniform_p() -> None:
    rng = np.random.default_rng(20250101)
    ps = [_replicate(rng, 0.0) for _ in range(200)]
    for m in ("fid", "kl_cosine"):
        _check_null(m, np.array([r[m] for r in ps]))
    # NLL is cheap: 1000 replicates, so chance alone cannot push a calibrated test past 0.07
    _check_null("heldout_nll", np.array([_nll_replicate(rng, 0.0) for _ in range(1000)]))


def test_planted_shift_is_detected() -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        p = _replicate(rng, 0.5, seeds=2)  # two seeds pooled, as a comparison does
        assert max(p.values()) < 0.001, p
        assert _nll_replicate(rng, 0.5, seeds=2) < 0.001


def test_mauve_path_null_and_shift() -> None:
    """MAUVE is too slow for hundreds of replicates: a few, for its path and direction."""
    rng = np.random.default_rng(11)
    dim, n, n_real = 6, 60, 100
    settings = bs.BootstrapSettings(draws=20, mauve_draws=30)
    for shift, want_small in ((0.0, False), (1.5, True)):
        real = rng.normal(size=(n_real, dim)).astype(np.float32)
        a = rng.normal(size=(n, dim)).astype(np.float32)
        b = (rng.normal(size=(n, dim)) + shift).astype(np.float32)
        idx_s, idx_r = bs.resample_indices(settings, 0, n, n_real)
        da = bs.mauve_draws(real, a, idx_s[:30], idx_r[:30], kmeans_seed=25, scaling=5.0)
        db = bs.mauve_draws(real, b, idx_s[:30], idx_r[:30], kmeans_seed=25, scaling=5.0)
        diff = mauve_score(real, a, seeds=(25,)).value - mauve_score(real, b, seeds=(25,)).value
        t = bs.diff_test(diff, da - db, 0.05, 0.8)
        assert (t.p < 0.01) == want_small, (shift, t)
        assert t.ci_low < t.difference < t.ci_high


# ----------------------------------------------------------------------------- pages


def _nll(value: float, uids: list[str]) -> dict:
    """A heldout_nll result whose rows add up to `value` nats per token."""
    rng = np.random.default_rng(len(uids))
    ntok = rng.integers(5, 20, len(uids))
    share = rng.dirichlet(np.ones(len(uids))) * value * ntok.sum()
    rows = [
        {"uid": u, "logprob": -float(x), "n_tokens": int(t)}
        for u, x, t in zip(uids, share, ntok, strict=True)
    ]
    return {
        "name": "heldout_nll",
        "value": value,
        "higher_is_better": False,
        "settings": {"subset": len(uids), "seed": 0},
        "details": {"rows": rows},
    }


def planted_comparison(root: Path, *, nll_for: tuple[str, ...] = ("mop", "fixed-few-shot")) -> Path:
    """mop and mop-no-exemplars drawn like the golden set, fixed-few-shot shifted away; the
    recorded FID/KL-cosine/MAUVE are the metric functions' values on the stored embeddings."""
    comp = root / "comp"
    comp.mkdir()
    runs = []
    for seed in (0, 1):
        golden = np.random.default_rng(100 + seed)
        real = _unit(golden.normal(size=(120, 8)) + 1.0)
        for sim in ("mop", "fixed-few-shot", "mop-no-exemplars", "real"):
            run = make_run(comp, sim, seed)
            rng = np.random.default_rng([seed, len(sim)])
            shift = 0.6 if sim == "fixed-few-shot" else 0.0
            synth = _unit(rng.normal(size=(60, 8)) + 1.0 + shift)
            np.savez(run / "embeddings.npz", real=real, synth=synth)
            metrics = json.loads((run / "metrics.json").read_text())
            metrics["fid"]["value"] = fid(real, synth).value
            kl = kl_cosine(real, synth, rng=np.random.default_rng(0), bins=50)
            metrics["kl_cosine"]["value"] = kl.value
            metrics["mauve"]["value"] = mauve_score(real, synth, seeds=(25,)).value
            metrics["mauve"]["details"] = {}
            if sim in nll_for:
                nll = 2.0 + (0.5 if sim == "fixed-few-shot" else 0.0) + 0.01 * seed
                metrics["heldout_nll"] = _nll(nll, [f"golden:{i}" for i in range(30)])
            (run / "metrics.json").write_text(json.dumps(metrics))
            runs.append(run)
    (comp / "comparison.json").write_text(
        json.dumps({"task": "ag_news", "runs": [str(r) for r in runs], "budget": {}})
    )
    return comp


def test_comparison_page_and_exports_carry_paired_tables(tmp_path: Path) -> None:
    import pandas as pd

    comp = planted_comparison(tmp_path)
    html = render_comparison(comp, render_runs=False, bootstrap=FAST).read_text()
    assert "Paired differences" in html and "fixed-few-shot − mop" in html
    assert "mop better" in html and "tie" in html
    assert html.count("Power: at n = 60 × 2 seeds (golden set 120), a ") == 4
    # heldout_nll: mop-no-exemplars has none, so its pairs are not tested, and say why
    assert "mop-no-exemplars has no heldout_nll (seeds 0, 1)" in html

    df = pd.read_csv(comp / "summary.csv")
    paired = df[df.table == "paired"]
    assert len(paired) == 4 * 3  # 4 metrics x 3 pairs (the calibration row is no pair)
    row = paired[(paired.metric == "fid") & (paired.simulator == "fixed-few-shot")]
    row = row[row.versus == "mop"].iloc[0]
    assert row.difference > 0 and row.diff_ci_low > 0 and row.better == "mop"
    assert row.n_draws == 200 and row.bootstrap_seed == 0 and row.p_holm <= 0.05
    assert row.mde == pytest.approx(2.8016 * row.diff_se, rel=1e-4)
    mauve_row = paired[(paired.metric == "mauve") & (paired.versus == "mop")].iloc[0]
    assert mauve_row.n_draws == 20
    tie = paired[(paired.metric == "fid") & (paired.simulator == "mop")].iloc[0]
    assert tie.versus == "mop-no-exemplars" and tie.verdict == "tie"
    untested = paired[(paired.metric == "heldout_nll") & (paired.versus == "mop-no-exemplars")]
    assert (untested.verdict == "not tested").all() and untested.difference.isna().all()
    # ranks come from the corrected tests: the shifted simulator is beaten by both others
    sims = df[(df.table == "simulators") & (df.metric == "fid")].set_index("simulator")
    assert sims.loc["fixed-few-shot", "rank"] == 3 and sims.loc["mop", "rank"] == 1
    assert sims.loc["mop-no-exemplars", "rank"] == 1 and pd.isna(sims.loc["real", "rank"])
    md = (comp / "summary.md").read_text()
    assert "## Paired differences" in md and f"### {metric_label('heldout_nll')} ↓" in md
    assert json.loads((comp / "summary.json").read_text())[-1]["table"] == "paired"


def test_paired_draws_are_cached_per_run(tmp_path: Path) -> None:
    from mop_bench.report.paired import CACHE_DIR

    comp = planted_comparison(tmp_path)
    render_comparison(comp, render_runs=False, bootstrap=FAST)
    first = (comp / "summary.csv").read_bytes()
    cached = sorted((comp / CACHE_DIR).glob("*.npz"))
    assert len(cached) == 6  # 3 simulators x 2 seeds; the calibration row has none
    stamp = {p: p.stat().st_mtime_ns for p in cached}
    render_comparison(comp, render_runs=False, bootstrap=FAST)
    assert (comp / "summary.csv").read_bytes() == first
    assert {p: p.stat().st_mtime_ns for p in cached} == stamp  # nothing recomputed
    # changing a run's metrics invalidates its entry only
    run = next((comp / "ag_news").glob("mop-no-exemplars-*"))
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["fid"]["settings"]["note"] = "edited"
    (run / "metrics.json").write_text(json.dumps(metrics))
    render_comparison(comp, render_runs=False, bootstrap=FAST)
    assert len(list((comp / CACHE_DIR).glob("*.npz"))) == 7


def test_inconsistent_inputs_stop_with_the_file_named(tmp_path: Path) -> None:
    comp = planted_comparison(tmp_path)
    run = next((comp / "ag_news").glob("mop-[0-9a-f]*"))
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["heldout_nll"]["value"] += 0.1  # rows no longer add up to the value
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match=r"metrics\.json: heldout_nll\.details\.rows give"):
        render_comparison(comp, render_runs=False, bootstrap=FAST)


def test_unpaired_golden_set_is_reported_not_tested(tmp_path: Path) -> None:
    comp = planted_comparison(tmp_path, nll_for=())
    run = next((comp / "ag_news").glob("mop-no-exemplars-*"))
    with np.load(run / "embeddings.npz") as npz:
        arrays = dict(npz)
    arrays["real"] = arrays["real"][::-1].copy()  # another golden order: not paired
    np.savez(run / "embeddings.npz", **arrays)
    html = render_comparison(comp, render_runs=False, bootstrap=FAST).read_text()
    assert "golden set or sample count differs from fixed-few-shot" in html
    assert f"<h3>{metric_label('heldout_nll')}" not in html  # no run recorded it: no table


def test_report_command_takes_bootstrap_settings(tmp_path: Path) -> None:
    from mop_bench.cli import main

    comp = planted_comparison(tmp_path, nll_for=())
    assert main(["report", str(comp), "--bootstrap-draws", "50", "--mauve-draws", "20"]) == 0
    rows = json.loads((comp / "summary.json").read_text())
    draws = {(r["metric"], r["n_draws"]) for r in rows if r["table"] == "paired"}
    assert draws == {("fid", 50), ("kl_cosine", 50), ("mauve", 20)}
    assert main(["report", str(comp), "--bootstrap-draws", "5"]) == 2  # one-line error


def test_one_simulator_has_no_paired_tables(tmp_path: Path) -> None:
    comp = tmp_path / "c"
    comp.mkdir()
    runs = [make_run(comp, "mop", 0), make_run(comp, "real", 0)]
    (comp / "comparison.json").write_text(
        json.dumps({"task": "ag_news", "runs": [str(r) for r in runs], "budget": {}})
    )
    html = render_comparison(comp, render_runs=False, bootstrap=FAST).read_text()
    assert "Paired differences" not in html and not (comp / "paired_cache").exists()
    rows = json.loads((comp / "summary.json").read_text())
    assert {r["table"] for r in rows} == {"simulators"}
