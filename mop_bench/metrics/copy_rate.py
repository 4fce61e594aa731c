"""Copy rate: the share of synthetic texts that nearly copy a text the simulator could see.

A synthetic text is a copy when its embedding cosine with some pool text exceeds
`copy_cosine`, or when it shares a word n-gram of length `copy_ngram` with some pool
text (lowercased `\\w+` tokens). MoP shows real exemplars in its prompts, so a good
distribution score bought by copying them must be visible next to the score.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from mop_bench.metrics.base import ScoreInputs, check_embeddings, unit_rows
from mop_bench.types import MetricResult

_WORD = re.compile(r"\w+")
#: Synthetic rows compared with the pool per matrix product (bounds peak memory).
_CHUNK = 2048
#: Copies listed in the details.
MAX_EXAMPLES = 5


def word_ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    """Word n-grams of the lowercased text (empty when it has fewer than n words)."""
    words = _WORD.findall(text.lower())
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def nearest_pool_cosine(synth: np.ndarray, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each synthetic row, the highest cosine with any pool row and that row's index."""
    s, p = unit_rows(synth, name="synth"), unit_rows(pool, name="pool")
    best = np.empty(s.shape[0], dtype=np.float64)
    arg = np.empty(s.shape[0], dtype=np.int64)
    for start in range(0, s.shape[0], _CHUNK):
        sims = s[start : start + _CHUNK] @ p.T
        arg[start : start + _CHUNK] = sims.argmax(axis=1)
        best[start : start + _CHUNK] = sims.max(axis=1)
    return best, arg


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))


def shared_ngram(
    synth_texts: list[str], pool_texts: list[str], n: int
) -> list[tuple[int, tuple[str, ...]] | None]:
    """For each synthetic text, (pool index, n-gram) of a shared word n-gram, else None."""
    if n < 1:
        raise ValueError(f"copy_ngram must be positive, got {n}")
    seen: dict[tuple[str, ...], int] = {}
    for j, text in enumerate(pool_texts):
        for gram in word_ngrams(text, n):
            seen.setdefault(gram, j)
    out: list[tuple[int, tuple[str, ...]] | None] = []
    for text in synth_texts:
        hit = next(((seen[g], g) for g in word_ngrams(text, n) if g in seen), None)
        out.append(hit)
    return out


def copy_rate(
    synth: np.ndarray,
    pool: np.ndarray,
    synth_texts: list[str],
    pool_texts: list[str],
    *,
    cosine_threshold: float = 0.95,
    ngram: int = 8,
) -> MetricResult:
    """Share of synthetic texts copying a pool text (lower is better)."""
    synth = check_embeddings("synth", synth)
    pool = check_embeddings("pool", pool, dim=synth.shape[1])
    if len(synth_texts) != synth.shape[0]:
        raise ValueError(f"synth_texts has {len(synth_texts)} texts, synth {synth.shape[0]} rows")
    if len(pool_texts) != pool.shape[0]:
        raise ValueError(f"pool_texts has {len(pool_texts)} texts, pool {pool.shape[0]} rows")
    if synth.shape[0] == 0:
        raise ValueError("synth is empty: no synthetic texts to check for copies")
    if pool.shape[0] == 0:
        raise ValueError("pool is empty: nothing the simulator could have copied")
    best, arg = nearest_pool_cosine(synth, pool)
    by_cosine = best > cosine_threshold
    grams = shared_ngram(synth_texts, pool_texts, ngram)
    by_ngram = np.array([g is not None for g in grams], dtype=bool)
    copied = by_cosine | by_ngram
    examples: list[dict[str, Any]] = []
    for i in np.flatnonzero(copied)[:MAX_EXAMPLES]:
        hit = grams[i]
        j = int(arg[i]) if by_cosine[i] or hit is None else hit[0]
        cos = best[i] if j == arg[i] else _cosine(synth[i], pool[j])
        examples.append(
            {
                "synth_index": int(i),
                "pool_index": j,
                "cosine": float(cos),
                "by_cosine": bool(by_cosine[i]),
                "by_ngram": bool(by_ngram[i]),
                "ngram": " ".join(hit[1]) if hit is not None else None,
            }
        )
    n = synth.shape[0]
    settings: dict[str, Any] = {
        "copy_cosine": cosine_threshold,
        "copy_ngram": ngram,
        "tokens": "lowercased \\w+ words",
        "against": "pool (texts the simulator could see)",
    }
    details: dict[str, Any] = {
        "n_synth": int(n),
        "n_pool": int(pool.shape[0]),
        "n_copies": int(copied.sum()),
        "n_by_cosine": int(by_cosine.sum()),
        "n_by_ngram": int(by_ngram.sum()),
        "rate_by_cosine": float(by_cosine.mean()),
        "rate_by_ngram": float(by_ngram.mean()),
        "max_cosine": float(best.max()),
        "examples": examples,
    }
    return MetricResult("copy_rate", float(copied.mean()), settings, details)


def score(inputs: ScoreInputs) -> MetricResult:
    return copy_rate(
        inputs.synth,
        inputs.pool,
        inputs.synth_texts,
        inputs.pool_texts,
        cosine_threshold=inputs.spec.copy_cosine,
        ngram=inputs.spec.copy_ngram,
    )
