"""The MoP gates (REFERENCE.md section 2) as a torch module.

    x~ = W_x h(x),  g~_k = W_g h(g_k),  e~_j = W_e h(e_j)
    pi(x)       = softmax_k( x~ . g~_k )
    Omega_k(x)  = softmax_j( x~ . e~_j + g~_k . e~_j )     (own exemplar masked out)
    tau_k       = exp(theta_k), theta_k projected into [log tau_min, log tau_max]

Only the projections and the temperatures are trained. Slots that do not apply (no
personas: one empty persona slot; no or fixed exemplars: one exemplar slot) get a
constant logit, so every simulator is this one module with some parts switched off.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn


class MixtureGates(nn.Module):
    def __init__(
        self,
        enc_dim: int,
        proj_dim: int,
        n_personas: int,
        *,
        persona_gate: bool,
        exemplar_gate: bool,
        temperature: str,
        tau_range: tuple[float, float],
        fixed_temperature: float,
        generator: torch.Generator,
    ) -> None:
        """`n_personas` counts persona slots (1 when there are no personas);
        `persona_gate`/`exemplar_gate` say whether that gate is learned (else uniform);
        `temperature` is per_persona, one_fitted or fixed."""
        super().__init__()
        if temperature not in ("per_persona", "one_fitted", "fixed"):
            raise ValueError(f"unknown temperature mode {temperature!r}")
        lo, hi = tau_range
        if not 0 < lo <= hi:
            raise ValueError(f"temperature range must be positive and ordered, got {tau_range}")
        self.config: dict[str, Any] = {
            "enc_dim": enc_dim,
            "proj_dim": proj_dim,
            "n_personas": n_personas,
            "persona_gate": persona_gate,
            "exemplar_gate": exemplar_gate,
            "temperature": temperature,
            "tau_range": [lo, hi],
            "fixed_temperature": fixed_temperature,
        }
        # Small init: logits start near zero, so the first top-M choices are close to
        # uniform and no persona is favoured before any evidence.
        std = 1.0 / math.sqrt(enc_dim)
        self.w_x = nn.Parameter(torch.randn(proj_dim, enc_dim, generator=generator) * std)
        self.w_g = nn.Parameter(torch.randn(proj_dim, enc_dim, generator=generator) * std)
        self.w_e = nn.Parameter(torch.randn(proj_dim, enc_dim, generator=generator) * std)
        n_tau = n_personas if temperature == "per_persona" else 1
        self.log_tau = nn.Parameter(torch.zeros(n_tau))  # tau = 1 at the start
        self.w_x.requires_grad_(persona_gate or exemplar_gate)
        self.w_g.requires_grad_(persona_gate or (exemplar_gate and n_personas > 1))
        self.w_e.requires_grad_(exemplar_gate)
        self.log_tau.requires_grad_(temperature != "fixed")
        self.clamp_()

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def taus(self) -> torch.Tensor:
        """(K,) temperature per persona slot."""
        k = self.config["n_personas"]
        if self.config["temperature"] == "fixed":
            return torch.full((k,), float(self.config["fixed_temperature"]), dtype=torch.float64)
        return torch.exp(self.log_tau.double()).expand(k)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project theta into the grid's range (projection keeps a gradient at the edge,
        unlike clamping inside the forward pass)."""
        lo, hi = self.config["tau_range"]
        self.log_tau.clamp_(math.log(lo), math.log(hi))

    def log_gates(
        self,
        x: torch.Tensor,
        g: torch.Tensor | None,
        e: torch.Tensor | None,
        exclude: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, K, J) log of pi_k(x) * Omega_kj(x), float64.

        x: (B, d) context features; g: (K, d) persona features or None; e: (J, d)
        exemplar features or None (one slot); exclude: (B, J) bool, True where an
        exemplar must not be used for that row (its own text)."""
        b = x.shape[0]
        k = self.config["n_personas"]
        xt = x.double() @ self.w_x.double().T
        gt = g.double() @ self.w_g.double().T if g is not None else None
        if self.config["persona_gate"] and gt is not None and k > 1:
            log_pi = torch.log_softmax(xt @ gt.T, dim=-1)
        else:
            log_pi = torch.full((b, k), -math.log(k), dtype=torch.float64)
        if e is None:
            log_omega = torch.zeros((b, k, 1), dtype=torch.float64)
        else:
            n_ex = e.shape[0]
            if self.config["exemplar_gate"]:
                et = e.double() @ self.w_e.double().T
                logits = (xt @ et.T)[:, None, :].expand(b, k, n_ex)
                if gt is not None:
                    logits = logits + (gt @ et.T)[None, :, :]
            else:
                logits = torch.zeros((b, k, n_ex), dtype=torch.float64)
            if exclude is not None:
                logits = logits.masked_fill(exclude[:, None, :], float("-inf"))
            log_omega = torch.log_softmax(logits, dim=-1)
        return log_pi[:, :, None] + log_omega

    def to_checkpoint(self) -> dict[str, Any]:
        return {"config": dict(self.config), "state": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> MixtureGates:
        cfg = ckpt["config"]
        gates = cls(
            cfg["enc_dim"],
            cfg["proj_dim"],
            cfg["n_personas"],
            persona_gate=cfg["persona_gate"],
            exemplar_gate=cfg["exemplar_gate"],
            temperature=cfg["temperature"],
            tau_range=tuple(cfg["tau_range"]),
            fixed_temperature=cfg["fixed_temperature"],
            generator=torch.Generator().manual_seed(0),  # overwritten by the state below
        )
        gates.load_state_dict(ckpt["state"])
        return gates

    def numpy_view(self) -> dict[str, np.ndarray]:
        """Float64 copies of the weights, for per-sample gate evaluation at generation."""
        with torch.no_grad():
            return {
                "w_x": self.w_x.double().numpy().copy(),
                "w_g": self.w_g.double().numpy().copy(),
                "w_e": self.w_e.double().numpy().copy(),
                "taus": self.taus().numpy().copy(),
            }
