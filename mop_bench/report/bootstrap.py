"""Bootstrap draws of FID, KL-cosine, MAUVE and held-out NLL, for paired comparisons.

Every simulator of one replicate seed was scored on the same contexts (sample index i is
the same context for all of them) against the same golden set, so one resample of sample
indices and one resample of the golden set, applied to every simulator of that seed,
keeps the pairing. A draw is therefore defined by (bootstrap seed, run seed, sizes)
alone: the draws of one run do not depend on which other runs are computed beside it,
which is what lets `paired.py` cache them per run.

The metrics are the ones in `mop_bench.metrics`, recomputed on resampled rows:

* FID: the exact Frechet distance of fid.py (float64, ddof 1, embeddings as encoded).
  Tr((S_r S_s)^(1/2)) is taken from the eigenvalues of the n x n matrix
  X S_r X^T / (n - 1) (X: centred synthetic rows) when n <= d, which has the same nonzero
  eigenvalues as S_r S_s; one small symmetric eigenproblem per draw instead of two d x d
  ones and an SVD. `tests/test_paired.py` checks it against `metrics.fid.fid`.
* KL-cosine: the cosines of each set's pairs are computed once; a resample gives item i
  a count w_i, and pair (i, j) of distinct items weight w_i * w_j in the histogram. A
  resample repeats items, and a pair of a text with its own copy (cosine 1) has no
  counterpart in real data, so such pairs are left out. Above `max_pairs` pairs the same
  uniform, seeded pair subsample is used for every draw. With unit weights this is
  `metrics.kl_cosine.kl_cosine` (checked in the tests).
* MAUVE: `metrics.mauve.mauve_score` itself on the resampled rows, with the run's
  scaling and its reported k-means seed (one seed per draw: the cost is what it is).
* held-out NLL: -sum(logprob) / sum(n_tokens) over resampled rows of the shared subset.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from mop_bench.metrics.base import unit_rows
from mop_bench.metrics.fid import EIG_TOLERANCE, FrechetNumericalError

#: Metrics with a paired bootstrap, in table order.
PAIRED_METRICS = ("fid", "mauve", "kl_cosine", "heldout_nll")
#: Bumped whenever a change here changes any draw (invalidates cached draws).
METHOD_VERSION = 1
_MASK = 2**64 - 1


@dataclass(frozen=True)
class BootstrapSettings:
    """How many draws, from which seed, and the test's level and target power."""

    draws: int = 1000
    """Draws for FID, KL-cosine and held-out NLL (a few seconds per run each)."""
    mauve_draws: int = 200
    """Draws for MAUVE (one MAUVE computation each, about 0.1-0.3 s)."""
    seed: int = 0
    alpha: float = 0.05
    """Family-wise level of the Holm-corrected verdicts (per metric, over pairs)."""
    power: float = 0.8
    """Power the minimum detectable difference is stated at."""

    def __post_init__(self) -> None:
        for name in ("draws", "mauve_draws"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 20:
                raise ValueError(f"bootstrap {name} must be an integer >= 20, got {value!r}")
        if not 0.0 < self.alpha < 1.0 or not 0.0 < self.power < 1.0:
            raise ValueError(f"alpha and power must lie in (0, 1), got {self.alpha}, {self.power}")

    def draws_for(self, metric: str) -> int:
        return self.mauve_draws if metric == "mauve" else self.draws

    def draw_key(self) -> dict[str, int]:
        """What the draws depend on (alpha and power only change the verdicts)."""
        return {
            "draws": self.draws,
            "mauve_draws": self.mauve_draws,
            "seed": self.seed,
            "version": METHOD_VERSION,
        }


def rng(settings: BootstrapSettings, run_seed: int, stream: str) -> np.random.Generator:
    """A generator for one (bootstrap seed, run seed, purpose); negative seeds allowed."""
    return np.random.default_rng(
        [settings.seed & _MASK, run_seed & _MASK, zlib.crc32(stream.encode())]
    )


def resample_indices(
    settings: BootstrapSettings, run_seed: int, n_synth: int, n_real: int
) -> tuple[np.ndarray, np.ndarray]:
    """(synthetic, golden) row indices, one row per draw; shared by every simulator of
    the seed. MAUVE uses the first `mauve_draws` rows."""
    gen = rng(settings, run_seed, "rows")
    rows = max(settings.draws, settings.mauve_draws)
    return gen.integers(0, n_synth, (rows, n_synth)), gen.integers(0, n_real, (rows, n_real))


# ----------------------------------------------------------------------------- FID


def _trace_sqrt(w: np.ndarray) -> float:
    """Sum of square roots of a PSD matrix's eigenvalues (fid.py's round-off rules)."""
    scale = max(float(np.abs(w).max(initial=0.0)), np.finfo(np.float64).tiny)
    if w.size and w.min() < -EIG_TOLERANCE * scale:
        raise FrechetNumericalError(f"eigenvalue {w.min():.3g} (largest {scale:.3g}): not PSD")
    tol = w.size * np.finfo(np.float64).eps * scale
    return float(np.sqrt(w[w > tol]).sum())


def fid_draws(
    real: np.ndarray, synths: list[np.ndarray], idx_synth: np.ndarray, idx_real: np.ndarray
) -> np.ndarray:
    """FID of each synthetic set against the golden set per draw: (len(synths), draws)."""
    from threadpoolctl import threadpool_limits

    real64 = np.asarray(real, np.float64)
    synth64 = [np.asarray(s, np.float64) for s in synths]
    n_real, dim = real64.shape
    out = np.empty((len(synths), idx_synth.shape[0]))
    with threadpool_limits(1):  # as metrics.fid: a second BLAS thread only spins here
        for b in range(idx_synth.shape[0]):
            rows = real64[idx_real[b]]
            mu_r = rows.mean(axis=0)
            centred = rows - mu_r
            cov_r = centred.T @ centred / (n_real - 1)
            tr_r = float(np.trace(cov_r))
            root = None
            for k, synth in enumerate(synth64):
                srows = synth[idx_synth[b]]
                n = srows.shape[0]
                mu_s = srows.mean(axis=0)
                x = srows - mu_s
                if n <= dim:
                    m = x @ cov_r @ x.T / (n - 1)
                else:
                    if root is None:
                        w, v = np.linalg.eigh(cov_r)
                        root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
                    m = root @ (x.T @ x / (n - 1)) @ root
                tr_sqrt = _trace_sqrt(np.linalg.eigvalsh((m + m.T) / 2.0))
                diff = mu_r - mu_s
                out[k, b] = float(diff @ diff) + tr_r + float((x * x).sum()) / (n - 1) - 2 * tr_sqrt
    return out


# ----------------------------------------------------------------------------- KL-cosine


@dataclass(frozen=True)
class KLSettings:
    bins: int
    epsilon: float
    max_pairs: int
    within_label: bool


def pair_bins(
    x: np.ndarray,
    labels: np.ndarray | None,
    cfg: KLSettings,
    gen: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, histogram bin) of every eligible pair of distinct rows, or of a uniform
    seeded sample of `max_pairs` of them (as metrics.kl_cosine draws its pairs)."""
    unit = unit_rows(x)
    n = unit.shape[0]
    if cfg.within_label:
        if labels is None:
            raise ValueError("kl_cosine within_label needs labels")
        same = np.asarray(labels)[:, None] == np.asarray(labels)[None, :]
        i, j = np.nonzero(np.triu(same, k=1))
    elif n * (n - 1) // 2 <= cfg.max_pairs:
        i, j = np.triu_indices(n, k=1)
    else:
        i = gen.integers(0, n, size=cfg.max_pairs)
        j = gen.integers(0, n - 1, size=cfg.max_pairs)
        j += j >= i
    if i.size == 0:
        raise ValueError("kl_cosine: no pair of texts to compare")
    if i.size > cfg.max_pairs:  # within-label pairs beyond the cap: a uniform sample
        keep = gen.integers(0, i.size, size=cfg.max_pairs)
        i, j = i[keep], j[keep]
    if i.size == n * (n - 1) // 2:
        cos = (unit @ unit.T)[i, j]  # one float32 product, as metrics.kl_cosine
    else:
        cos = np.einsum("ij,ij->i", unit[i], unit[j])
    cos = np.clip(cos, -1.0, 1.0)
    edges = np.linspace(-1.0, 1.0, cfg.bins + 1)
    bins = np.clip(np.searchsorted(edges, cos, side="right") - 1, 0, cfg.bins - 1)
    return i.astype(np.int64), j.astype(np.int64), bins


def weighted_hist(pairs: tuple[np.ndarray, ...], counts: np.ndarray, cfg: KLSettings) -> np.ndarray:
    """Epsilon-smoothed pair-cosine histogram with pair (i, j) weighted counts[i]*counts[j]."""
    i, j, bins = pairs
    mass = np.bincount(bins, weights=counts[i] * counts[j], minlength=cfg.bins)
    total = mass.sum()
    if total <= 0:
        raise ValueError("kl_cosine: a resample left no pair of distinct texts")
    probs = mass / total + cfg.epsilon
    return probs / probs.sum()


def kl_draws(
    real_pairs: tuple[np.ndarray, ...],
    synth_pairs: list[tuple[np.ndarray, ...]],
    idx_synth: np.ndarray,
    idx_real: np.ndarray,
    cfg: KLSettings,
) -> np.ndarray:
    """KL(real || synthetic) of each synthetic set per draw: (len(synth_pairs), draws)."""
    from mop_bench.metrics.kl_cosine import kl_divergence

    n_real, n_synth = idx_real.shape[1], idx_synth.shape[1]
    out = np.empty((len(synth_pairs), idx_synth.shape[0]))
    for b in range(idx_synth.shape[0]):
        p = weighted_hist(real_pairs, np.bincount(idx_real[b], minlength=n_real), cfg)
        counts = np.bincount(idx_synth[b], minlength=n_synth).astype(np.float64)
        for k, pairs in enumerate(synth_pairs):
            out[k, b] = kl_divergence(p, weighted_hist(pairs, counts, cfg))
    return out


# ----------------------------------------------------------------------------- MAUVE, NLL


def mauve_draws(
    real: np.ndarray,
    synth: np.ndarray,
    idx_synth: np.ndarray,
    idx_real: np.ndarray,
    *,
    kmeans_seed: int,
    scaling: float,
) -> np.ndarray:
    """MAUVE per draw (one k-means seed: the run's reported one)."""
    from mop_bench.metrics.mauve import mauve_score

    return np.array(
        [
            mauve_score(
                real[idx_real[b]], synth[idx_synth[b]], seeds=(kmeans_seed,), scaling=scaling
            ).value
            for b in range(idx_synth.shape[0])
        ]
    )


def nll_draws(logprob: np.ndarray, n_tokens: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Nats per token, -sum(logprob) / sum(n_tokens), over each row of `idx`."""
    return -logprob[idx].sum(axis=1) / n_tokens[idx].sum(axis=1)


# ----------------------------------------------------------------------------- the test


@dataclass(frozen=True)
class DiffTest:
    """A paired difference with its bootstrap standard error, interval and p-values."""

    difference: float
    se: float
    ci_low: float
    ci_high: float
    p: float
    """Two-sided, normal approximation with the bootstrap SE (the p the verdict uses)."""
    p_empirical: float
    """Two-sided shifted-null bootstrap p, (1 + #{|d* - mean d*| >= |d|}) / (B + 1)."""
    mde: float
    """(z_{1-alpha/2} + z_power) * se: the difference found with the stated power."""


def diff_test(difference: float, draws: np.ndarray, alpha: float, power: float) -> DiffTest:
    """Test difference = 0 given bootstrap draws of the difference (see docs/report.md)."""
    from scipy.stats import norm

    draws = np.asarray(draws, np.float64)
    if draws.ndim != 1 or draws.size < 2 or not np.isfinite(draws).all():
        raise ValueError("diff_test needs at least 2 finite bootstrap draws")
    if not math.isfinite(difference):
        raise ValueError(f"diff_test: difference is not finite ({difference})")
    se = float(draws.std(ddof=1))
    z_ci = float(norm.ppf(1.0 - alpha / 2.0))
    if se == 0 and difference != 0:
        # Identical inputs resample identically: a recorded difference then means the
        # stored embeddings or rows are not the ones the metrics were computed from.
        raise ValueError(
            f"bootstrap draws of a difference are all equal, yet the recorded difference is {difference}"
        )
    p = float(2.0 * norm.sf(abs(difference) / se)) if se > 0 else 1.0
    extreme = np.abs(draws - draws.mean()) >= abs(difference)
    return DiffTest(
        difference=difference,
        se=se,
        ci_low=difference - z_ci * se,
        ci_high=difference + z_ci * se,
        p=p,
        p_empirical=float((1 + extreme.sum()) / (draws.size + 1)),
        mde=(z_ci + float(norm.ppf(power))) * se,
    )


def holm(pvalues: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (reject where adjusted p <= alpha).

    Hand-written because it is six lines and the alternative is statsmodels, a large
    dependency for one function; the tests check it against a worked example.
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda k: pvalues[k])
    adjusted = [0.0] * m
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[k]))
        adjusted[k] = running
    return adjusted
