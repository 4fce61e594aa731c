"""`heldout_nll`: the log-likelihood of real golden responses under a fitted simulator.

For each held-out example (a seeded subset of the golden set, the same for every
simulator of a run seed) it estimates

    log p(y | x) = log sum_k sum_j pi_k(x) Omega_kj(x) p_LM(y | g_k, e_j, x; tau_k)

at the fit's token cap, and reports nats per token (lower is better). A single-prompt
simulator (temperature-only, fixed few-shot) and any block with no more pairs than
`heldout_samples` is summed exactly. Otherwise the examples are put in blocks of
`heldout_block` (same exemplar-match key), each block draws `heldout_samples` pairs
from its rows' mean gate distribution, and every row is scored under every drawn pair:
the importance-weighted sum is unbiased for p(y | x), so the log is a lower bound in
expectation (a MoP win under it is a real win; REFERENCE.md section 8). Deterministic:
the draws are seeded, and the likelihood is computed at each persona's own tau.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mop_bench.mop.candidates import enumerate_or_sample, make_blocks
from mop_bench.mop.fitted import FittedModel
from mop_bench.mop.scoring import ScoreCache, block_triples, score_missing
from mop_bench.types import Example


def heldout_loglik(
    model: FittedModel,
    examples: Sequence[Example],
    x_feat: np.ndarray | None,
    lm: Any,
    *,
    cache_path: Path | None,
    draws: int,
    block_size: int,
    max_tokens: int,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(per-example log-likelihood estimates and their nats-per-token summary, cost)."""
    t0 = time.perf_counter()
    mixture = model.mixture
    taus = [float(t) for t in model.gates.taus().detach()]
    temps = tuple(sorted(set(taus)))
    column = {t: i for i, t in enumerate(temps)}
    cache = ScoreCache(cache_path, len(temps))
    allowed = mixture.allowed(examples)
    blocks = make_blocks(examples, mixture, allowed, block_size, np.random.default_rng([seed, 23]))
    stats = getattr(lm, "stats", None)
    before = (stats.score_sequences, stats.score_tokens, stats.score_seconds) if stats else None
    rows_out: list[dict[str, Any] | None] = [None] * len(examples)
    for b, block in enumerate(blocks):
        rows_x = None if x_feat is None else np.asarray(x_feat)[block.rows]
        log_w = model.log_weights([examples[r] for r in block.rows], rows_x)
        enumerate_or_sample(block, log_w, draws, 0.0, np.random.default_rng([seed, 29, b]))
        triples = block_triples(mixture, examples, block)
        score_missing(lm, cache, examples, triples, temps, max_tokens, mixture.prompt)
        terms: dict[int, list[float]] = {}
        tokens: dict[int, int] = {}
        for row, (k, j), key, _ in triples:
            n, d = block.candidates[row][(k, j)]
            values, n_tok = cache.get(key)
            r = block.rows.index(row)
            lp = float(values[column[taus[k]]])
            terms.setdefault(row, []).append(math.log(n / d) + float(log_w[r, k, j]) + lp)
            tokens[row] = n_tok
        for row in block.rows:
            rows_out[row] = {
                "uid": examples[row].uid,
                "logprob": float(np.logaddexp.reduce(terms[row])),
                "n_tokens": int(tokens[row]),
                "candidates": len(terms[row]),
            }
    done = [r for r in rows_out if r is not None]
    n_tokens = sum(r["n_tokens"] for r in done)
    exact = all(b.exact for b in blocks)
    out: dict[str, Any] = {
        "value": -sum(r["logprob"] for r in done) / n_tokens if n_tokens else float("nan"),
        "estimator": "exact" if exact else "importance_sampled",
        "rows": done,
        "n_examples": len(done),
        "n_tokens": n_tokens,
        "lm_scorings": cache.added + cache.loaded,
        "taus": taus,
    }
    # Costs go apart (the runner puts them in timing.json): heldout.json must be the
    # same bytes however long the scoring took.
    cost: dict[str, Any] = {"wall_seconds": round(time.perf_counter() - t0, 3)}
    if stats is not None and before is not None:
        cost["score_tokens"] = stats.score_tokens - before[1]
        cost["score_seconds"] = round(stats.score_seconds - before[2], 3)
    return out, cost
