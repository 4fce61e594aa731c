"""Integration with the real default encoder (all-MiniLM-L6-v2) on the real data mirrors:
held-out real texts score far better than a mismatched population, and a second run
reads the golden embeddings back from the cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mop_bench import store
from mop_bench.runner import RunOptions, Workspace, build_spec, run

DATA = Path(
    os.environ.get("MOP_BENCH_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA / "ag_news").is_dir(), reason=f"data mirrors not found at {DATA}"),
]


def test_real_calibration_beats_a_mismatched_population(tmp_path, monkeypatch):
    monkeypatch.setenv("MOP_BENCH_CACHE", str(tmp_path / "cache"))
    overrides = {
        "data.data_dir": str(DATA),
        "n": 300,
        "golden": 400,
        "pool": 200,
        "metrics.mauve_seeds": "25",
    }
    spec = build_spec("ag_news", "real", preset="smoke", overrides=overrides)
    ws = Workspace(progress=False)
    run_dir = run(spec, RunOptions(results_dir=tmp_path / "res", progress=False), ws)
    metrics = store.read_json(run_dir / "metrics.json")
    fid_real, mauve_real = metrics["fid"]["value"], metrics["mauve"]["value"]

    # A deliberately mismatched population: real IMDB reviews against AG News' golden set.
    from mop_bench.data import TASKS, load_task
    from mop_bench.metrics import score_all

    imdb = load_task(TASKS.get("imdb"), spec.data, seed=0, progress=False)
    agnews = ws.task(spec)
    encoder = ws.encoder(spec.encoder)
    real = encoder.encode([e.text for e in agnews.golden])
    other = encoder.encode([e.text for e in imdb.pool[:300]])
    results, errors = score_all(
        real=real, synth=other, real_labels=None, synth_labels=None,
        pool=encoder.encode([e.text for e in agnews.pool]), pool_labels=None,
        pool_texts=[e.text for e in agnews.pool], synth_texts=[e.text for e in imdb.pool[:300]],
        label_names=(), spec=spec.metrics, seed=0, names=["fid", "mauve"],
    )  # fmt: skip
    assert not errors
    assert np.isfinite(fid_real) and fid_real < results["fid"].value / 2
    assert mauve_real > results["mauve"].value + 0.5
    assert (run_dir / "report.html").stat().st_size > 10_000

    # Same command again, fresh workspace: the golden set comes from the embedding cache.
    ws2 = Workspace(progress=False)
    enc2 = ws2.encoder(spec.encoder)
    run(spec, RunOptions(results_dir=tmp_path / "res2", progress=False, report=False), ws2)
    assert enc2.cache_misses == 0 and enc2.cache_hits >= len(agnews.golden)
