"""Time FID, MAUVE and KL-cosine on 5,000 x 5,000 random 384-d unit-norm embeddings.

Usage: python benchmarks/metrics_speed.py [--n 5000] [--dim 384] [--seed 0]

Settings are MetricSpec's defaults (MAUVE with every seed in mauve_seeds, KL-cosine with
kl_max_pairs subsampling). The one-off import of mauve-text (which pulls in torch and
transformers, already loaded in a real run by the encoder) is timed separately and not
part of the total. Prints `name: value` lines last; the target is a total under 30 s on
a 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import time

import numpy as np

from mop_bench.metrics.fid import fid
from mop_bench.metrics.kl_cosine import kl_cosine
from mop_bench.metrics.mauve import mauve_score
from mop_bench.spec import MetricSpec

TARGET_TOTAL_SECONDS = 30


def unit_gaussian(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="texts per side")
    parser.add_argument("--dim", type=int, default=384, help="embedding dimension")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    spec = MetricSpec()
    rng = np.random.default_rng(args.seed)
    real = unit_gaussian(rng, args.n, args.dim)
    # A slightly shifted synthetic set so the metrics have something to measure.
    synth = unit_gaussian(rng, args.n, args.dim) + np.float32(0.02)
    synth /= np.linalg.norm(synth, axis=1, keepdims=True)

    start = time.perf_counter()
    importlib.import_module("mauve")
    import_s = time.perf_counter() - start

    timings: dict[str, float] = {}
    values: dict[str, float] = {}

    start = time.perf_counter()
    values["fid"] = fid(real, synth).value
    timings["fid"] = time.perf_counter() - start

    start = time.perf_counter()
    m = mauve_score(real, synth, seeds=spec.mauve_seeds, scaling=spec.mauve_scaling)
    timings["mauve"] = time.perf_counter() - start
    values["mauve"] = m.value

    start = time.perf_counter()
    kl = kl_cosine(
        real,
        synth,
        rng=np.random.default_rng(args.seed),
        bins=spec.kl_bins,
        epsilon=spec.kl_epsilon,
        max_pairs=spec.kl_max_pairs,
    )
    timings["kl_cosine"] = time.perf_counter() - start
    values["kl_cosine"] = kl.value

    print(f"# {args.n} x {args.n} embeddings, dim {args.dim}, seed {args.seed}")
    print(f"# cpus: {os.cpu_count()}, machine: {platform.machine()}, numpy {np.__version__}")
    print(f"# mauve seeds {list(spec.mauve_seeds)}, buckets {m.details['num_buckets']}")
    print(f"# kl pairs per side: {kl.details['real_pairs']['n_pairs_used']}")
    for name, value in values.items():
        print(f"# {name} value: {value:.4f}")
    print(f"mauve_import_seconds: {import_s:.2f}")
    for name, seconds in timings.items():
        print(f"{name}_seconds: {seconds:.2f}")
    print(f"total_seconds: {sum(timings.values()):.2f}")
    print(f"target_total_seconds: {TARGET_TOTAL_SECONDS}")


if __name__ == "__main__":
    main()
