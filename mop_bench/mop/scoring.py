"""LM log-likelihoods of (example, persona, exemplar) triples: computed once, cached.

A triple's log-likelihood does not change while the gates train, so it is scored once
over the whole temperature grid and kept in memory and in an append-only JSONL file
(one line per triple, one write per LM batch), so that a killed fit resumes without
repeating LM work. The likelihood at any temperature in the grid's range is the
interpolation, linear in 1/tau, between the two neighbouring grid points.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

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


def interpolate_logprob(ll: torch.Tensor, grid: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Log-likelihood at `tau`, linear in 1/tau between grid points (differentiable in tau).

    ll: (P, G) values at the ascending temperature grid; tau: (P,) inside the range."""
    if grid.numel() == 1:
        return ll[:, 0]
    # 1/tau ascends when tau descends: flip so that searchsorted sees an ascending axis.
    inv_grid = torch.flip(1.0 / grid, dims=[0])
    vals = torch.flip(ll, dims=[1])
    inv = 1.0 / tau
    hi = torch.searchsorted(inv_grid, inv.detach().contiguous()).clamp(1, grid.numel() - 1)
    lo = hi - 1
    w = (inv - inv_grid[lo]) / (inv_grid[hi] - inv_grid[lo])
    rows = torch.arange(ll.shape[0])
    return vals[rows, lo] * (1 - w) + vals[rows, hi] * w
