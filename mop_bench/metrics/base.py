"""What every metric receives, and the input checks they share.

A registered metric is a function `score(inputs: ScoreInputs) -> MetricResult`. Each
metric module also exposes a plain function with explicit arguments (e.g.
`fid(real, synth)`) for use outside a run; `score` only adapts `ScoreInputs` to it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mop_bench.spec import MetricSpec
from mop_bench.types import MetricResult


class MissingLabelsError(ValueError):
    """A label-dependent metric was asked to score unlabelled data."""


@dataclass(frozen=True)
class ScoreInputs:
    """Everything the scoring stage knows about one run (embeddings are the run's
    encoder output as-is: L2-normalised or not, as its EncoderSpec says)."""

    real: np.ndarray
    """Golden (held-out real) embeddings, (n_real, d)."""
    synth: np.ndarray
    """Synthetic embeddings, (n_synth, d)."""
    real_labels: np.ndarray | None
    synth_labels: np.ndarray | None
    """The label each synthetic text was *meant* to have (its context's label)."""
    pool: np.ndarray
    """Embeddings of the training pool the simulator could see, (n_pool, d)."""
    pool_labels: np.ndarray | None
    pool_texts: list[str]
    synth_texts: list[str]
    label_names: tuple[str, ...]
    spec: MetricSpec
    seed: int
    leak_patterns: tuple[str, ...] | None = None
    """Regexes of the prompt's scaffolding (`mop.prompts.leak_patterns`) for the
    `format` metric; None when the caller does not know the prompt (recorded)."""
    synth_details: list[dict[str, Any]] | None = None
    """Each synthetic text's generation details (`ended`/`truncated`), or None."""
    max_new_tokens: int | None = None
    """The budget's token cap the synthetic texts were generated under (recorded)."""

    def rng(self, name: str) -> np.random.Generator:
        """A generator seeded by (run seed, metric name): a metric's random draws do not
        depend on which other metrics run or in what order."""
        return np.random.default_rng([self.seed, zlib.crc32(name.encode("utf-8"))])

    def labels(self, metric: str, *, pool: bool = True) -> tuple[np.ndarray, ...]:
        """(real_labels, synth_labels[, pool_labels]), or a clear error naming the gap."""
        wanted = {"real_labels": self.real_labels, "synth_labels": self.synth_labels}
        if pool:
            wanted["pool_labels"] = self.pool_labels
        missing = [field for field, value in wanted.items() if value is None]
        if missing:
            raise MissingLabelsError(
                f"{metric} needs labels; missing: {', '.join(missing)} (unlabelled task?)"
            )
        return tuple(np.asarray(v) for v in wanted.values())


MetricFn = Callable[[ScoreInputs], MetricResult]


def check_embeddings(name: str, x: np.ndarray, *, dim: int | None = None) -> np.ndarray:
    """A finite 2-D float array, or a ValueError naming the argument and the bad row."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (texts x dims) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name}: expected float embeddings, got dtype {arr.dtype}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name}: expected {dim} dimensions, got {arr.shape[1]}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{name}: {rows.size} row(s) contain NaN or inf (first: row {int(rows[0])})"
        )
    return arr


def check_labels(name: str, labels: np.ndarray | None, n: int, n_labels: int) -> None:
    """Integer labels, one per row, each an index into the label names."""
    if labels is None:
        return
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},) to match the embeddings, got {arr.shape}")
    if n and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected integer label indices, got dtype {arr.dtype}")
    if n and n_labels:
        bad = np.flatnonzero((arr < 0) | (arr >= n_labels))
        if bad.size:
            raise ValueError(
                f"{name}: row {int(bad[0])} has label {int(arr[bad[0]])}, "
                f"outside 0..{n_labels - 1} (label names: {n_labels})"
            )


def unit_rows(x: np.ndarray, *, name: str = "embeddings", dtype: type = np.float32) -> np.ndarray:
    """Rows scaled to unit length, for cosine computations only (the metrics that use
    Euclidean geometry, FID and MAUVE, see the embeddings as the encoder produced them)."""
    arr = np.asarray(x, dtype=dtype)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise ValueError(f"{name}: row {int(zero[0])} is a zero vector; its cosine is undefined")
    return arr / norms
