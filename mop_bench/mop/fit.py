"""Training the gates and temperatures by an importance-weighted mixture likelihood.

    loss_i = - log sum_{c in C_i} n_c * pi_k(x_i) Omega_kj(x_i) * p_LM(y_i | g_k, e_j, x_i; tau_k) / D(c)

(see `candidates.py` for the candidate sets C_i, draw counts n_c and denominators D).
Each epoch draws candidates from the current gates and scores the new (example,
persona, exemplar) triples block by block, one `lm.score` call per block over the
whole temperature grid; then `inner_steps` passes of gradient steps run over every
candidate scored so far, with the likelihood at tau_k interpolated between grid points.
No triple is ever scored twice (the score cache persists, so a killed fit resumes).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mop_bench.mop.candidates import Block, add_top_m, enumerate_or_sample, make_blocks
from mop_bench.mop.gates import MixtureGates, using_threads
from mop_bench.mop.mixture import Mixture
from mop_bench.mop.scoring import ScoreCache, block_triples, interpolate_logprob, score_missing
from mop_bench.spec import FitSpec
from mop_bench.types import Example

log = logging.getLogger(__name__)


def make_optimizer(name: str, params: Sequence[Any], lr: float) -> torch.optim.Optimizer:
    """`params` may be parameters or param groups (each with its own "lr")."""
    name = name.lower()
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"fit.optimizer must be adam, adamw or sgd, got {name!r}")


@dataclass
class Features:
    """Encoder features of the training contexts, personas and gated exemplars."""

    x: torch.Tensor
    g: torch.Tensor | None
    e: torch.Tensor | None
    allowed: torch.Tensor | None
    """(N, J) exemplar mask per training row (`Mixture.allowed`)."""
    persona_allowed: torch.Tensor | None = None
    """(N, K) persona mask per training row (`Mixture.persona_allowed`)."""

    def rows(self, idx: Sequence[int]) -> tuple[torch.Tensor, Any, Any]:
        sel = torch.tensor(list(idx), dtype=torch.long)
        pick = lambda t: None if t is None else t[sel]  # noqa: E731
        return self.x[sel], pick(self.allowed), pick(self.persona_allowed)


@dataclass
class BlockTensors:
    """One block's scored candidates, flattened for the loss."""

    rows: list[int]
    local: torch.Tensor
    """(C,) position of each candidate's row inside `rows`."""
    slot: torch.Tensor
    ks: torch.Tensor
    js: torch.Tensor
    log_weight: torch.Tensor
    """(C,) log(n_c / D(c))."""
    ll: torch.Tensor
    """(C, G) LM log-likelihood at every grid temperature."""
    n_tokens: torch.Tensor
    """(rows,) tokens scored per row."""


def gate_log_weights(gates: MixtureGates, feats: Features, rows: Sequence[int]) -> torch.Tensor:
    x, allowed, persona_allowed = feats.rows(rows)
    return gates.log_gates(x, feats.g, feats.e, allowed, persona_allowed)


def _tensors(block: Block, triples: list, cache: ScoreCache) -> BlockTensors | None:
    rows = [r for r in block.rows if block.candidates.get(r)]
    if not rows:
        return None
    pos = {r: i for i, r in enumerate(rows)}
    local, slot, ks, js, lw, ll = [], [], [], [], [], []
    count: dict[int, int] = {}
    tokens: dict[int, int] = {}
    for row, (k, j), key, _ in triples:
        n, d = block.candidates[row][(k, j)]
        values, n_tok = cache.get(key)
        local.append(pos[row])
        slot.append(count.get(row, 0))
        count[row] = count.get(row, 0) + 1
        ks.append(k)
        js.append(j)
        lw.append(math.log(n) - math.log(d))
        ll.append(values)
        tokens[row] = n_tok
    as_long = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
    return BlockTensors(
        rows=rows,
        local=as_long(local),
        slot=as_long(slot),
        ks=as_long(ks),
        js=as_long(js),
        log_weight=torch.tensor(lw, dtype=torch.float64),
        ll=torch.from_numpy(np.stack(ll)),
        n_tokens=torch.tensor([tokens[r] for r in rows], dtype=torch.float64),
    )


def row_log_likelihoods(
    gates: MixtureGates,
    feats: Features,
    bt: BlockTensors,
    grid_t: torch.Tensor,
    *,
    renormalize: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-row estimate of log p(y_i | x_i), the rows' (B, K, J) log gates)."""
    log_w = gate_log_weights(gates, feats, bt.rows)
    lw = log_w[bt.local, bt.ks, bt.js]
    lp = interpolate_logprob(bt.ll, grid_t, gates.taus()[bt.ks])
    width = int(bt.slot.max()) + 1
    terms = torch.full((len(bt.rows), width), float("-inf"), dtype=torch.float64)
    terms = terms.index_put((bt.local, bt.slot), lw + lp + bt.log_weight)
    est = torch.logsumexp(terms, dim=1)
    if renormalize:
        norm = torch.full_like(terms, float("-inf")).index_put(
            (bt.local, bt.slot), lw + bt.log_weight
        )
        est = est - torch.logsumexp(norm, dim=1)
    return est, log_w


def kl_to_uniform(log_w: torch.Tensor) -> torch.Tensor:
    """(B,) KL(w_i || uniform over row i's allowed pairs)."""
    ok = torch.isfinite(log_w)
    safe = torch.where(ok, log_w, torch.zeros_like(log_w))  # no -inf in any branch's grad
    plogp = torch.where(ok, safe.exp() * safe, torch.zeros_like(log_w))
    return plogp.flatten(1).sum(1) + torch.log(ok.flatten(1).sum(1).double())


def fit_mixture(
    mixture: Mixture,
    gates: MixtureGates,
    train: Sequence[Example],
    x_feat: np.ndarray,
    g_feat: np.ndarray | None,
    e_feat: np.ndarray | None,
    lm: Any,
    cache: ScoreCache,
    *,
    fit: FitSpec,
    grid: Sequence[float],
    seed: int,
) -> dict[str, Any]:
    """Train `gates` in place; return the fit record (losses, cost, counts)."""
    params = [p for p in gates.parameters() if p.requires_grad]
    if not params or not train:
        return {"trained": bool(params), "n_train": len(train), "epochs": [], "steps": []} | {
            "lm_scorings": 0,
            "wall_seconds": 0.0,
        }
    lm_threads = torch.get_num_threads()
    with using_threads(1):
        return _fit(
            mixture, gates, train, x_feat, g_feat, e_feat, lm, cache, fit, grid, seed, lm_threads
        )


def _fit(
    mixture: Mixture,
    gates: MixtureGates,
    train: Sequence[Example],
    x_feat: np.ndarray,
    g_feat: np.ndarray | None,
    e_feat: np.ndarray | None,
    lm: Any,
    cache: ScoreCache,
    fit: FitSpec,
    grid: Sequence[float],
    seed: int,
    lm_threads: int,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    record: dict[str, Any] = {"trained": True, "n_train": len(train)}
    allowed_np = mixture.allowed(train)
    persona_np = mixture.persona_allowed(train)
    feats = Features(
        x=torch.from_numpy(np.asarray(x_feat, dtype=np.float32)),
        g=torch.from_numpy(g_feat) if g_feat is not None else None,
        e=torch.from_numpy(e_feat) if e_feat is not None else None,
        allowed=None if allowed_np is None else torch.from_numpy(allowed_np),
        persona_allowed=None if persona_np is None else torch.from_numpy(persona_np),
    )
    blocks = make_blocks(
        train, mixture, allowed_np, fit.train_batch_size, np.random.default_rng([seed, 13])
    )
    # Two learning rates: Adam moves every weight by about lr per step, and the
    # temperature's rate would turn the projections far faster than they should move.
    gate_params = [p for n, p in gates.named_parameters() if p.requires_grad and n != "log_tau"]
    tau_params = [p for n, p in gates.named_parameters() if p.requires_grad and n == "log_tau"]
    groups = [
        {"params": gate_params, "lr": fit.gate_lr, "base_lr": fit.gate_lr},
        {"params": tau_params, "lr": fit.lr, "base_lr": fit.lr},
    ]
    opt = make_optimizer(fit.optimizer, [g for g in groups if g["params"]], fit.lr)
    total_steps = max(1, fit.epochs * fit.inner_steps * len(blocks))
    grid_t = torch.tensor(list(grid), dtype=torch.float64)
    stats = getattr(lm, "stats", None)
    before = (stats.score_sequences, stats.score_tokens, stats.score_seconds) if stats else None
    step_rng = np.random.default_rng([seed, 19])
    log_tau0 = torch.log(gates.taus().detach().clone())
    epochs: list[dict[str, Any]] = []
    steps: list[float] = []
    n_scored = 0
    for epoch in range(fit.epochs):
        new = 0
        tensors: list[BlockTensors] = []
        for b, block in enumerate(blocks):
            with torch.no_grad():
                log_w = gate_log_weights(gates, feats, block.rows).numpy()
            if fit.selection == "sampled":
                rng = np.random.default_rng([seed, 17, epoch, b])
                enumerate_or_sample(block, log_w, fit.candidates, fit.explore, rng)
            else:
                add_top_m(block, log_w, fit.top_m, fit.selection, [seed, 11])
            triples = block_triples(mixture, train, block)
            with using_threads(lm_threads):
                new += score_missing(
                    lm, cache, train, triples, grid, fit.score_max_tokens, mixture.prompt
                )
            bt = _tensors(block, triples, cache)
            if bt is not None:
                tensors.append(bt)
        n_scored += new
        losses: list[float] = []
        for _ in range(fit.inner_steps):
            losses = []
            for t in step_rng.permutation(len(tensors)).tolist():
                bt = tensors[t]
                est, log_w = row_log_likelihoods(
                    gates, feats, bt, grid_t, renormalize=fit.renormalize_top_m
                )
                loss = -est.mean()
                if fit.gate_entropy > 0:
                    loss = loss + fit.gate_entropy * kl_to_uniform(log_w).mean()
                scale = 0.5 * (1 + math.cos(math.pi * len(steps) / total_steps))
                for group in opt.param_groups:
                    group["lr"] = group["base_lr"] * scale
                opt.zero_grad()
                loss.backward()
                opt.step()
                gates.clamp_()
                losses.append(loss.item())
                steps.append(loss.item())
        epochs.append(
            {
                "epoch": epoch,
                "loss": float(np.mean(losses)) if losses else None,
                "new_scorings": new,
                "nll_per_token": _nll_per_token(gates, feats, tensors, grid_t),
                "taus": [round(float(t), 4) for t in gates.taus().detach()],
            }
        )
        log.info(
            "fit epoch %d: %d new LM scorings, loss %.3f, %.4f nats/token (train estimate)",
            epoch,
            new,
            epochs[-1]["loss"] or float("nan"),
            epochs[-1]["nll_per_token"],
        )
    responsibility = _persona_responsibility(gates, feats, tensors, grid_t, len(log_tau0))
    moved = (torch.log(gates.taus().detach()) - log_tau0).abs() > TAU_MOVED
    record |= {
        "persona_responsibility": [round(m, 6) for m in responsibility],
        # A tau learns only through the rows its persona explains: a persona compared
        # but with (near) zero posterior mass all along keeps its initial tau.
        "personas_trained": [k for k, m in enumerate(moved.tolist()) if m],
        "epochs": epochs,
        "steps": steps,
        "blocks": len(blocks),
        "lm_scorings": n_scored,
        "cache_hits_from_disk": cache.loaded,
        "candidates": _candidate_summary(blocks, mixture.n_persona_slots),
        "wall_seconds": round(time.perf_counter() - t0, 3),
    }
    if stats is not None and before is not None:
        record["score_sequences"] = stats.score_sequences - before[0]
        record["score_tokens"] = stats.score_tokens - before[1]
        record["score_seconds"] = round(stats.score_seconds - before[2], 3)
    return record


#: A tau whose log moved less than this from its start counts as never trained.
TAU_MOVED = 1e-3


@torch.no_grad()
def _persona_responsibility(
    gates: MixtureGates, feats: Features, tensors: list[BlockTensors], grid_t: torch.Tensor, k: int
) -> list[float]:
    """Per persona, the sum over training rows of its posterior share of the row's
    candidate estimate at the end of the fit: the weight its tau's gradient gets. Continuations are scored
    as totals over up to `score_max_tokens` tokens, so one pair can beat another by tens
    of nats and take a row entirely (a yelp persona compared on 20 triples had a mass
    of 1e-17 and kept its initial tau)."""
    mass = torch.zeros(k, dtype=torch.float64)
    for bt in tensors:
        log_w = gate_log_weights(gates, feats, bt.rows)
        lw = log_w[bt.local, bt.ks, bt.js]
        lp = interpolate_logprob(bt.ll, grid_t, gates.taus()[bt.ks])
        terms = lw + lp + bt.log_weight
        est, _ = row_log_likelihoods(gates, feats, bt, grid_t)
        mass.index_add_(0, bt.ks, torch.exp(terms - est[bt.local]))
    return mass.tolist()


@torch.no_grad()
def _nll_per_token(
    gates: MixtureGates, feats: Features, tensors: list[BlockTensors], grid_t: torch.Tensor
) -> float:
    """The candidates' mixture estimate over the training rows, in nats per token."""
    total, tokens = 0.0, 0.0
    for bt in tensors:
        est, _ = row_log_likelihoods(gates, feats, bt, grid_t)
        total -= float(est.sum())
        tokens += float(bt.n_tokens.sum())
    return total / tokens if tokens else float("nan")


def _candidate_summary(blocks: list[Block], k: int) -> dict[str, Any]:
    """What the fit compared: per-row candidate counts, distinct pairs, personas."""
    per_row = [len(c) for b in blocks for c in b.candidates.values()]
    pairs = {p for b in blocks for c in b.candidates.values() for p in c}
    personas = {p[0] for p in pairs}
    return {
        "per_row_mean": float(np.mean(per_row)) if per_row else 0.0,
        "distinct_pairs": len(pairs),
        "distinct_exemplars": len({p[1] for p in pairs}),
        "personas_compared": sorted(personas),
        "personas_never_compared": [i for i in range(k) if i not in personas],
        "exact_blocks": sum(b.exact for b in blocks),
    }
