"""Is the mixture a mixture? Diagnostics of a fit and of the samples drawn from it.

A collapsed MoP (one exemplar for every context, a few personas) looks fine in a loss
curve and is just a one-shot prompt. Every MoP-family run therefore records:
- from the fit: the effective number (exp of the entropy) of personas and exemplars
  under the gates, per context and over the whole set of contexts, and which
  temperatures were never trained (their persona never scored);
- from the generations: distinct exemplars, the top exemplar's share, the personas
  drawn with their shares, and how often an exemplar's label is the requested label.
`verdict` turns these into a collapse flag with the reasons, shown in the run log and
as a visible flag in the report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

#: A mixture counts as collapsed when one exemplar serves more than this share of the
#: samples (or the gates give fewer than MIN_EFFECTIVE exemplars per context)...
MAX_TOP_EXEMPLAR_SHARE = 0.5
MIN_EFFECTIVE_EXEMPLARS = 2.0
#: ...or one persona more than this share (with more than one persona).
MAX_TOP_PERSONA_SHARE = 0.8
MIN_EFFECTIVE_PERSONAS = 1.5


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    logp = np.log(np.where(p > 0, p, 1.0))
    return -(p * logp).sum(axis=axis)


def gate_diagnostics(log_w: np.ndarray, trained_personas: Sequence[int] | None) -> dict[str, Any]:
    """From (N, K, J) log gates of N contexts: effective personas / exemplars per
    context (mean) and over all contexts (marginal), and untrained temperatures."""
    w = np.exp(log_w)  # -inf -> 0
    pi = w.sum(axis=2)  # (N, K)
    omega = w / np.maximum(pi[:, :, None], 1e-300)  # (N, K, J)
    k, j = w.shape[1], w.shape[2]
    out: dict[str, Any] = {
        "contexts": int(w.shape[0]),
        "effective_personas": float(np.exp(_entropy(pi)).mean()),
        "effective_personas_marginal": float(np.exp(_entropy(pi.mean(0)))),
        "effective_exemplars": float((pi * np.exp(_entropy(omega))).sum(1).mean()),
        "effective_exemplars_marginal": float(np.exp(_entropy(w.sum(1).mean(0)))),
        "top_exemplar_weight_mean": float(omega.max(axis=2).mean()) if j > 1 else 1.0,
        "n_personas": k,
        "n_exemplar_slots": j,
    }
    if trained_personas is not None:
        never = [i for i in range(k) if i not in set(trained_personas)]
        out["taus_never_trained"] = never
        out["share_taus_never_trained"] = len(never) / k
    return out


def generation_diagnostics(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """From `Generation.to_json()` rows: who and what was actually drawn."""
    n = len(rows)
    exemplars: Counter[str] = Counter()
    personas: Counter[int] = Counter()
    match = checked = 0
    for row in rows:
        d = row.get("details") or {}
        exemplars.update(d.get("exemplar_uids") or [])
        if d.get("persona_index") is not None:
            personas[int(d["persona_index"])] += 1
        labels = d.get("exemplar_labels")
        if labels and row.get("label") is not None:
            checked += 1
            match += all(lab == row["label"] for lab in labels)
    top_uid, top_n = exemplars.most_common(1)[0] if exemplars else (None, 0)
    return {
        "samples": n,
        "distinct_exemplars": len(exemplars),
        "top_exemplar": top_uid,
        "top_exemplar_share": top_n / n if n else 0.0,
        "distinct_personas": len(personas),
        "persona_shares": {str(k): v / n for k, v in sorted(personas.items())},
        "top_persona_share": max(personas.values()) / n if personas and n else 0.0,
        "exemplar_label_match": match / checked if checked else None,
    }


def verdict(
    fit: dict[str, Any] | None, gen: dict[str, Any] | None, *, gated: bool, personas: int
) -> dict[str, Any]:
    """`collapsed` and its reasons, judged only on the levels that are learned mixtures
    (gated exemplars; more than one persona)."""
    reasons: list[str] = []
    fit, gen = fit or {}, gen or {}
    if gated:
        share = gen.get("top_exemplar_share")
        if share is not None and share > MAX_TOP_EXEMPLAR_SHARE:
            reasons.append(
                f"one exemplar ({gen.get('top_exemplar')}) in {share:.0%} of the samples"
            )
        eff = fit.get("effective_exemplars")
        if eff is not None and eff < MIN_EFFECTIVE_EXEMPLARS:
            reasons.append(f"the exemplar gate gives {eff:.2f} effective exemplars per context")
    if personas > 1:
        share = gen.get("top_persona_share")
        if share is not None and share > MAX_TOP_PERSONA_SHARE:
            reasons.append(f"one persona in {share:.0%} of the samples")
        eff = fit.get("effective_personas_marginal")
        if eff is not None and eff < MIN_EFFECTIVE_PERSONAS:
            reasons.append(f"the persona gate uses {eff:.2f} effective personas over all contexts")
    return {
        "collapsed": bool(reasons),
        "reasons": reasons,
        "thresholds": {
            "max_top_exemplar_share": MAX_TOP_EXEMPLAR_SHARE,
            "min_effective_exemplars": MIN_EFFECTIVE_EXEMPLARS,
            "max_top_persona_share": MAX_TOP_PERSONA_SHARE,
            "min_effective_personas": MIN_EFFECTIVE_PERSONAS,
        },
    }
