"""Which (persona, exemplar) pairs get scored for which examples, and with what weight.

The mixture likelihood of an example is a sum over K x J pairs; the LM can afford only
a few per example. Examples are split into *blocks* (rows with the same exemplar-match
key, e.g. the same label); each block draws its candidate pairs together, so that every
row of the block is scored under the same few prompts and a (persona, exemplar) prompt
prefix runs through the LM once for the whole block.

`sampled` draws P pairs with replacement from the proposal
    q_b = (1 - explore) * mean_{i in b} w_i + explore * uniform(allowed pairs of b)
where w_i = pi_k(x_i) Omega_kj(x_i) under the current gates. Over rounds r (epochs) a
pair c drawn n_c times in total gets the balance-heuristic denominator
D_b(c) = sum_r P * q_{b,r}(c), and

    p_hat(y_i) = sum_c n_c * w_i(c) * p_LM(y_i | c) / D_b(c)

is an unbiased estimate of the mixture likelihood sum_c w_i(c) p_LM(y_i | c), so its log
is a lower bound in expectation. When a block has no more allowed pairs than P, every
pair is enumerated once (n = D = 1) and the sum is exact. The deterministic selections
(`pairs`, `distinct_personas`: each row's top-M under the current gates) use n = D = 1:
a sum over a subset of the terms, also a lower bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mop_bench.mop.mixture import Mixture, match_key

Pair = tuple[int, int]


@dataclass
class Block:
    """Rows (indices into the example list) that share their candidate pairs."""

    rows: list[int]
    allowed: np.ndarray
    """(K, J) bool: pairs any row of the block may use (own examples aside)."""
    candidates: dict[int, dict[Pair, list[float]]] = field(default_factory=dict)
    """row -> pair -> [draws, balance-heuristic denominator]."""
    proposals: list[tuple[int, np.ndarray]] = field(default_factory=list)
    """(draws, (K, J) proposal) of every sampled round."""
    exact: bool = False
    """Every allowed pair enumerated once: the candidate sum is the exact mixture."""


def make_blocks(
    rows: Sequence[Any],
    mixture: Mixture,
    allowed: np.ndarray | None,
    size: int,
    rng: np.random.Generator,
) -> list[Block]:
    """Rows grouped by exemplar-match key (one group without matching), shuffled with
    `rng` inside each group and cut into blocks of at most `size`. `allowed` is the
    (B, J) exemplar mask of `Mixture.allowed`, or None (one exemplar slot)."""
    if size < 1:
        raise ValueError(f"block size must be >= 1, got {size}")
    k, j = mixture.n_persona_slots, mixture.n_exemplar_slots
    persona_ok = mixture.persona_allowed(rows)
    groups: dict[Any, list[int]] = {}
    for i, row in enumerate(rows):
        key = match_key(row, mixture.exemplar_match) if allowed is not None else ()
        if persona_ok is not None:  # a block shares its candidates: one label per block
            key = (key, getattr(row, "label", None))
        groups.setdefault(repr(key), []).append(i)
    blocks = []
    for key in sorted(groups):
        members = [groups[key][t] for t in rng.permutation(len(groups[key]))]
        for start in range(0, len(members), size):
            chunk = sorted(members[start : start + size])
            ex_ok = np.ones(j, dtype=bool) if allowed is None else allowed[chunk].any(axis=0)
            ok = np.broadcast_to(ex_ok, (k, j)).copy()
            if persona_ok is not None:
                ok &= persona_ok[chunk].any(axis=0)[:, None]
            blocks.append(Block(rows=chunk, allowed=ok))
    return blocks


def enumerate_or_sample(
    block: Block, log_w: np.ndarray, n_draws: int, explore: float, rng: np.random.Generator
) -> None:
    """Add one round of `sampled` candidates to `block` (or enumerate every allowed pair,
    once, when there are no more than `n_draws`). log_w: (B, K, J) log gates of the
    block's rows (-inf where not allowed)."""
    n_allowed = int(block.allowed.sum())
    if n_allowed <= n_draws:
        if not block.exact:
            block.exact = True
            pairs = [tuple(map(int, p)) for p in np.argwhere(block.allowed)]
            for r, row in enumerate(block.rows):
                ok = np.isfinite(log_w[r])
                block.candidates[row] = {p: [1.0, 1.0] for p in pairs if ok[p]}
        return
    w = np.exp(log_w).mean(axis=0)
    uniform = block.allowed / n_allowed
    q = (1.0 - explore) * w / w.sum() + explore * uniform
    q = np.where(block.allowed, q, 0.0)
    q /= q.sum()
    flat = rng.choice(q.size, size=n_draws, replace=True, p=q.ravel())
    drawn: dict[Pair, int] = {}
    for f in flat.tolist():
        pair = (f // q.shape[1], f % q.shape[1])
        drawn[pair] = drawn.get(pair, 0) + 1
    block.proposals.append((n_draws, q))
    for r, row in enumerate(block.rows):
        cands = block.candidates.setdefault(row, {})
        for pair, count in drawn.items():
            if np.isfinite(log_w[r][pair]):  # never the row's own example
                cands.setdefault(pair, [0.0, 0.0])[0] += count
        # Every round's proposal contributes to every candidate's denominator.
        for pair, entry in cands.items():
            entry[1] = sum(n * prop[pair] for n, prop in block.proposals)


def add_top_m(
    block: Block, log_w: np.ndarray, m: int, selection: str, jitter_seed: Sequence[int]
) -> None:
    """Add each row's deterministic top-M pairs (`pairs` or `distinct_personas`)."""
    for r, row in enumerate(block.rows):
        jitter = np.random.default_rng([*jitter_seed, row]).random(log_w.shape[1:]) * 1e-9
        cands = block.candidates.setdefault(row, {})
        for pair in select_pairs(log_w[r], m, selection, jitter):
            cands.setdefault(pair, [1.0, 1.0])


def select_pairs(log_w: np.ndarray, m: int, selection: str, jitter: np.ndarray) -> list[Pair]:
    """Top-M (persona, exemplar) pairs of one row. `log_w` is (K, J) with -inf for
    excluded exemplars; `jitter` (tiny, seeded) breaks ties, e.g. under uniform gates."""
    keys = np.where(np.isfinite(log_w), log_w + jitter, -np.inf)
    n_ok = int(np.isfinite(keys).sum())
    m = min(m, n_ok)
    flat_order = np.argsort(-keys, axis=None, kind="stable")[:n_ok]
    j_dim = keys.shape[1]
    pairs = [(int(f // j_dim), int(f % j_dim)) for f in flat_order]
    if selection == "pairs":
        return pairs[:m]
    if selection != "distinct_personas":
        raise ValueError(f"unknown selection {selection!r} (sampled, pairs or distinct_personas)")
    best: dict[int, Pair] = {}
    for k, j in pairs:  # best pair first, so the first pair of a persona is its best
        best.setdefault(k, (k, j))
    chosen = list(best.values())[:m]
    picked = set(chosen)
    for pair in pairs:  # K < M: fill with the next best pairs
        if len(chosen) == m:
            break
        if pair not in picked:
            chosen.append(pair)
            picked.add(pair)
    return chosen
