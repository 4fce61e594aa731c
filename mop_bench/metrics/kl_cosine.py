"""KL-cosine: a diversity measure (REFERENCE.md s5; our definition, the paper's is unpublished).

The pairwise cosine similarities inside the real set and inside the synthetic set are
histogrammed on the same equal-width bins over [-1, 1]; epsilon is added to every bin of
the normalised histograms, which are renormalised; the value is KL(real || synthetic) in
nats. A collapsed simulator piles its mass near cosine 1 and scores badly.

Above `max_pairs` pairs, pairs are drawn uniformly (with replacement) from the set of
distinct pairs with the generator passed in, so the cost does not grow with n^2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mop_bench.metrics.base import ScoreInputs, check_embeddings, unit_rows
from mop_bench.types import MetricResult

#: Rows gathered per step when computing sampled pairs (bounds peak memory).
_CHUNK = 2048


def _all_pairs(x: np.ndarray) -> np.ndarray:
    gram = x @ x.T  # float32 BLAS; one product for every pair
    upper = np.triu_indices(x.shape[0], k=1)
    return gram[upper]


def _sampled_pairs(x: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    n = x.shape[0]
    i = rng.integers(0, n, size=m)
    j = rng.integers(0, n - 1, size=m)
    j += j >= i  # uniform over j != i, hence uniform over distinct unordered pairs
    out = np.empty(m, dtype=np.float32)
    for start in range(0, m, _CHUNK):
        sl = slice(start, start + _CHUNK)
        out[sl] = np.einsum("ij,ij->i", x[i[sl]], x[j[sl]])
    return out


def pairwise_cosines(
    x: np.ndarray,
    *,
    max_pairs: int,
    rng: np.random.Generator,
    groups: np.ndarray | None = None,
    name: str = "embeddings",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Cosines of all distinct row pairs (only pairs inside one group if `groups` is
    given), subsampled to `max_pairs` when there are more. Returns (cosines, info)."""
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be positive, got {max_pairs}")
    unit = unit_rows(check_embeddings(name, x), name=name)
    labels = np.zeros(unit.shape[0], dtype=np.int64) if groups is None else np.asarray(groups)
    members = [np.flatnonzero(labels == g) for g in np.unique(labels)]
    members = [idx for idx in members if idx.size >= 2]
    counts = np.array([idx.size * (idx.size - 1) // 2 for idx in members], dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        scope = "inside any one label" if groups is not None else "in the set"
        raise ValueError(f"{name}: no pair of texts {scope} (need at least 2 rows)")
    subsampled = total > max_pairs
    if subsampled:
        # Each group gets pairs in proportion to how many it has, so the sample stays
        # uniform over all eligible pairs.
        per_group = rng.multinomial(max_pairs, counts / total)
        parts = [
            _sampled_pairs(unit[idx], int(m), rng)
            for idx, m in zip(members, per_group, strict=True)
            if m
        ]
    else:
        parts = [_all_pairs(unit[idx]) for idx in members]
    cos = np.clip(np.concatenate(parts), -1.0, 1.0)  # float32 round-off can exceed 1
    info = {"n_pairs_total": total, "n_pairs_used": int(cos.size), "subsampled": subsampled}
    return cos, info


def cosine_histogram(cos: np.ndarray, bins: int, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """(bin edges, probabilities) on `bins` equal bins over [-1, 1], epsilon-smoothed."""
    if bins < 1:
        raise ValueError(f"kl_bins must be positive, got {bins}")
    if epsilon < 0:
        raise ValueError(f"kl_epsilon must be >= 0, got {epsilon}")
    edges = np.linspace(-1.0, 1.0, bins + 1)
    counts, _ = np.histogram(cos, bins=edges)
    probs = counts / counts.sum() + epsilon
    return edges, probs / probs.sum()


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats; infinite where q has a zero bin p does not (epsilon=0)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    mask = p > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(p[mask] * (np.log(p[mask]) - np.log(q[mask]))))


def kl_cosine(
    real: np.ndarray,
    synth: np.ndarray,
    *,
    rng: np.random.Generator,
    bins: int = 50,
    epsilon: float = 1e-6,
    max_pairs: int = 200_000,
    within_label: bool = False,
    real_labels: np.ndarray | None = None,
    synth_labels: np.ndarray | None = None,
) -> MetricResult:
    """KL(real || synthetic) between pairwise-cosine histograms (lower is better)."""
    if within_label and (real_labels is None or synth_labels is None):
        raise ValueError("kl_cosine within_label=True needs real_labels and synth_labels")
    real_cos, real_info = pairwise_cosines(
        real,
        max_pairs=max_pairs,
        rng=rng,
        groups=real_labels if within_label else None,
        name="real",
    )
    synth_cos, synth_info = pairwise_cosines(
        synth,
        max_pairs=max_pairs,
        rng=rng,
        groups=synth_labels if within_label else None,
        name="synth",
    )
    edges, p = cosine_histogram(real_cos, bins, epsilon)
    _, q = cosine_histogram(synth_cos, bins, epsilon)
    value = kl_divergence(p, q)
    settings: dict[str, Any] = {
        "bins": bins,
        "range": [-1.0, 1.0],
        "epsilon": epsilon,
        "max_pairs": max_pairs,
        "pair_sampling": "uniform over distinct pairs, with replacement, seeded",
        "within_label": within_label,
        "direction": "KL(real || synthetic), nats",
    }
    details: dict[str, Any] = {
        "bin_edges": edges.tolist(),
        "real_hist": p.tolist(),
        "synth_hist": q.tolist(),
        "real_pairs": real_info,
        "synth_pairs": synth_info,
        "mean_cosine_real": float(real_cos.mean()),
        "mean_cosine_synth": float(synth_cos.mean()),
    }
    return MetricResult("kl_cosine", value, settings, details, higher_is_better=False)


def score(inputs: ScoreInputs) -> MetricResult:
    spec = inputs.spec
    # MetricSpec has no within-label switch yet; read it if the spec grows one.
    within = bool(getattr(spec, "kl_within_label", False))
    return kl_cosine(
        inputs.real,
        inputs.synth,
        rng=inputs.rng("kl_cosine"),
        bins=spec.kl_bins,
        epsilon=spec.kl_epsilon,
        max_pairs=spec.kl_max_pairs,
        within_label=within,
        real_labels=inputs.real_labels,
        synth_labels=inputs.synth_labels,
    )
