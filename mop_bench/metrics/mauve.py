"""MAUVE on precomputed embeddings (mauve-text's feature path, never its text path,
which would download gpt2-large).

Library defaults throughout (buckets = n/10, PCA to 90% variance, 5 k-means restarts);
the scaling factor and the k-means seeds come from the MetricSpec. MAUVE moves by about
0.005-0.01 across k-means seeds, so it is computed once per seed: the first seed's value
is reported, all of them give the spread.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Any

import numpy as np

from mop_bench.metrics.base import ScoreInputs, check_embeddings
from mop_bench.types import MetricResult

_FD_LOCK = threading.Lock()

#: The library's defaults, passed explicitly so what is recorded is what ran.
LIBRARY_DEFAULTS: dict[str, Any] = {
    "num_buckets": "auto",
    "kmeans_explained_var": 0.9,
    "kmeans_num_redo": 5,
    "kmeans_max_iter": 500,
    "divergence_curve_discretization_size": 25,
}


@contextlib.contextmanager
def _captured_output(sink: list[str]) -> Iterator[None]:
    """Capture stdout/stderr at the file-descriptor level: faiss prints its warnings
    from C++ ("please provide at least N training points"), which Python-level
    redirection cannot catch. The text lands in `sink`, to be kept in details."""
    with _FD_LOCK, tempfile.TemporaryFile(mode="w+b") as tmp:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            sink.append(tmp.read().decode("utf-8", errors="replace"))


def mauve_score(
    real: np.ndarray,
    synth: np.ndarray,
    *,
    seeds: Sequence[int] = (25,),
    scaling: float = 5.0,
) -> MetricResult:
    """MAUVE(P = real, Q = synthetic) per k-means seed (higher is better)."""
    import mauve  # lazy: pulls in faiss and sklearn

    real = check_embeddings("real", real)
    synth = check_embeddings("synth", synth, dim=real.shape[1])
    if not seeds:
        raise ValueError("mauve_seeds is empty: at least one k-means seed is needed")

    def one_seed(seed: int) -> Any:
        import faiss

        # One k-means thread per seed, seeds side by side: OpenMP threads that wait on
        # each other burn CPU on a shared 2-core box (3x slower under load), and a
        # fixed thread count keeps the clustering independent of the machine.
        faiss.omp_set_num_threads(1)
        return mauve.compute_mauve(
            p_features=real,
            q_features=synth,
            mauve_scaling_factor=scaling,
            seed=int(seed),
            verbose=False,
            **LIBRARY_DEFAULTS,
        )

    from threadpoolctl import threadpool_limits

    captured: list[str] = []
    workers = max(1, min(len(seeds), os.cpu_count() or 1))
    with (
        _captured_output(captured),
        threadpool_limits(1),
        ThreadPoolExecutor(workers, thread_name_prefix="mauve") as pool,
    ):
        outs = list(pool.map(one_seed, seeds))
    per_seed = {str(seed): float(out.mauve) for seed, out in zip(seeds, outs, strict=True)}
    per_seed_star = {
        str(seed): float(out.mauve_star) for seed, out in zip(seeds, outs, strict=True)
    }
    buckets = int(outs[0].num_buckets)
    values = np.array(list(per_seed.values()))
    settings: dict[str, Any] = {
        "features": "precomputed encoder embeddings, as encoded",
        **LIBRARY_DEFAULTS,
        "scaling": scaling,
        "seeds": [int(s) for s in seeds],
        "reported_seed": int(seeds[0]),
        "mauve_text_version": metadata.version("mauve-text"),
        "kmeans_threads": 1,
    }
    notes = sorted(
        {line.strip() for text in captured for line in text.splitlines() if line.strip()}
    )
    details: dict[str, Any] = {
        "per_seed": per_seed,
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "min": float(values.min()),
        "max": float(values.max()),
        "mauve_star_per_seed": per_seed_star,
        "num_buckets": buckets,
        "n_real": int(real.shape[0]),
        "n_synth": int(synth.shape[0]),
        "library_output": notes,
    }
    return MetricResult("mauve", per_seed[str(seeds[0])], settings, details, higher_is_better=True)


def score(inputs: ScoreInputs) -> MetricResult:
    return mauve_score(
        inputs.real,
        inputs.synth,
        seeds=inputs.spec.mauve_seeds,
        scaling=inputs.spec.mauve_scaling,
    )
