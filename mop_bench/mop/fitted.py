"""A fitted mixture: its slots, trained gates and the features the gates read.

One object answers every question asked of a fit after training: the log gate weights
of any contexts, the gate diagnostics (diagnostics.py), and the numpy twin used for
sampling (`sampler`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mop_bench.mop.diagnostics import gate_diagnostics
from mop_bench.mop.gates import MixtureGates
from mop_bench.mop.mixture import Mixture
from mop_bench.mop.sample import FittedMixture


@dataclass
class FittedModel:
    mixture: Mixture
    gates: MixtureGates
    g_feat: np.ndarray | None
    """(K, d) persona features (None without personas)."""
    e_feat: np.ndarray | None
    """(J, d) gated exemplar features (None unless exemplars are gated)."""
    sampler: FittedMixture

    @classmethod
    def build(
        cls,
        mixture: Mixture,
        gates: MixtureGates,
        g_feat: np.ndarray | None,
        e_feat: np.ndarray | None,
    ) -> FittedModel:
        sampler = FittedMixture.build(mixture, gates, g_feat, e_feat)
        return cls(mixture, gates, g_feat, e_feat, sampler)

    @property
    def needs_context_features(self) -> bool:
        return self.sampler.needs_context_features

    def log_weights(self, rows: Sequence[Any], x_feat: np.ndarray | None) -> np.ndarray:
        """(B, K, J) log pi_k(x) Omega_kj(x) of `rows` (examples or contexts; -inf where
        an exemplar is not allowed), float64."""
        import torch

        allowed = self.mixture.allowed(rows)
        dim = self.gates.config["enc_dim"]
        x = np.zeros((len(rows), dim), np.float32) if x_feat is None else x_feat
        as_t = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
        with torch.no_grad():
            return self.gates.log_gates(
                torch.from_numpy(np.asarray(x, dtype=np.float32)),
                as_t(self.g_feat),
                as_t(self.e_feat),
                as_t(allowed),
                as_t(self.mixture.persona_allowed(rows)),
            ).numpy()

    def diagnostics(
        self, rows: Sequence[Any], x_feat: np.ndarray | None, compared: list[int] | None
    ) -> dict[str, Any]:
        """Effective personas / exemplars over `rows`; `compared`: the personas whose
        temperature the fit could train (None: not reported)."""
        out = gate_diagnostics(self.log_weights(rows, x_feat), compared)
        out["exemplar_match_fallbacks"] = self.mixture.match_fallbacks(rows)
        return out
