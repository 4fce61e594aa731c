"""Time the paired bootstrap of a default-size comparison: 5 simulators x 3 seeds,
n = 300 samples, a 1,000-text golden set, 384-d unit-norm embeddings, 200 held-out rows.

Usage: python benchmarks/paired_speed.py [--sims 5] [--seeds 3] [--n 300] [--golden 1000]
       [--draws 1000] [--mauve-draws 200]

Writes run directories (embeddings.npz, metrics.json with values from the metric
functions) to a temporary folder, then times `report.paired.analyse` cold (every draw
computed; seconds per metric) and warm (every draw from the per-run cache). Prints
`name: value` lines last.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mop_bench.metrics.fid import fid
from mop_bench.metrics.kl_cosine import kl_cosine
from mop_bench.metrics.mauve import mauve_score
from mop_bench.report.aggregate import summarise
from mop_bench.report.bootstrap import BootstrapSettings
from mop_bench.report.load import load_run
from mop_bench.report.paired import analyse


def clustered(rng: np.random.Generator, centers: np.ndarray, n: int, spread: float) -> np.ndarray:
    """Unit-norm points around `centers` (text embeddings cluster by topic)."""
    x = (
        centers[rng.integers(0, len(centers), n)] * 0.6
        + rng.normal(size=(n, centers.shape[1])) * spread
    )
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def write_run(
    root: Path, sim: str, seed: int, real: np.ndarray, synth: np.ndarray, nll: float
) -> None:
    run = root / f"{sim}-s{seed}"
    run.mkdir(parents=True)
    spec = {"simulator": {"name": sim, "kind": "mop"}, "seed": seed, "task": "bench"}
    (run / "config.json").write_text(json.dumps({"spec": spec, "comparable_key": {"bench": 1}}))
    np.savez(run / "embeddings.npz", real=real, synth=synth)
    rng = np.random.default_rng([seed, len(sim)])
    ntok = rng.integers(10, 60, 200)
    share = rng.dirichlet(np.ones(200)) * nll * ntok.sum()
    rows = [
        {"uid": f"golden:{i}", "logprob": -float(x), "n_tokens": int(t)}
        for i, (x, t) in enumerate(zip(share, ntok, strict=True))
    ]
    metrics = {
        "fid": fid(real, synth).to_json(),
        "mauve": mauve_score(real, synth, seeds=(25,)).to_json(),
        "kl_cosine": kl_cosine(real, synth, rng=np.random.default_rng(seed)).to_json(),
        "heldout_nll": {
            "value": nll,
            "higher_is_better": False,
            "settings": {},
            "details": {"rows": rows},
        },
    }
    (run / "metrics.json").write_text(json.dumps(metrics))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--golden", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--mauve-draws", type=int, default=200)
    args = parser.parse_args()
    settings = BootstrapSettings(draws=args.draws, mauve_draws=args.mauve_draws)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(30, args.dim))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for seed in range(args.seeds):
            real = clustered(rng, centers, args.golden, 0.08)
            for k in range(args.sims):
                synth = clustered(rng, centers[: 10 + 2 * k], args.n, 0.05 + 0.005 * k)
                write_run(root / "runs", f"sim{k}", seed, real, synth, 2.0 + 0.02 * k)
        runs = [load_run(p) for p in sorted((root / "runs").iterdir())]
        group = summarise(runs[0].comparable_key, runs)
        start = time.perf_counter()
        cold = analyse(group, root / "cache", settings)
        cold_s = time.perf_counter() - start
        start = time.perf_counter()
        analyse(group, root / "cache", settings)
        warm_s = time.perf_counter() - start
    for m in ("fid", "mauve", "kl_cosine"):
        verdicts = [r.verdict for r in cold.pairs[m]]
        print(f"{m} verdicts: {sum(v != 'tie' for v in verdicts)} of {len(verdicts)} pairs differ")
    for m, s in cold.seconds.items():
        print(f"{m}_seconds: {s:.1f}")
    print(f"cold_seconds: {cold_s:.1f}")
    print(f"warm_seconds: {warm_s:.2f}")


if __name__ == "__main__":
    main()
