"""The rates a cost estimate assumes (mop_bench/estimate.py): this machine's, from the
timing.json of finished runs of the same LM and backend in the results folder, else
those of the reference run recorded in benchmarks/README.md."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Minimum recorded tokens before a machine's own rate replaces the reference rate.
MIN_RECORDED_TOKENS = 2000


@dataclass(frozen=True)
class Rates:
    generate: float
    """New tokens per second while generating, prompt processing included."""
    score: float
    """Scored (continuation) tokens per second, prompt processing included."""
    encode: float
    """Texts per second through the sentence encoder (one text at a time)."""
    source: str

    def describe(self) -> str:
        return (
            f"{self.generate:.0f} new tokens/s generating, {self.score:.0f} scored tokens/s, "
            f"{self.encode:.0f} texts/s encoding ({self.source})"
        )


#: The cold default yelp MoP run of 2026-12-06 in benchmarks/README.md (479 s; its
#: timing.json: 16,220 new tokens in 296 s, 60,136 scored tokens in 142 s).
REFERENCE_RATES = Rates(
    generate=55.0,
    score=420.0,
    encode=40.0,
    source="the reference run in benchmarks/README.md: 2-core CPU, SmolLM2-135M bf16",
)


def recorded_rates(results_dir: Path, lm: Any, *, limit: int = 100) -> Rates:
    """Rates from the timing.json of finished runs of `lm` (model and backend) under
    `results_dir`, newest first (at most `limit` runs read); each rate falls back to
    the reference where fewer than MIN_RECORDED_TOKENS were recorded."""
    gen = [0.0, 0.0]
    score = [0.0, 0.0]
    used = 0
    try:
        files = list(Path(results_dir).glob("*/*/timing.json"))
        files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        files = []
    for path in files[:limit]:
        try:
            with open(path.parent / "config.json", encoding="utf-8") as fh:
                run_lm = json.load(fh)["spec"]["lm"]
            with open(path, encoding="utf-8") as fh:
                totals = json.load(fh).get("totals") or {}
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if run_lm.get("model") != lm.model or run_lm.get("backend") != lm.backend:
            continue
        g = (totals.get("lm_generate_tokens", 0), totals.get("lm_generate_seconds", 0))
        s = (totals.get("lm_score_tokens", 0), totals.get("lm_score_seconds", 0))
        if g[1] > 0 or s[1] > 0:
            used += 1
        gen = [gen[0] + g[0], gen[1] + g[1]]
        score = [score[0] + s[0], score[1] + s[1]]
    own_gen = gen[0] >= MIN_RECORDED_TOKENS and gen[1] > 0
    own_score = score[0] >= MIN_RECORDED_TOKENS and score[1] > 0
    if not (own_gen or own_score):
        return REFERENCE_RATES
    return Rates(
        generate=gen[0] / gen[1] if own_gen else REFERENCE_RATES.generate,
        score=score[0] / score[1] if own_score else REFERENCE_RATES.score,
        encode=REFERENCE_RATES.encode,
        source=f"recorded by {used} finished run(s) of {lm.model} under {results_dir}"
        + ("" if own_gen and own_score else "; the rest from the reference run"),
    )
