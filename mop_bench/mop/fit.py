"""Training the gates and temperatures by the top-M truncated mixture likelihood.

    loss_i = - log sum_{(k,j) in topM(x_i)} pi_k(x_i) Omega_kj(x_i) p_LM(y_i | g_k, e_j, x_i; tau_k)

Each training step: pick every row's top-M pairs with the current gates, score the
(example, persona, exemplar) triples not yet in the cache in ONE `lm.score` call over
the whole temperature grid, then take a gradient step on the loss, in which the
likelihood at tau_k is interpolated between grid points. A row therefore costs at most
M LM scorings per epoch and no triple is ever scored twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from mop_bench.mop.gates import MixtureGates
from mop_bench.mop.mixture import Mixture
from mop_bench.mop.scoring import ScoreCache, interpolate_logprob, triple_key
from mop_bench.spec import FitSpec
from mop_bench.types import Example

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """Trainer choices beyond FitSpec; recorded in fit.json."""

    batch_size: int = 16
    """Training examples per gradient step (and per `lm.score` call)."""
    selection: str = "distinct_personas"
    """How the M pairs are picked. `pairs`: the M largest pi_k * Omega_kj (the paper's
    wording). `distinct_personas`: the best exemplar of each of the M most likely
    personas (then the next best pairs if K < M). With near-uniform initial gates plain
    top pairs tend to pick one persona M times, and its weight then only reinforces
    itself; distinct personas let every step compare M personas. `explore`: the top M-1
    personas plus one drawn (seeded, per epoch) from the rest."""
    lr_schedule: str = "cosine"
    """`cosine`: the learning rate decays from fit.lr to 0 over all steps, so that tau
    settles instead of oscillating around a kink of the piecewise-linear likelihood;
    `constant`: fit.lr throughout."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def select_pairs(
    log_w: np.ndarray,
    m: int,
    selection: str,
    jitter: np.ndarray,
    explore: np.random.Generator | None = None,
) -> list[tuple[int, int]]:
    """Top-M (persona, exemplar) pairs of one row. `log_w` is (K, J) with -inf for
    excluded exemplars; `jitter` (tiny, seeded) breaks ties, e.g. under uniform gates;
    `explore` draws the exploration persona of the `explore` selection."""
    keys = np.where(np.isfinite(log_w), log_w + jitter, -np.inf)
    n_ok = int(np.isfinite(keys).sum())
    m = min(m, n_ok)
    flat_order = np.argsort(-keys, axis=None, kind="stable")[:n_ok]
    j_dim = keys.shape[1]
    pairs = [(int(f // j_dim), int(f % j_dim)) for f in flat_order]
    if selection == "pairs":
        return pairs[:m]
    if selection not in ("distinct_personas", "explore"):
        raise ValueError(
            f"unknown top-M selection {selection!r} (pairs, distinct_personas or explore)"
        )
    best: dict[int, tuple[int, int]] = {}
    for k, j in pairs:  # best pair first, so the first pair of a persona is its best
        best.setdefault(k, (k, j))
    ranked = list(best.values())
    if selection == "explore" and explore is not None and 1 < m < len(ranked):
        # The last slot goes to a persona drawn uniformly from outside the top M-1, so
        # that a persona the young gates happen to rank low still gets compared.
        outside = ranked[m - 1 :]
        ranked = [*ranked[: m - 1], outside[int(explore.integers(len(outside)))]]
    chosen = ranked[:m]
    picked = set(chosen)
    for pair in pairs:  # K < M: fill with the next best pairs
        if len(chosen) == m:
            break
        if pair not in picked:
            chosen.append(pair)
            picked.add(pair)
    return chosen


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
    settings: TrainSettings = TrainSettings(),
) -> dict[str, Any]:
    """Train `gates` in place; return the fit record (losses, cost, counts)."""
    t0 = time.perf_counter()
    params = [p for p in gates.parameters() if p.requires_grad]
    record: dict[str, Any] = {"trained": bool(params), "n_train": len(train)}
    if not params or not train:
        return record | {"epochs": [], "steps": [], "lm_scorings": 0, "wall_seconds": 0.0}
    # Two learning rates: the projections start tiny (logits near 0, gates near uniform)
    # and Adam moves every weight by about lr per step, so the temperature's rate would
    # turn the gates one-hot within a few steps (seen on Yelp: one exemplar took 0.999).
    groups = [
        {
            "params": [
                p for n, p in gates.named_parameters() if p.requires_grad and n != "log_tau"
            ],
            "lr": fit.gate_lr,
            "base_lr": fit.gate_lr,
        },
        {
            "params": [
                p for n, p in gates.named_parameters() if p.requires_grad and n == "log_tau"
            ],
            "lr": fit.lr,
            "base_lr": fit.lr,
        },
    ]
    opt = make_optimizer(fit.optimizer, [g for g in groups if g["params"]], fit.lr)
    if settings.lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"unknown lr_schedule {settings.lr_schedule!r} (cosine or constant)")
    total_steps = fit.epochs * -(-len(train) // settings.batch_size)
    grid_t = torch.tensor(list(grid), dtype=torch.float64)
    x_t = torch.from_numpy(np.asarray(x_feat, dtype=np.float32))
    g_t = torch.from_numpy(g_feat) if g_feat is not None else None
    e_t = torch.from_numpy(e_feat) if e_feat is not None else None
    excl = mixture.exclusion([ex.uid for ex in train])
    excl_t = torch.from_numpy(excl) if excl is not None else None
    order_rng = np.random.default_rng([seed, 13])
    stats = getattr(lm, "stats", None)
    before = (stats.score_sequences, stats.score_tokens, stats.score_seconds) if stats else None
    scored_keys: set[str] = set()
    epochs: list[dict[str, Any]] = []
    steps: list[float] = []
    max_per_row = 0
    for epoch in range(fit.epochs):
        losses: list[float] = []
        new_this_epoch = 0
        perm = order_rng.permutation(len(train))
        for start in range(0, len(train), settings.batch_size):
            batch = perm[start : start + settings.batch_size]
            b_excl = excl_t[batch] if excl_t is not None else None
            with torch.no_grad():
                log_w = gates.log_gates(x_t[batch], g_t, e_t, b_excl).numpy()
            pairs = []
            for r, i in enumerate(batch.tolist()):
                jitter = np.random.default_rng([seed, 11, i]).random(log_w.shape[1:]) * 1e-9
                explore = np.random.default_rng([seed, 17, epoch, i])
                pairs.append(select_pairs(log_w[r], fit.top_m, settings.selection, jitter, explore))
            keys, n_new = _score_missing(
                mixture, train, batch, pairs, lm, cache, fit, grid, scored_keys
            )
            new_this_epoch += sum(n_new)
            max_per_row = max(max_per_row, *n_new)
            loss = _loss(gates, x_t, g_t, e_t, b_excl, batch, pairs, keys, cache, grid_t, fit)
            if settings.lr_schedule == "cosine":
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
                "loss": float(np.mean(losses)),
                "new_scorings": new_this_epoch,
                "taus": [round(float(t), 4) for t in gates.taus().detach()],
            }
        )
        log.info(
            "fit epoch %d: loss %.3f, %d new LM scorings", epoch, epochs[-1]["loss"], new_this_epoch
        )
    record |= {
        "epochs": epochs,
        "steps": steps,
        "lm_scorings": len(scored_keys),
        "cache_hits_from_disk": cache.loaded,
        "max_new_scorings_per_example_epoch": max_per_row,
        "wall_seconds": round(time.perf_counter() - t0, 3),
    }
    if stats is not None and before is not None:
        record["score_sequences"] = stats.score_sequences - before[0]
        record["score_tokens"] = stats.score_tokens - before[1]
        record["score_seconds"] = round(stats.score_seconds - before[2], 3)
    return record


def _score_missing(
    mixture: Mixture,
    train: Sequence[Example],
    batch: np.ndarray,
    pairs: list[list[tuple[int, int]]],
    lm: Any,
    cache: ScoreCache,
    fit: FitSpec,
    grid: Sequence[float],
    scored_keys: set[str],
) -> tuple[list[list[str]], list[int]]:
    """Score (in one LM call) the batch's triples not in the cache; returns the keys of
    every selected triple and the number of new scorings per row."""
    keys: list[list[str]] = []
    n_new: list[int] = []
    todo: dict[str, tuple[list[dict[str, str]], str]] = {}
    for i, row_pairs in zip(batch.tolist(), pairs, strict=True):
        ex = train[i]
        row_keys = []
        new = 0
        for k, j in row_pairs:
            msgs, ex_uids = mixture.messages(ex.context, k, j, exclude_uid=ex.uid)
            key = triple_key(ex.uid, k if mixture.personas else None, ex_uids)
            row_keys.append(key)
            if key not in cache and key not in todo:
                todo[key] = (msgs, ex.text)
                new += 1
        keys.append(row_keys)
        n_new.append(new)
    if todo:
        prompts = [v[0] for v in todo.values()]
        conts = [v[1] for v in todo.values()]
        scores = lm.score(prompts, conts, temperatures=tuple(grid), max_tokens=fit.score_max_tokens)
        if len(scores) != len(todo):
            raise ValueError(f"LM scored {len(scores)} sequences, {len(todo)} were asked for")
        cache.add_many(list(todo), [s.logprob for s in scores], [s.n_tokens for s in scores])
        scored_keys.update(todo)
    return keys, n_new


def _loss(
    gates: MixtureGates,
    x_t: torch.Tensor,
    g_t: torch.Tensor | None,
    e_t: torch.Tensor | None,
    b_excl: torch.Tensor | None,
    batch: np.ndarray,
    pairs: list[list[tuple[int, int]]],
    keys: list[list[str]],
    cache: ScoreCache,
    grid_t: torch.Tensor,
    fit: FitSpec,
) -> torch.Tensor:
    log_w = gates.log_gates(x_t[batch], g_t, e_t, b_excl)
    m = max(len(p) for p in pairs)
    rows = torch.tensor([r for r, p in enumerate(pairs) for _ in p])
    ks = torch.tensor([k for p in pairs for k, _ in p])
    js = torch.tensor([j for p in pairs for _, j in p])
    slot = torch.tensor([s for p in pairs for s in range(len(p))])
    ll = torch.from_numpy(np.stack([cache.get(key)[0] for row in keys for key in row]))
    lp = interpolate_logprob(ll, grid_t, gates.taus()[ks])
    lw = log_w[rows, ks, js]
    # Rows may have fewer than M pairs (tiny pools): pad with -inf, which adds nothing.
    terms = torch.full((len(pairs), m), float("-inf"), dtype=torch.float64)
    weights = torch.full((len(pairs), m), float("-inf"), dtype=torch.float64)
    terms = terms.index_put((rows, slot), lw + lp)
    weights = weights.index_put((rows, slot), lw)
    mix = torch.logsumexp(terms, dim=1)
    if fit.renormalize_top_m:
        mix = mix - torch.logsumexp(weights, dim=1)
    return -mix.mean()
