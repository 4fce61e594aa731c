"""Generation: per context draw k ~ pi(x), j ~ Omega_k(x), then sample at tau_k.

Every random choice of a sample comes from a generator seeded with that sample's own
seed, and gate probabilities are evaluated row by row in float64, so a sample depends
only on the fitted mixture, its context and its index. The LM sees each chunk in one
`generate` call (its batch is part of the output's identity, see BudgetSpec).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mop_bench.mop.gates import MixtureGates, unit_rows
from mop_bench.mop.mixture import Mixture
from mop_bench.mop.prompts import cut_at_stop, prompt_record
from mop_bench.seeds import sample_seed
from mop_bench.spec import BudgetSpec
from mop_bench.types import Context, Generation

# A short chatty opener ending in a colon ("Sure! Here is a review:"), dropped when real
# text follows it; anything longer is left alone (minimal cleaning, raw length recorded).
_PREAMBLE = re.compile(
    r"^(sure|certainly|of course|here(?:'s| is| are)|okay|ok)\b[^\n:]{0,80}:\s*", re.I
)


def clean_generation(text: str) -> str:
    out = text.strip()
    m = _PREAMBLE.match(out)
    if m and out[m.end() :].strip():
        out = out[m.end() :].strip()
    if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'":
        out = out[1:-1].strip()
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z[np.isfinite(z)].max()
    p = np.exp(z)
    return p / p.sum()


@dataclass
class FittedMixture:
    """A mixture with its trained gates, in plain float64 numpy for sampling (the same
    arithmetic as `MixtureGates.log_gates`, row by row)."""

    mixture: Mixture
    w_x: np.ndarray
    g_unit: np.ndarray | None
    """(K, p) projected persona features, unit rows."""
    e_unit: np.ndarray | None
    """(J, p) projected exemplar features, unit rows."""
    s_pi: float
    s_omega: float
    cosine: bool
    """Cosine logits (else the paper's literal dot products)."""
    persona_gate: bool
    exemplar_gate: bool
    taus: np.ndarray

    @classmethod
    def build(
        cls,
        mixture: Mixture,
        gates: MixtureGates,
        g_feat: np.ndarray | None,
        e_feat: np.ndarray | None,
    ) -> FittedMixture:
        w = gates.numpy_view()
        cfg = gates.config
        return cls(
            mixture=mixture,
            w_x=w["w_x"],
            g_unit=None
            if g_feat is None
            else unit_rows(g_feat.astype(np.float64) @ w["w_g"].T, w["cosine"]),
            e_unit=None
            if e_feat is None
            else unit_rows(e_feat.astype(np.float64) @ w["w_e"].T, w["cosine"]),
            s_pi=w["s_pi"],
            s_omega=w["s_omega"],
            cosine=w["cosine"],
            persona_gate=bool(cfg["persona_gate"]) and mixture.n_persona_slots > 1,
            exemplar_gate=bool(cfg["exemplar_gate"]) and e_feat is not None,
            taus=w["taus"],
        )

    @property
    def needs_context_features(self) -> bool:
        return self.persona_gate or self.exemplar_gate

    def persona_probs(self, h: np.ndarray | None, allowed: np.ndarray | None = None) -> np.ndarray:
        """pi(x); `allowed` (K,) renormalises it over the personas that may serve the
        request (`Mixture.persona_allowed`)."""
        k = self.mixture.n_persona_slots
        if not self.persona_gate or h is None or self.g_unit is None:
            if allowed is None:
                return np.full(k, 1.0 / k)
            return allowed / allowed.sum()
        x = unit_rows((self.w_x @ h)[None], self.cosine)[0]
        logits = self.s_pi * (self.g_unit @ x)
        return _softmax(logits if allowed is None else np.where(allowed, logits, -np.inf))

    def exemplar_probs(
        self, h: np.ndarray | None, k: int, allowed: np.ndarray | None
    ) -> np.ndarray:
        n = self.mixture.n_exemplar_slots
        ok = np.ones(n, dtype=bool) if allowed is None else allowed
        if not self.exemplar_gate or h is None or self.e_unit is None:
            logits = np.zeros(n)
        else:
            x = unit_rows((self.w_x @ h)[None], self.cosine)[0]
            sim = self.e_unit @ x
            if self.g_unit is not None:
                sim = sim + self.e_unit @ self.g_unit[k]
                sim = sim / 2 if self.cosine else sim
            logits = self.s_omega * sim
        return _softmax(np.where(ok, logits, -np.inf))


def generate_chunk(
    chunk: Sequence[Context],
    fitted: FittedMixture,
    lm: Any,
    encode: Callable[[list[str]], np.ndarray],
    budget: BudgetSpec,
    run_seed: int,
) -> list[Generation]:
    """Generate one chunk with a single `lm.generate` call."""
    if not chunk:
        return []
    feats = None
    if fitted.needs_context_features:
        feats = np.asarray(encode([c.text for c in chunk]), dtype=np.float64)
    mix = fitted.mixture
    allowed = mix.allowed(chunk)
    persona_ok = mix.persona_allowed(chunk)
    prompts, temps, seeds, details = [], [], [], []
    for r, ctx in enumerate(chunk):
        seed = sample_seed(run_seed, ctx.index)
        rng = np.random.default_rng(seed)
        h = feats[r] if feats is not None else None
        pi = fitted.persona_probs(h, None if persona_ok is None else persona_ok[r])
        k = int(rng.choice(len(pi), p=pi)) if len(pi) > 1 else 0
        omega = fitted.exemplar_probs(h, k, None if allowed is None else allowed[r])
        j = int(rng.choice(len(omega), p=omega)) if len(omega) > 1 else 0
        prompt, ex_uids = mix.render(ctx.text, ctx.fields, k, j)
        exemplars = mix.slot_exemplars(j)
        tau = float(fitted.taus[k])
        prompts.append(prompt)
        temps.append(tau)
        seeds.append(seed)
        details.append(
            {
                "persona_index": k if mix.personas else None,
                "persona": mix.persona_text(k),
                "persona_prob": float(pi[k]),
                "exemplar_uids": ex_uids,
                "exemplar_labels": [ex.label for ex in exemplars],
                "exemplar_prob": float(omega[j]),
                "temperature": tau,
                "seed": seed,
                "prompt": prompt_record(prompt),
            }
        )
    stop = tuple(mix.prompt.stop)
    kwargs = {"stop": stop} if stop else {}
    comps = lm.generate(
        prompts,
        temperatures=temps,
        seeds=seeds,
        max_new_tokens=budget.max_new_tokens,
        top_p=budget.top_p,
        **kwargs,
    )
    if len(comps) != len(chunk):
        raise ValueError(f"LM returned {len(comps)} completions for a chunk of {len(chunk)}")
    out = []
    for ctx, comp, det in zip(chunk, comps, details, strict=True):
        # the same cut as the fit's and heldout_nll's scored texts (prompts.scored_text)
        cut = cut_at_stop(comp.text, stop)
        text = clean_generation(cut)
        ended = (
            "stop"
            if len(cut) < len(comp.text)
            else ("cap" if comp.n_tokens >= budget.max_new_tokens else "eos")
        )
        det |= {"raw_chars": len(comp.text), "n_tokens": comp.n_tokens, "ended": ended}
        out.append(
            Generation(index=ctx.index, context=ctx.text, label=ctx.label, text=text, details=det)
        )
    return out
