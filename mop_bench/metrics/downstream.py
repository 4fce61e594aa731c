"""Downstream usefulness: a classifier trained on the synthetic texts, scored on real ones.

The paper trains DistilBERT on 5,000 synthetic samples; on a CPU budget we train a
logistic regression on the run's encoder embeddings instead (recorded in the settings),
and train the same classifier on the real pool for the reference number beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mop_bench.metrics.base import ScoreInputs, check_embeddings
from mop_bench.types import MetricResult

#: Inverse regularisation strength and iteration cap of the logistic regression.
DEFAULT_C = 1.0
DEFAULT_MAX_ITER = 2000


def classifier_settings(c: float, max_iter: int) -> dict[str, Any]:
    return {
        "classifier": "sklearn StandardScaler + LogisticRegression (lbfgs, multinomial)",
        "C": c,
        "max_iter": max_iter,
    }


def train_classifier(
    x: np.ndarray,
    y: np.ndarray,
    *,
    rng: np.random.Generator,
    c: float = DEFAULT_C,
    max_iter: int = DEFAULT_MAX_ITER,
    what: str = "training set",
) -> Any:
    """A fitted scikit-learn pipeline; needs at least two distinct labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(
            f"{what} has {classes.size} distinct label(s) ({classes.tolist()}); "
            f"a classifier needs at least 2"
        )
    # lbfgs draws nothing at random; the seed is passed so a solver change stays seeded.
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=c, max_iter=max_iter, random_state=int(rng.integers(2**31))),
    )
    return model.fit(x, y)


def downstream_f1(
    synth: np.ndarray,
    synth_labels: np.ndarray,
    real: np.ndarray,
    real_labels: np.ndarray,
    pool: np.ndarray,
    pool_labels: np.ndarray,
    *,
    label_names: tuple[str, ...],
    rng: np.random.Generator,
    c: float = DEFAULT_C,
    max_iter: int = DEFAULT_MAX_ITER,
) -> MetricResult:
    """Macro-F1 on the golden set of a classifier trained on the synthetic texts with
    their intended labels (higher is better); details carry the real-pool reference."""
    from sklearn.metrics import f1_score

    synth = check_embeddings("synth", synth)
    real = check_embeddings("real", real, dim=synth.shape[1])
    pool = check_embeddings("pool", pool, dim=synth.shape[1])
    eval_labels = np.unique(real_labels)  # macro average over the golden set's labels
    synth_model = train_classifier(
        synth, synth_labels, rng=rng, c=c, max_iter=max_iter, what="synthetic set"
    )
    pred = synth_model.predict(real)
    value = float(f1_score(real_labels, pred, labels=eval_labels, average="macro", zero_division=0))
    per_label = f1_score(real_labels, pred, labels=eval_labels, average=None, zero_division=0)
    pool_model = train_classifier(
        pool, pool_labels, rng=rng, c=c, max_iter=max_iter, what="real pool"
    )
    pool_pred = pool_model.predict(real)
    real_f1 = f1_score(real_labels, pool_pred, labels=eval_labels, average="macro", zero_division=0)
    names = [_name(label_names, int(k)) for k in eval_labels]
    counts = np.bincount(synth_labels, minlength=len(label_names))
    settings = {
        **classifier_settings(c, max_iter),
        "features": "encoder embeddings, as encoded",
        "average": "macro over the golden set's labels",
        "train": "synthetic texts with intended labels",
        "test": "golden set",
    }
    details: dict[str, Any] = {
        "real_pool_f1": float(real_f1),
        "n_train": int(synth.shape[0]),
        "n_pool": int(pool.shape[0]),
        "n_test": int(real.shape[0]),
        "per_label_f1": dict(zip(names, map(float, per_label), strict=True)),
        "synth_label_counts": {_name(label_names, k): int(n) for k, n in enumerate(counts) if n},
    }
    return MetricResult("downstream_f1", value, settings, details, higher_is_better=True)


def _name(label_names: tuple[str, ...], k: int) -> str:
    return label_names[k] if k < len(label_names) else str(k)


def score(inputs: ScoreInputs) -> MetricResult:
    real_labels, synth_labels, pool_labels = inputs.labels("downstream_f1")
    return downstream_f1(
        inputs.synth,
        synth_labels,
        inputs.real,
        real_labels,
        inputs.pool,
        pool_labels,
        label_names=inputs.label_names,
        rng=inputs.rng("downstream_f1"),
    )
