"""Frechet distance between Gaussians fitted to two embedding sets (REFERENCE.md s5).

    FID = |mu_r - mu_s|^2 + Tr(S_r) + Tr(S_s) - 2 Tr((S_r S_s)^(1/2))

Tr((S_r S_s)^(1/2)) is computed without a general matrix square root: the
eigenvalues of S_r S_s equal those of the symmetric PSD matrix sqrt(S_r) S_s sqrt(S_r),
whose square roots are the singular values of sqrt(S_r) sqrt(S_s). Two symmetric
eigendecompositions and one SVD of a d x d matrix are faster than `scipy.linalg.sqrtm`,
never produce complex round-off, and stay accurate when a covariance is rank-deficient
(fewer texts than dimensions). Round-off shows up as slightly negative eigenvalues of
a covariance instead; they are dropped when negligible and raise otherwise (the analogue
of the imaginary-part check of the sqrtm path, which is kept for verification).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from mop_bench.metrics.base import ScoreInputs, check_embeddings
from mop_bench.types import MetricResult

SqrtMethod = Literal["svd", "eigh", "sqrtm"]

#: Negative eigenvalues smaller than this fraction of the largest are round-off.
EIG_TOLERANCE = 1e-6
#: Largest |imaginary part| on the diagonal of sqrtm's result accepted as round-off
#: (the threshold pytorch-fid uses).
IMAG_TOLERANCE = 1e-3


class FrechetNumericalError(ArithmeticError):
    """The matrix square root is not real/PSD beyond round-off: no trustworthy value."""


def gaussian_stats(x: np.ndarray, *, name: str = "embeddings") -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased (ddof=1) covariance of the rows, in float64."""
    arr = check_embeddings(name, x).astype(np.float64)
    if arr.shape[0] < 2:
        raise ValueError(f"{name}: a covariance needs at least 2 rows, got {arr.shape[0]}")
    return arr.mean(axis=0), np.atleast_2d(np.cov(arr, rowvar=False))


def _psd_sqrt(cov: np.ndarray, what: str) -> np.ndarray:
    """Symmetric square root of a PSD matrix. Eigenvalues below the numerical rank
    tolerance (d * eps * largest, as numpy's matrix_rank) are set to zero: they are
    round-off of a rank-deficient covariance (fewer texts than dimensions), and their
    square roots (~1e-8 each instead of ~1e-16) would otherwise add up to a visible bias."""
    w, v = np.linalg.eigh(cov)
    _check_negative(w, what)
    tol = w.size * np.finfo(np.float64).eps * max(float(w.max(initial=0.0)), 0.0)
    w = np.where(w > tol, w, 0.0)
    return (v * np.sqrt(w)) @ v.T


def _check_negative(w: np.ndarray, what: str) -> None:
    scale = max(float(np.abs(w).max(initial=0.0)), np.finfo(np.float64).tiny)
    if w.size and w.min() < -EIG_TOLERANCE * scale:
        raise FrechetNumericalError(
            f"{what} has eigenvalue {w.min():.3g} (largest {scale:.3g}): not PSD beyond "
            f"round-off, so its square root is not real"
        )


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray, method: SqrtMethod = "svd") -> float:
    """Tr((cov1 cov2)^(1/2)) for symmetric PSD cov1, cov2.

    svd: sum of singular values of sqrt(cov1) sqrt(cov2); their squares are the
    eigenvalues of sqrt(cov1) cov2 sqrt(cov1), i.e. of cov1 cov2, and a singular value
    near zero is accurate to eps instead of the sqrt(eps) an eigenvalue's root gives.
    eigh: sum of square roots of the eigenvalues of sqrt(cov1) cov2 sqrt(cov1).
    sqrtm: trace of scipy.linalg.sqrtm(cov1 cov2), imaginary round-off dropped.
    """
    if method == "svd":
        root1 = _psd_sqrt(cov1, "covariance 1")
        root2 = _psd_sqrt(cov2, "covariance 2")
        return float(np.linalg.svd(root1 @ root2, compute_uv=False).sum())
    if method == "eigh":
        root1 = _psd_sqrt(cov1, "covariance 1")
        middle = root1 @ cov2 @ root1
        w = np.linalg.eigvalsh((middle + middle.T) / 2)  # symmetrise away round-off
        _check_negative(w, "sqrt(S1) S2 sqrt(S1)")
        return float(np.sqrt(np.clip(w, 0.0, None)).sum())
    if method == "sqrtm":
        from scipy import linalg

        covmean = linalg.sqrtm(cov1 @ cov2)
        if np.iscomplexobj(covmean):
            imag = float(np.abs(np.diagonal(covmean).imag).max())
            if imag > IMAG_TOLERANCE:
                raise FrechetNumericalError(
                    f"sqrtm(S1 S2) has imaginary diagonal parts up to {imag:.3g} "
                    f"(> {IMAG_TOLERANCE}): not round-off"
                )
            covmean = covmean.real
        return float(np.trace(covmean))
    raise ValueError(f"unknown sqrt method {method!r}; use 'svd', 'eigh' or 'sqrtm'")


def frechet_distance(
    mu1: np.ndarray,
    cov1: np.ndarray,
    mu2: np.ndarray,
    cov2: np.ndarray,
    *,
    method: SqrtMethod = "svd",
) -> tuple[float, dict[str, float]]:
    """Exact Frechet distance between N(mu1, cov1) and N(mu2, cov2), with its two terms."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size,) * 2:
        raise ValueError(
            f"shape mismatch: mu1 {mu1.shape}, mu2 {mu2.shape}, cov1 {cov1.shape}, cov2 {cov2.shape}"
        )
    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    tr_sqrt = trace_sqrt_product(cov1, cov2, method)
    cov_term = float(np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt)
    terms = {"mean_term": mean_term, "cov_term": cov_term, "trace_sqrt_product": tr_sqrt}
    return mean_term + cov_term, terms


def fid(real: np.ndarray, synth: np.ndarray, *, method: SqrtMethod = "svd") -> MetricResult:
    """FID between the real and synthetic embedding sets (lower is better)."""
    from threadpoolctl import threadpool_limits

    real = check_embeddings("real", real)
    synth = check_embeddings("synth", synth, dim=real.shape[1])
    # Single-threaded BLAS: these d x d decompositions gain nothing from a second
    # thread, and on a busy 2-core machine spinning BLAS threads made FID 20x slower.
    with threadpool_limits(1):
        mu_r, cov_r = gaussian_stats(real, name="real")
        mu_s, cov_s = gaussian_stats(synth, name="synth")
        value, terms = frechet_distance(mu_r, cov_r, mu_s, cov_s, method=method)
    settings: dict[str, Any] = {
        "precision": "float64",
        "covariance_ddof": 1,
        "sqrt_method": method,
        "normalization": "as encoded (not renormalised)",
    }
    details: dict[str, Any] = {
        **terms,
        "n_real": int(real.shape[0]),
        "n_synth": int(synth.shape[0]),
        "dim": int(real.shape[1]),
    }
    return MetricResult("fid", value, settings, details, higher_is_better=False)


def score(inputs: ScoreInputs) -> MetricResult:
    return fid(inputs.real, inputs.synth)
