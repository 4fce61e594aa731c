"""The MoP gates (REFERENCE.md section 2) as a torch module, with bounded logits.

    x~ = W_x h(x),  g~_k = W_g h(g_k),  e~_j = W_e h(e_j)
    pi(x)       = softmax_k( s_pi    * cos(x~, g~_k) )
    Omega_k(x)  = softmax_j( s_omega * (cos(x~, e~_j) + cos(g~_k, e~_j)) / 2 )
                  over the exemplars allowed for x (own example and, with
                  `exemplar_match`, other labels masked out)
    tau_k       = exp(theta_k), theta_k projected into [log tau_min, log tau_max]

The paper writes the logits as dot products x~ . g~_k and x~ . e~_j + g~_k . e~_j. Left
unbounded, Adam's first near-sign steps grow the projections until one exemplar takes
all the mass (issue 9: top singular value 11 after 18 steps, Omega's top weight
0.9999999999). Here a logit is a cosine similarity times a learned scale capped at
`scale_max` (s = scale_max * sigmoid(a), starting at 1), so no pair can outweigh another
by more than exp(2 * scale_max) and the gate starts near uniform.

`logits="dot"` keeps the paper's literal unbounded dot products (no scale), as a
recorded ablation that reproduces the collapse.

Slots that do not apply (no personas: one empty persona slot; no or fixed exemplars: one
exemplar slot) get a constant logit, so every simulator is this one module with some
parts switched off. `gate_probs` is the same arithmetic in numpy for generation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

#: Added to squared norms before the square root: a zero feature row gets cosine 0.
_EPS = 1e-12


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x * x).sum(-1, keepdim=True) + _EPS)


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
        scale_max: float = 10.0,
        tau_init: float = 1.0,
        logits: str = "cosine",
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
        if not scale_max > 1.0:
            raise ValueError(f"fit.gate_scale_max must be > 1, got {scale_max}")
        if logits not in ("cosine", "dot"):
            raise ValueError(f"fit.gate_logits must be cosine or dot, got {logits!r}")
        self.config: dict[str, Any] = {
            "enc_dim": enc_dim,
            "proj_dim": proj_dim,
            "n_personas": n_personas,
            "persona_gate": persona_gate,
            "exemplar_gate": exemplar_gate,
            "temperature": temperature,
            "tau_range": [lo, hi],
            "fixed_temperature": fixed_temperature,
            "scale_max": scale_max,
            "logits": logits,
        }
        std = 1.0 / math.sqrt(enc_dim)
        self.w_x = nn.Parameter(torch.randn(proj_dim, enc_dim, generator=generator) * std)
        self.w_g = nn.Parameter(torch.randn(proj_dim, enc_dim, generator=generator) * std)
        self.w_e = nn.Parameter(torch.randn(proj_dim, enc_dim, generator=generator) * std)
        # s = scale_max * sigmoid(a) starts at 1: logits in [-1, 1], gates near uniform.
        start = math.log(1.0 / (scale_max - 1.0))
        self.scale_pi = nn.Parameter(torch.tensor(start, dtype=torch.float64))
        self.scale_omega = nn.Parameter(torch.tensor(start, dtype=torch.float64))
        n_tau = n_personas if temperature == "per_persona" else 1
        init = min(max(float(tau_init), lo), hi)
        self.log_tau = nn.Parameter(torch.full((n_tau,), math.log(init), dtype=torch.float64))
        learn_pi = persona_gate and n_personas > 1
        self.w_x.requires_grad_(learn_pi or exemplar_gate)
        self.w_g.requires_grad_(learn_pi or (exemplar_gate and n_personas > 1))
        self.w_e.requires_grad_(exemplar_gate)
        self.scale_pi.requires_grad_(learn_pi and logits == "cosine")
        self.scale_omega.requires_grad_(exemplar_gate and logits == "cosine")
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

    def scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config["logits"] == "dot":
            one = torch.tensor(1.0, dtype=torch.float64)
            return one, one
        cap = float(self.config["scale_max"])
        return cap * torch.sigmoid(self.scale_pi), cap * torch.sigmoid(self.scale_omega)

    def _proj(self, feats: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        out = feats.double() @ weight.double().T
        return _unit(out) if self.config["logits"] == "cosine" else out

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project theta into the temperature range (projection keeps a gradient at the
        edge, unlike clamping inside the forward pass)."""
        lo, hi = self.config["tau_range"]
        self.log_tau.clamp_(math.log(lo), math.log(hi))

    def log_gates(
        self,
        x: torch.Tensor,
        g: torch.Tensor | None,
        e: torch.Tensor | None,
        allowed: torch.Tensor | None = None,
        persona_allowed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, K, J) log of pi_k(x) * Omega_kj(x), float64 (-inf where not allowed).

        x: (B, d) context features; g: (K, d) persona features or None; e: (J, d)
        exemplar features or None (one slot); allowed: (B, J) bool, False where an
        exemplar must not be used for that row (its own text, another label);
        persona_allowed: (B, K) bool, False where a persona may not serve the row
        (`persona_label_match`): pi is renormalised over the allowed ones. Computed on
        one thread: a (B, K, J) softmax is large enough for torch to split its sums
        across threads, and the last bits then depend on the thread count."""
        with using_threads(1):
            return self._log_gates(x, g, e, allowed, persona_allowed)

    def _log_gates(
        self,
        x: torch.Tensor,
        g: torch.Tensor | None,
        e: torch.Tensor | None,
        allowed: torch.Tensor | None,
        persona_allowed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b = x.shape[0]
        k = self.config["n_personas"]
        s_pi, s_omega = self.scales()
        xt = self._proj(x, self.w_x)
        gt = self._proj(g, self.w_g) if g is not None else None
        gated = self.config["persona_gate"] and gt is not None and k > 1
        if persona_allowed is not None:
            pi_logits = s_pi * (xt @ gt.T) if gated else torch.zeros((b, k), dtype=torch.float64)
            log_pi = torch.log_softmax(pi_logits.masked_fill(~persona_allowed, float("-inf")), -1)
        elif gated:
            log_pi = torch.log_softmax(s_pi * (xt @ gt.T), dim=-1)
        else:  # kept apart from the masked branch: the same bits as before the option
            log_pi = torch.full((b, k), -math.log(k), dtype=torch.float64)
        if e is None:
            log_omega = torch.zeros((b, k, 1), dtype=torch.float64)
        else:
            n_ex = e.shape[0]
            if self.config["exemplar_gate"]:
                et = self._proj(e, self.w_e)
                sim = (xt @ et.T)[:, None, :].expand(b, k, n_ex)
                if gt is not None:
                    sim = sim + (gt @ et.T)[None, :, :]
                    # cosine: the mean of the two similarities, so |logit| <= scale
                    sim = sim / 2 if self.config["logits"] == "cosine" else sim
                logits = s_omega * sim
            else:
                logits = torch.zeros((b, k, n_ex), dtype=torch.float64)
            if allowed is not None:
                logits = logits.masked_fill(~allowed[:, None, :], float("-inf"))
            log_omega = torch.log_softmax(logits, dim=-1)
        return log_pi[:, :, None] + log_omega

    def to_checkpoint(self) -> dict[str, Any]:
        return {"config": dict(self.config), "state": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> MixtureGates:
        cfg = ckpt["config"]
        if cfg.get("logits") not in ("cosine", "dot"):
            raise ValueError(
                "gates checkpoint was written by an older mop-bench (unbounded logits); "
                "refit it (re-run without --gates-from, or with --overwrite)"
            )
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
            scale_max=cfg["scale_max"],
            logits=cfg["logits"],
        )
        gates.load_state_dict(ckpt["state"])
        return gates

    def numpy_view(self) -> dict[str, Any]:
        """Float64 copies of everything `gate_probs` needs."""
        with torch.no_grad():
            s_pi, s_omega = self.scales()
            return {
                "w_x": self.w_x.double().numpy().copy(),
                "w_g": self.w_g.double().numpy().copy(),
                "w_e": self.w_e.double().numpy().copy(),
                "s_pi": float(s_pi),
                "s_omega": float(s_omega),
                "cosine": self.config["logits"] == "cosine",
                "taus": self.taus().numpy().copy(),
            }


def unit_rows(x: np.ndarray, cosine: bool = True) -> np.ndarray:
    """Rows scaled to unit length (the numpy twin of `_unit`); unchanged for `dot`."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.sqrt((x * x).sum(-1, keepdims=True) + _EPS) if cosine else x


@contextmanager
def using_threads(n: int) -> Iterator[None]:
    """Torch's intra-op thread count set to `n` for the block, restored after. The gate
    arithmetic runs on one thread: its tensors are tiny, so a second thread only waits
    (seen 6x slower on a busy 2-core machine), and float sums then cannot depend on the
    machine's thread count. LM scoring inside the fit gets the LM's threads back (it ran
    on one thread by mistake until 2026-12-02: about half the fit's speed here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
