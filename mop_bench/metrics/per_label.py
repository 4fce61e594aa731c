"""FID and KL-cosine within each label: real texts of label l against synthetic texts
meant to have label l. A simulator can match the global distribution while mixing up
what each label looks like; this breakdown shows it.

The value is the mean within-label FID over the labels that could be scored; labels
with too few texts on either side (< 2, no covariance or no pair) are skipped with the
reason recorded, never filled in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mop_bench.metrics.base import ScoreInputs, check_embeddings
from mop_bench.metrics.fid import fid
from mop_bench.metrics.kl_cosine import kl_cosine
from mop_bench.types import MetricResult

#: Fewest texts per side for a label to be scored (a covariance needs two rows).
MIN_PER_SIDE = 2


def per_label(
    real: np.ndarray,
    real_labels: np.ndarray,
    synth: np.ndarray,
    synth_labels: np.ndarray,
    *,
    label_names: tuple[str, ...],
    rng: np.random.Generator,
    kl_bins: int = 50,
    kl_epsilon: float = 1e-6,
    kl_max_pairs: int = 200_000,
) -> MetricResult:
    """Mean within-label FID (lower is better); details keyed by label name."""
    real = check_embeddings("real", real)
    synth = check_embeddings("synth", synth, dim=real.shape[1])
    labels: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for k, name in enumerate(label_names):
        r, s = real[real_labels == k], synth[synth_labels == k]
        if r.shape[0] < MIN_PER_SIDE or s.shape[0] < MIN_PER_SIDE:
            skipped[name] = (
                f"too few texts for a covariance: {r.shape[0]} real, {s.shape[0]} synthetic "
                f"(need {MIN_PER_SIDE} each)"
            )
            continue
        f = fid(r, s)
        kl = kl_cosine(r, s, rng=rng, bins=kl_bins, epsilon=kl_epsilon, max_pairs=kl_max_pairs)
        labels[name] = {
            "fid": f.value,
            "kl_cosine": kl.value,
            "n_real": int(r.shape[0]),
            "n_synth": int(s.shape[0]),
            "fid_mean_term": f.details["mean_term"],
            "fid_cov_term": f.details["cov_term"],
        }
    if not labels:
        raise ValueError(f"no label has {MIN_PER_SIDE}+ texts on both sides: {skipped}")
    fids = [v["fid"] for v in labels.values()]
    kls = [v["kl_cosine"] for v in labels.values()]
    settings: dict[str, Any] = {
        "value": "mean within-label FID over scored labels",
        "min_per_side": MIN_PER_SIDE,
        "kl_bins": kl_bins,
        "kl_epsilon": kl_epsilon,
        "kl_max_pairs": kl_max_pairs,
    }
    details: dict[str, Any] = {
        "labels": labels,
        "skipped": skipped,
        "mean_fid": float(np.mean(fids)),
        "mean_kl_cosine": float(np.mean(kls)),
    }
    return MetricResult("per_label", float(np.mean(fids)), settings, details)


def score(inputs: ScoreInputs) -> MetricResult:
    real_labels, synth_labels = inputs.labels("per_label", pool=False)
    spec = inputs.spec
    return per_label(
        inputs.real,
        real_labels,
        inputs.synth,
        synth_labels,
        label_names=inputs.label_names,
        rng=inputs.rng("per_label"),
        kl_bins=spec.kl_bins,
        kl_epsilon=spec.kl_epsilon,
        kl_max_pairs=spec.kl_max_pairs,
    )
