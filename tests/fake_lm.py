"""A fake LanguageModel for MoP tests: planted likelihoods, deterministic generations.

`score` returns, for every grid temperature t,
    planted(prompt, continuation) - n_tokens * curvature * (1/t - 1/best_tau)^2
so the likelihood-optimal temperature is `best_tau`, and `planted` decides which
(persona, exemplar) explains which text. Every call is recorded for counting.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence

import numpy as np

from mop_bench.lm.base import Completion, LMStats, Prompt, SequenceScore
from mop_bench.mop.prompts import prompt_text

WORDS = [
    "the",
    "food",
    "service",
    "place",
    "great",
    "bad",
    "staff",
    "menu",
    "price",
    "night",
    "quiet",
    "loud",
    "fresh",
    "slow",
]


class FakeLM:
    def __init__(
        self,
        planted: Callable[[str, str], float] | None = None,
        *,
        best_tau: float = 1.0,
        curvature: float = 2.0,
        name: str = "fake-lm",
    ) -> None:
        self.name = name
        self.stats = LMStats()
        self.planted = planted
        self.best_tau = best_tau
        self.curvature = curvature
        self.score_calls: list[list[tuple[str, str]]] = []
        self.generate_calls: list[list[tuple[str, float, int]]] = []

    def score(
        self,
        prompts: Sequence[Prompt],
        continuations: Sequence[str],
        *,
        temperatures: Sequence[float] = (1.0,),
        max_tokens: int | None = None,
        per_token: bool = False,
    ) -> list[SequenceScore]:
        texts = [prompt_text(p) for p in prompts]
        self.score_calls.append(list(zip(texts, continuations, strict=True)))
        temps = np.asarray(temperatures, dtype=np.float64)
        out = []
        for text, cont in zip(texts, continuations, strict=True):
            n = len(cont.split())
            if max_tokens is not None:
                n = min(n, max_tokens)
            base = self.planted(text, cont) if self.planted else -2.0 * n
            lp = base - n * self.curvature * (1.0 / temps - 1.0 / self.best_tau) ** 2
            out.append(SequenceScore(logprob=lp, n_tokens=n))
            self.stats.score_sequences += 1
            self.stats.score_tokens += n
        return out

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        temperatures: Sequence[float],
        seeds: Sequence[int],
        max_new_tokens: int,
        top_p: float = 1.0,
        stop: Sequence[str] = (),
        min_new_tokens: int = 0,
    ) -> list[Completion]:
        texts = [prompt_text(p) for p in prompts]
        self.generate_calls.append(list(zip(texts, temperatures, seeds, strict=True)))
        out = []
        for text, temp, seed in zip(texts, temperatures, seeds, strict=True):
            key = hashlib.sha256(f"{text}|{temp:.6f}|{seed}|{top_p}".encode()).digest()
            rng = random.Random(key)
            n = rng.randint(3, max(3, min(max_new_tokens, 12)))
            words = [rng.choice(WORDS) for _ in range(n)]
            if "Describe the writer in one sentence." in text:  # persona synthesizer
                body = f" diner who talks about {words[0]}, {words[1]} and {words[2]} loudly. More."
            elif text.rstrip().endswith(":"):  # a completion-style document header
                body = " ".join(words) + "\n\nNext header:\n" + " ".join(words[:2])
            else:
                body = "Sure! Here is the text: " + " ".join(words)
            out.append(Completion(text=body, n_tokens=n))
            self.stats.generate_sequences += 1
            self.stats.generate_tokens += n
        return out
