"""Seeded, label-stratified sampling: pool and golden draws, single-file partitions and
the run's list of contexts. Every draw uses a numpy Generator derived from the seed and
a purpose tag, so the pool draw never shifts when, say, the golden size changes."""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Sequence

import numpy as np


def rng_for(seed: int, purpose: str) -> np.random.Generator:
    """An independent generator for (seed, purpose)."""
    try:
        value = operator.index(seed)  # accepts numpy integers, rejects floats
    except TypeError:
        value = -1
    if value < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    tag = int.from_bytes(hashlib.sha256(purpose.encode()).digest()[:4], "little")
    return np.random.default_rng(np.random.SeedSequence(value, spawn_key=(tag,)))


def _groups(labels: Sequence[int | None]) -> dict[int | None, np.ndarray]:
    """Row indices per label, labels in sorted order (None last) for determinism."""
    by: dict[int | None, list[int]] = {}
    for i, label in enumerate(labels):
        by.setdefault(label, []).append(i)
    keys = sorted(by, key=lambda k: (k is None, k if k is not None else 0))
    return {k: np.asarray(by[k], dtype=np.int64) for k in keys}


def allocate(counts: Sequence[int], n: int) -> list[int]:
    """Split n across groups proportionally to counts (largest remainder method).

    Ties in the remainder go to the earlier group, so the result is deterministic. When
    n <= sum(counts) no group gets more than it has."""
    total = sum(counts)
    if total == 0:
        return [0] * len(counts)
    exact = [n * c / total for c in counts]
    quota = [int(x) for x in exact]
    order = sorted(range(len(counts)), key=lambda i: (-(exact[i] - quota[i]), i))
    for i in order[: n - sum(quota)]:
        quota[i] += 1
    return quota


def stratified_sample(labels: Sequence[int | None], n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices of a label-stratified sample of size min(n, len(labels))."""
    if n >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    groups = _groups(labels)
    quotas = allocate([len(rows) for rows in groups.values()], n)
    picked = [
        rng.choice(rows, size=q, replace=False)
        for rows, q in zip(groups.values(), quotas, strict=True)
        if q
    ]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def stratified_draw_with_cycles(
    labels: Sequence[int | None], n: int, rng: np.random.Generator
) -> list[int]:
    """n row indices in random order whose label mix matches `labels` as closely as an
    integer count allows. Within a label, rows are drawn without replacement and the
    permutation restarts only when every row of that label has been used."""
    return _draw(labels, n, rng, balanced=False)


def balanced_draw_with_cycles(
    labels: Sequence[int | None], n: int, rng: np.random.Generator
) -> list[int]:
    """As `stratified_draw_with_cycles`, but with (as nearly as n allows) equal counts
    per label: the `balanced` label prior of ZeroGen, ProGen and AttrPrompt."""
    return _draw(labels, n, rng, balanced=True)


def _draw(
    labels: Sequence[int | None], n: int, rng: np.random.Generator, *, balanced: bool
) -> list[int]:
    if not labels:
        raise ValueError("cannot draw contexts from an empty set")
    groups = _groups(labels)
    sizes = [1 if balanced else len(rows) for rows in groups.values()]
    quotas = allocate(sizes, n)
    out: list[int] = []
    for rows, q in zip(groups.values(), quotas, strict=True):
        while q > 0:
            take = min(q, len(rows))
            out.extend(rng.permutation(rows)[:take].tolist())
            q -= take
    order = rng.permutation(len(out))
    return [out[i] for i in order]
