"""LM log-likelihoods of (example, persona, exemplar) triples: computed once, cached.

A triple's log-likelihood does not change while the gates train, so it is scored once
over the whole temperature grid and kept in memory and in an append-only JSONL file
(one line per triple, one write per LM batch), so that a killed fit resumes without
repeating LM work. The likelihood at any temperature in the grid's range is a cubic
Hermite interpolation in 1/tau between the neighbouring grid points.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mop_bench.lm.base import Prompt
from mop_bench.mop.candidates import Block, Pair
from mop_bench.mop.prompts import scored_text
from mop_bench.prompt_spec import PromptSpec
from mop_bench.types import Example

log = logging.getLogger(__name__)


def triple_key(example_uid: str, persona: int | None, exemplar_uids: Sequence[str]) -> str:
    return json.dumps([example_uid, persona, list(exemplar_uids)], separators=(",", ":"))


class ScoreCache:
    """Scored triples: key -> (log-likelihood per grid temperature, tokens scored).

    `path` None keeps it in memory only. The file's name should encode everything the
    scores depend on (LM, grid, prompts, personas); keys only name the triple."""

    def __init__(self, path: Path | None, n_temperatures: int) -> None:
        self.path = path
        self.n_temperatures = n_temperatures
        self._rows: dict[str, tuple[np.ndarray, int]] = {}
        self.loaded = 0
        self.added = 0
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        with open(path, encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                try:
                    row = json.loads(line)
                    values = np.asarray(row["logprob"], dtype=np.float64)
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    # A line torn by a kill mid-write: drop it, the triple is rescored.
                    log.warning("%s:%d: unreadable score line skipped", path, line_no)
                    continue
                if values.shape != (self.n_temperatures,):
                    raise ValueError(
                        f"{path}:{line_no}: {values.shape[0]} temperatures stored, "
                        f"expected {self.n_temperatures}; delete the file to rescore"
                    )
                self._rows[row["key"]] = (values, int(row["n_tokens"]))
        self.loaded = len(self._rows)

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: str) -> tuple[np.ndarray, int]:
        return self._rows[key]

    def add_many(
        self, keys: Sequence[str], logprobs: Sequence[np.ndarray], n_tokens: Sequence[int]
    ) -> None:
        lines = []
        for key, lp, nt in zip(keys, logprobs, n_tokens, strict=True):
            values = np.asarray(lp, dtype=np.float64).reshape(-1)
            if values.shape != (self.n_temperatures,):
                raise ValueError(
                    f"LM returned {values.shape[0]} log-probabilities for {key}, "
                    f"expected one per grid temperature ({self.n_temperatures})"
                )
            if not np.all(np.isfinite(values)):
                raise ValueError(f"LM returned a non-finite log-likelihood for {key}: {values}")
            self._rows[key] = (values, int(nt))
            lines.append(json.dumps({"key": key, "logprob": values.tolist(), "n_tokens": int(nt)}))
        self.added += len(lines)
        if self.path is not None and lines:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
                fh.flush()
                os.fsync(fh.fileno())


def _tangents(f: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(P, G) derivatives at the knots x (ascending): the three-point estimate, exact for
    quadratics, one-sided at the ends (the secant with only two knots)."""
    h = x[1:] - x[:-1]
    d = (f[:, 1:] - f[:, :-1]) / h
    if x.numel() == 2:
        return torch.cat([d, d], dim=1)
    h0, h1 = h[:-1], h[1:]
    inner = (h1 * d[:, :-1] + h0 * d[:, 1:]) / (h0 + h1)
    first = ((2 * h[0] + h[1]) * d[:, 0] - h[0] * d[:, 1]) / (h[0] + h[1])
    last = ((2 * h[-1] + h[-2]) * d[:, -1] - h[-1] * d[:, -2]) / (h[-1] + h[-2])
    return torch.cat([first[:, None], inner, last[:, None]], dim=1)


def interpolate_logprob(ll: torch.Tensor, grid: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Log-likelihood at `tau`: cubic Hermite in beta = 1/tau between grid points
    (differentiable in tau).

    The log-likelihood is smooth and concave in beta (sum of z_y beta - logsumexp(beta z)).
    A linear interpolation's chord has kinks at the grid points, which pull every fitted
    tau onto one (issue 9: all at 1.13-1.15); the Hermite curve is C1 with tangents that
    are exact for quadratics, so the optimum can fall between grid points.
    ll: (P, G) values at the ascending temperature grid; tau: (P,) inside the range."""
    if grid.numel() == 1:
        return ll[:, 0]
    # beta ascends when tau descends: flip so that searchsorted sees an ascending axis.
    beta_grid = torch.flip(1.0 / grid, dims=[0])
    vals = torch.flip(ll, dims=[1])
    slopes = _tangents(vals, beta_grid)
    beta = 1.0 / tau
    hi = torch.searchsorted(beta_grid, beta.detach().contiguous()).clamp(1, grid.numel() - 1)
    lo = hi - 1
    rows = torch.arange(ll.shape[0])
    width = beta_grid[hi] - beta_grid[lo]
    t = (beta - beta_grid[lo]) / width
    t2, t3 = t * t, t * t * t
    return (
        (2 * t3 - 3 * t2 + 1) * vals[rows, lo]
        + (t3 - 2 * t2 + t) * width * slopes[rows, lo]
        + (-2 * t3 + 3 * t2) * vals[rows, hi]
        + (t3 - t2) * width * slopes[rows, hi]
    )


def scoring_grid(grid: Sequence[float], cap: float | None) -> tuple[float, ...]:
    """The temperatures to score: the grid up to `cap`, plus the first point above it
    (the interpolation's last interval and end tangent need it)."""
    ordered = sorted({float(t) for t in grid})
    if cap is None:
        return tuple(ordered)
    kept = [t for t in ordered if t <= cap]
    above = [t for t in ordered if t > cap]
    return tuple(kept + above[:1])


def fit_grid(fit: Any, temperature_mode: str, fixed_temperature: float) -> tuple[float, ...]:
    """Temperatures scored during the fit: the grid up to the cap (plus the next point,
    for the interpolation), or only the fixed temperature, scored exactly."""
    if not fit.temperature_grid or min(fit.temperature_grid) <= 0:
        raise ValueError(
            f"fit.temperature_grid must hold positive values, got {fit.temperature_grid}"
        )
    if temperature_mode == "fixed":
        return (fixed_temperature,)  # nothing is interpolated
    return tuple(sorted(set(scoring_grid(fit.temperature_grid, fit.max_temperature))))


def tau_range(fit: Any) -> tuple[float, float]:
    """The range fitted temperatures live in: [min(grid), min(max(grid), cap)]."""
    lo = min(fit.temperature_grid)
    hi = min(max(fit.temperature_grid), fit.max_temperature)
    if hi < lo:
        raise ValueError(
            f"fit.max_temperature={fit.max_temperature} is below the smallest grid temperature {lo}"
        )
    return lo, hi


def block_triples(
    mixture: Any, examples: Sequence[Example], block: Block
) -> list[tuple[int, Pair, str, Prompt]]:
    """(row, pair, cache key, prompt) of every candidate triple of a block."""
    out = []
    for row in block.rows:
        ex = examples[row]
        for k, j in block.candidates.get(row, {}):
            prompt, ex_uids = mixture.render(ex.context, ex.fields, k, j, exclude_uid=ex.uid)
            key = triple_key(ex.uid, k if mixture.personas else None, ex_uids)
            out.append((row, (k, j), key, prompt))
    return out


def score_missing(
    lm: Any,
    cache: ScoreCache,
    examples: Sequence[Example],
    triples: Sequence[tuple[int, Pair, str, Prompt]],
    grid: Sequence[float],
    max_tokens: int,
    prompt_spec: PromptSpec,
) -> int:
    """Score, in one `lm.score` call, the triples not yet in the cache; returns how many.
    Rows of a block share their (persona, exemplar) prompt prefixes, which the LM
    backend runs once per prefix. Each real text is cut at the prompt's stop strings,
    as generation cuts its texts (`prompts.scored_text`)."""
    todo: dict[str, tuple[Prompt, str]] = {}
    for row, _, key, prompt in triples:
        if key not in cache and key not in todo:
            todo[key] = (prompt, scored_text(examples[row].text, prompt_spec))
    if not todo:
        return 0
    prompts = [v[0] for v in todo.values()]
    conts = [v[1] for v in todo.values()]
    scores = lm.score(prompts, conts, temperatures=tuple(grid), max_tokens=max_tokens)
    if len(scores) != len(todo):
        raise ValueError(f"LM scored {len(scores)} sequences, {len(todo)} were asked for")
    cache.add_many(list(todo), [s.logprob for s in scores], [s.n_tokens for s in scores])
    return len(todo)
