"""Label fidelity: does each synthetic text carry the label it was asked for?

A classifier trained on the real pool's embeddings predicts each synthetic text's label;
the value is the share predicted as intended. The same classifier's accuracy on the
golden set is the ceiling to read it against (real texts are not perfectly separable).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mop_bench.metrics.base import ScoreInputs, check_embeddings
from mop_bench.metrics.downstream import (
    DEFAULT_C,
    DEFAULT_MAX_ITER,
    classifier_settings,
    train_classifier,
)
from mop_bench.types import MetricResult


def label_fidelity(
    synth: np.ndarray,
    synth_labels: np.ndarray,
    pool: np.ndarray,
    pool_labels: np.ndarray,
    *,
    label_names: tuple[str, ...],
    rng: np.random.Generator,
    real: np.ndarray | None = None,
    real_labels: np.ndarray | None = None,
    c: float = DEFAULT_C,
    max_iter: int = DEFAULT_MAX_ITER,
) -> MetricResult:
    """Accuracy of a real-pool classifier on the synthetic texts' intended labels
    (higher is better)."""
    from sklearn.metrics import confusion_matrix

    synth = check_embeddings("synth", synth)
    pool = check_embeddings("pool", pool, dim=synth.shape[1])
    if synth.shape[0] == 0:
        raise ValueError("synth is empty: no synthetic texts to classify")
    model = train_classifier(pool, pool_labels, rng=rng, c=c, max_iter=max_iter, what="real pool")
    pred = model.predict(synth)
    hit = pred == synth_labels
    n_labels = max(len(label_names), int(max(synth_labels.max(), pool_labels.max())) + 1)
    names = [label_names[k] if k < len(label_names) else str(k) for k in range(n_labels)]
    per_label: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(names):
        mask = synth_labels == k
        if mask.any():
            per_label[name] = {"accuracy": float(hit[mask].mean()), "n": int(mask.sum())}
    cm = confusion_matrix(synth_labels, pred, labels=list(range(n_labels)))
    details: dict[str, Any] = {
        "per_label": per_label,
        "confusion_matrix": cm.tolist(),
        "confusion_axes": {"rows": "intended label", "columns": "predicted label"},
        "labels": names,
        "n_synth": int(synth.shape[0]),
        "n_pool": int(pool.shape[0]),
    }
    if real is not None and real_labels is not None:
        real = check_embeddings("real", real, dim=synth.shape[1])
        details["golden_accuracy"] = float((model.predict(real) == real_labels).mean())
    settings = {**classifier_settings(c, max_iter), "train": "real pool", "test": "synthetic"}
    return MetricResult("label_fidelity", float(hit.mean()), settings, details, True)


def score(inputs: ScoreInputs) -> MetricResult:
    real_labels, synth_labels, pool_labels = inputs.labels("label_fidelity")
    return label_fidelity(
        inputs.synth,
        synth_labels,
        inputs.pool,
        pool_labels,
        label_names=inputs.label_names,
        rng=inputs.rng("label_fidelity"),
        real=inputs.real,
        real_labels=real_labels,
    )
