"""Named starting points for a run's settings. Every value can be overridden
(`--set path=value`, `--n`, a config file); the preset's name is recorded."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # For tests and CI: every stage of a run at a small size. CI regenerates comparisons
    # on three tasks with it (scripts/regenerate_reports.sh), so it is sized
    # for that: exemplars cut at 40 words (prompts of ~250 tokens instead of ~530: the
    # prefill of every exemplar-showing simulator is most of its time), 4 candidate
    # pairs per fit block, 32 held-out texts and 8 PICLe steps per label. A yelp
    # comparison of the nine took 17 minutes on a 2-core AVX512 CPU before, 11 after
    # (2026-12-07, before the fit's 4 pairs); a whole MoP run takes 2-3 minutes there.
    "smoke": {
        "budget.n_samples": 64,
        "budget.max_new_tokens": 48,
        "budget.chunk_size": 32,
        "data.pool_size": 200,
        "data.golden_size": 300,
        "simulator.n_personas": 4,
        "simulator.picle.steps": 8,
        "prompt.exemplar_words": 40,
        "fit.n_train": 32,
        "fit.candidates": 4,
        "fit.epochs": 2,
        "fit.top_m": 2,
        "fit.score_max_tokens": 32,
        "fit.proj_dim": 32,
        "fit.persona_cluster_samples": 4,
        "fit.persona_max_new_tokens": 40,
        "metrics.mauve_seeds": (25, 26),
        "metrics.heldout_n": 32,
        "metrics.heldout_samples": 4,
    },
    # What `mop-bench run` uses: a few hundred samples, K = 16; a full MoP run in
    # about 10 minutes here from a cold start.
    "default": {
        "budget.n_samples": 300,
        "budget.max_new_tokens": 64,
        "budget.chunk_size": 64,
        "data.pool_size": 500,
        "data.golden_size": 1000,
        "simulator.n_personas": 16,
        # Completion prompts with 3 exemplars are ~380 tokens, three times the old chat
        # prompts: 64 training examples and 6 candidate pairs per block and epoch, and
        # 160 held-out examples, keep the cold run under 10 minutes (docs/prompts.md).
        "fit.n_train": 64,
        "fit.candidates": 6,
        "fit.epochs": 2,
        "fit.top_m": 4,
        "fit.score_max_tokens": 48,
        # 4 draws per block keep the cold run under 10 minutes; the bound is looser
        # than with 8 (yelp: 4.143 against 4.124 nats/token; docs/mop.md).
        "metrics.heldout_samples": 4,
        "metrics.heldout_n": 160,
    },
    # The paper's scale (Bui et al. 2025): for a GPU.
    "paper": {
        "budget.n_samples": 5000,
        "budget.max_new_tokens": 128,
        "budget.chunk_size": 64,
        "data.pool_size": 2000,
        "data.golden_size": 5000,
        "simulator.n_personas": 100,
        "fit.n_train": 1000,
        "fit.epochs": 5,
        "fit.top_m": 4,
        "fit.score_max_tokens": 128,
        "fit.proj_dim": 128,
        "metrics.heldout_n": 1000,
        # the paper's tagged chat prompt (REFERENCE.md section 2), written for an 8B chat
        # model: no stop string (the chat turn ends with EOS), cut exemplars marked
        "prompt.style": "chat_tagged",
        "prompt.stop": (),
        "prompt.cut_marker": " ...",
    },
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        from mop_bench.registry import UnknownNameError, suggest

        raise UnknownNameError(
            f"unknown preset {name!r}{suggest(name, list(PRESETS))}; available: {', '.join(PRESETS)}"
        )
    return dict(PRESETS[name])
