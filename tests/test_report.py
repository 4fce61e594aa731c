"""Reports: escaping of untrusted text, metrics and paper numbers, comparability and
interval/tie logic (the sweep and the leaderboard: test_report_sweep_leaderboard.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mop_bench.report import (
    render_ablation,
    render_comparison,
    render_run,
)
from mop_bench.report.bootstrap import BootstrapSettings
from mop_bench.spec import BudgetSpec, RunSpec, SimulatorSpec

#: Few bootstrap draws: these tests check pages, test_paired.py checks the statistics.
FAST = BootstrapSettings(draws=100, mauve_draws=20)

SCRIPT = "<script>window.__pwned = 1; alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
LABELS = ["World", "Sports", "Business", "Sci/Tech"]

SIMS = {
    "mop": SimulatorSpec(name="mop"),
    "fixed-few-shot": SimulatorSpec(
        name="fixed-few-shot",
        personas="none",
        exemplars="fixed",
        gating="uniform",
        temperature="fixed",
    ),
    "real": SimulatorSpec(
        name="real",
        kind="real",
        personas="none",
        exemplars="none",
        gating="uniform",
        temperature="fixed",
    ),
    "mop-no-exemplars": SimulatorSpec(name="mop-no-exemplars", exemplars="none"),
    # The normalised score's default floor (tests/test_report_tables.py).
    "temperature-only": SimulatorSpec(
        name="temperature-only",
        personas="none",
        exemplars="none",
        gating="uniform",
        temperature="one_fitted",
    ),
}


def _metric(
    name: str, value: float, hib: bool, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "value": value,
        "settings": {"encoder": "mini", "normalize": True},
        "details": details or {},
        "higher_is_better": hib,
    }


def make_run(
    root: Path,
    sim: str = "mop",
    seed: int = 0,
    *,
    task: str = "ag_news",
    fid: float = 1.0,
    mauve: float = 0.8,
    kl: float = 0.1,
    n_samples: int = 300,
    personas: int = 16,
    pool: int = 500,
    fail_mauve: bool = False,
) -> Path:
    """A complete fake run directory with random embeddings and planted hostile text."""
    spec = RunSpec(
        task=task, simulator=SIMS[sim], budget=BudgetSpec(n_samples=n_samples), seed=seed
    )
    spec = RunSpec.from_json(
        spec.to_json() | {"simulator": spec.to_json()["simulator"] | {"n_personas": personas}}
    )
    spec = RunSpec.from_json(
        spec.to_json() | {"data": spec.to_json()["data"] | {"pool_size": pool}}
    )
    fp = spec.fingerprint()
    run = root / task / f"{sim}-{fp}"
    run.mkdir(parents=True)
    rng = np.random.default_rng(seed + 100 * len(sim))
    config = {
        "spec": spec.to_json(),
        "fingerprint": fp,
        "task": {
            "name": task,
            "version": 1,
            "label_names": LABELS,
            "description": "news topics",
            "citation": "Zhang et al. 2015",
        },
        "data": {
            "hash": "abc123",
            "pool_size": pool,
            "golden_size": 1000,
            "sources": {"train": "x.parquet"},
        },
        "comparable_key": spec.comparable_key(),
        "created": "2025-01-01T00:00:00",
    }
    (run / "config.json").write_text(json.dumps(config))
    gens = []
    for i in range(12):
        text = f"synthetic text {i} about topic {i % 4}"
        if i == 0:
            text = f"planted {SCRIPT} and {IMG} end"
        gens.append(
            {
                "index": i,
                "context": f"a {LABELS[i % 4]} article",
                "label": i % 4,
                "text": text,
                "details": {"persona": 3, "temperature": 0.9, "prompt": "long prompt " * 20},
            }
        )
    (run / "generations.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens))
    golden = [
        {"label": i % 4, "context": f"ctx {i}", "text": f"real golden text number {i}"}
        for i in range(8)
    ]
    (run / "golden_sample.jsonl").write_text("".join(json.dumps(g) + "\n" for g in golden))
    edges = np.linspace(-1, 1, 51)
    real_hist = np.exp(-((edges[:-1] - 0.3) ** 2) / 0.02)
    synth_hist = np.exp(-((edges[:-1] - 0.5) ** 2) / 0.01)
    # Shaped like mop_bench.metrics' output (MAUVE's spread comes from per_seed).
    per_seed = {"25": mauve, "26": mauve - 0.004, "27": mauve + 0.002}
    hists = {
        "bin_edges": edges.tolist(),
        "real_hist": (real_hist / real_hist.sum()).tolist(),
        "synth_hist": (synth_hist / synth_hist.sum()).tolist(),
    }
    by_label = {
        n: {"fid": 1.5 + k, "kl_cosine": 0.2, "n_real": 20} for k, n in enumerate(LABELS[:3])
    }
    metrics: dict[str, Any] = {
        "fid": _metric("fid", fid, False),
        "mauve": _metric("mauve", mauve, True, {"per_seed": per_seed, "mean": mauve}),
        "kl_cosine": _metric("kl_cosine", kl, False, hists),
        "copy_rate": _metric("copy_rate", 0.01, False),
        "per_label": _metric(
            "per_label", 2.5, False, {"labels": by_label, "skipped": {"Sci/Tech": "too few texts"}}
        ),
        "_errors": {},
        "_inputs": {"n_real": 80},
    }
    if task == "ag_news":
        f1 = {n: 0.7 + 0.01 * k for k, n in enumerate(LABELS)}
        metrics["downstream_f1"] = _metric(
            "downstream_f1", 0.71, True, {"per_label_f1": f1, "real_pool_f1": 0.8842}
        )
    if fail_mauve:
        del metrics["mauve"]
        metrics["_errors"] = {"mauve": "ValueError: too few samples <b>"}
    (run / "metrics.json").write_text(json.dumps(metrics))
    # One golden set per seed, shared by every simulator of that seed (as in a comparison).
    golden_rng = np.random.default_rng(seed)
    np.savez(
        run / "embeddings.npz",
        real=golden_rng.normal(size=(80, 16)).astype(np.float32),
        synth=rng.normal(size=(60, 16)).astype(np.float32),
        real_labels=golden_rng.integers(0, 4, 80),
        synth_labels=rng.integers(0, 4, 60),
    )
    if sim.startswith("mop"):
        (run / "fit").mkdir()
        fit = {
            "curve": [{"epoch": e, "loss": 3.0 - 0.3 * e} for e in range(5)],
            "scoring": {"passes": 512, "tokens": 30000, "seconds": 40.0},
            "wall_seconds": 55.0,
            "settings": {"top_m": 4, "lr": 0.05},
        }
        (run / "fit" / "fit.json").write_text(json.dumps(fit))
        personas = [
            {
                "index": k,
                "text": f"You are persona {k}" + (f" {IMG}" if k == 1 else ""),
                "source": "synthesized",
                "cluster_size": 10 + k,
                "examples": [f"example {k}"],
            }
            for k in range(3)
        ]
        (run / "fit" / "personas.json").write_text(json.dumps(personas))
    (run / "timing.json").write_text(json.dumps({"latest": {"seconds": {"simulate": 12.5}}}))
    (run / "environment.json").write_text(
        json.dumps({"packages": {"torch": "2.13"}, "git": "deadbeef"})
    )
    return run


def make_comparison(root: Path, *, odd_one: bool = True) -> Path:
    comp = root / "comp"
    comp.mkdir()
    runs = []
    for seed in (0, 1, 2):
        runs.append(
            make_run(comp, "mop", seed, fid=0.9 + 0.01 * seed, mauve=0.85 + 0.01 * seed, kl=0.07)
        )
        runs.append(
            make_run(
                comp, "fixed-few-shot", seed, fid=2.0 + 0.02 * seed, mauve=0.6, kl=0.2 + 0.01 * seed
            )
        )
        runs.append(make_run(comp, "real", seed, fid=0.4, mauve=0.99, kl=0.01))
    if odd_one:
        runs.append(make_run(comp, "mop-no-exemplars", 0, n_samples=50, fid=3.0))
    payload = {
        "task": "ag_news",
        "sims": ["mop", "fixed-few-shot", "real"],
        "seeds": [0, 1, 2],
        "runs": [str(r.relative_to(comp)) for r in runs],
        "budget": BudgetSpec().__dict__,
    }
    (comp / "comparison.json").write_text(json.dumps(payload))
    return comp


def _assert_safe(html: str) -> None:
    assert "<script>" not in html and "<img src=x" not in html
    assert "onerror=alert(1)>" not in html
    assert "&lt;script&gt;window.__pwned = 1; alert(1)&lt;/script&gt;" in html


# ----------------------------------------------------------------------------- run


def test_run_report_escapes_and_shows_everything(tmp_path: Path) -> None:
    run = make_run(tmp_path, "mop", fid=0.9512, mauve=0.8731)
    out = render_run(run)
    assert out == run / "report.html"
    html = out.read_text()
    _assert_safe(html)
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html  # the persona and the sample
    assert "0.951" in html and "0.873" in html  # our metrics
    assert "↓ lower is better" in html and "↑ higher is better" in html
    assert "3.535" in html and "0.871" in html  # Table 1 AGNews ZeroGen FID, MoP MAUVE
    assert "3.694" in html  # Table 4 row (AGNews)
    assert "0.903" in html  # Table 2 real-data F1
    assert "ordering" in html and "relative gaps" in html
    assert html.count("data:image/svg+xml;base64,") == 3  # histogram, projection, fit curve
    assert "You are persona 2" in html and "30,000" in html  # personas, scoring cost
    assert "Sci/Tech" in html and "2.500" in html  # per-label table (Sports FID)
    assert "Sci/Tech: not scored per label (too few texts)" in html
    assert "0.730" in html and "F1 0.884" in html  # per-label downstream F1, real-pool note
    assert "0.006" in html  # MAUVE spread computed from per_seed (max - min)
    assert "simulate" in html  # timing.json
    assert "http://" not in html and "https://" not in html  # offline: nothing external
    assert render_run(run).read_text() == html  # deterministic: same files, same bytes


def test_run_report_shows_failed_metric_and_missing_files(tmp_path: Path) -> None:
    run = make_run(tmp_path, "fixed-few-shot", task="yelp", fail_mauve=True)
    (run / "embeddings.npz").unlink()
    html = render_run(run).read_text()
    assert "Metrics that failed" in html and "too few samples &lt;b&gt;" in html
    assert "embeddings.npz not found" in html
    assert "1.769" in html  # Yelp PICLe FID from Table 1
    assert "Table 4" not in html  # ablations are AGNews-only
    assert "Personas and gate fit" not in html


def test_run_report_errors_name_the_file(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    (run / "golden_sample.jsonl").write_text('{"label": 0, "text": "ok"}\nnot json\n')
    with pytest.raises(ValueError, match=r"golden_sample\.jsonl: line 2"):
        render_run(run)
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        render_run(tmp_path)


# ----------------------------------------------------------------------------- comparison


def test_comparison_excludes_incomparable_and_ranks_with_ties(tmp_path: Path) -> None:
    comp = make_comparison(tmp_path)
    html = render_comparison(comp, bootstrap=FAST).read_text()
    _assert_safe_page(html)
    assert "mop-no-exemplars" in html
    assert "budget.n_samples: 50 (vs 300)" in html  # the reason it was excluded
    assert "0.910 ± 0.025" in html  # mop FID mean over seeds 0.90/0.91/0.92 (t-interval)
    # The page says what the calibration row shows (the spec default: length-matched).
    assert "calibration (length-matched to 64 tokens), not ranked" in html
    assert "Holm-corrected" in html and "intervals overlap" in html  # both rules explained
    assert "Paired differences" in html and "fixed-few-shot − mop" in html
    # links to each run's report, relative, and the reports exist
    for run in (comp / "ag_news").iterdir():
        if "mop-no-exemplars" in run.name:
            continue
        assert f'href="ag_news/{run.name}/report.html"' in html
        assert (run / "report.html").is_file()
    assert "3.535" in html  # paper rows beside


def _assert_safe_page(html: str) -> None:
    assert "<script>" not in html and "<img src=x" not in html


def test_ablation_page_shows_table4(tmp_path: Path) -> None:
    comp = make_comparison(tmp_path, odd_one=False)
    extra = make_run(comp, "mop-no-exemplars", 0, fid=3.2)
    data = json.loads((comp / "comparison.json").read_text())
    data["runs"].append(str(extra))
    data["ablation"] = True  # as the ablate command writes it
    (comp / "comparison.json").write_text(json.dumps(data))
    out = render_comparison(comp, render_runs=False, bootstrap=FAST)
    assert out.name == "ablation.html"
    html = out.read_text()
    assert "w/o exemplars" in html and "3.694" in html and "0.560" in html
    assert "+251.6% vs MoP" in html  # 3.2 vs our MoP's 0.91 ...
    assert "+288.4% vs MoP" in html  # ... beside the paper's 3.694 vs 0.951
    assert "Paired differences" in html and "mop − mop-no-exemplars" in html
    assert render_ablation(comp, render_runs=False, bootstrap=FAST) == out


def test_single_seed_says_no_interval(tmp_path: Path) -> None:
    comp = tmp_path / "c1"
    comp.mkdir()
    runs = [make_run(comp, "mop", 0, fid=0.9), make_run(comp, "fixed-few-shot", 0, fid=2.0)]
    (comp / "comparison.json").write_text(
        json.dumps({"task": "ag_news", "runs": [str(r) for r in runs], "budget": {}})
    )
    html = render_comparison(comp, bootstrap=FAST).read_text()
    assert "0.900 (1 seed, no interval)" in html
