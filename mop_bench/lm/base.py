"""What MoP needs from a language model: `generate` and `score`. Nothing else.

Backends (in-process transformers, OpenAI-compatible servers, vLLM) implement this
protocol; a fake one with planted likelihoods makes the MoP trainer testable in
milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class RawPrompt:
    """Text the model continues as is: no chat template (a completion-style prompt,
    the way base models are few-shot prompted). Servers get it on /v1/completions."""

    text: str


#: A prompt is plain text (sent as one user message), chat messages
#: [{"role": "system"|"user"|"assistant", "content": str}, ...], or a `RawPrompt`.
#: Backends apply the model's chat template to the first two where it has one. A final
#: "assistant" message is a pre-filled start of the answer, which generation continues
#: (its text is not repeated in the completion).
Prompt = str | list[dict[str, str]] | RawPrompt


def split_prefill(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], str]:
    """(messages to render with the generation prompt, pre-filled answer text)."""
    if messages and messages[-1].get("role") == "assistant":
        return messages[:-1], str(messages[-1].get("content") or "")
    return messages, ""


@dataclass(frozen=True)
class Completion:
    """One generated continuation."""

    text: str
    n_tokens: int
    """New tokens generated (stops at EOS or max_new_tokens)."""


@dataclass(frozen=True)
class SequenceScore:
    """Log-likelihood of one continuation after one prompt, at several temperatures."""

    logprob: np.ndarray
    """Shape (len(temperatures),): sum over continuation tokens of log p_tau(y_t | ...)."""
    n_tokens: int
    """Continuation tokens scored (after truncation to max_tokens)."""
    token_logprobs: np.ndarray | None = None
    """Shape (n_tokens, len(temperatures)) when per-token scores were asked for."""


@dataclass
class LMStats:
    """Work counters, so fitting cost can be reported separately from generation."""

    score_sequences: int = 0
    score_tokens: int = 0
    score_seconds: float = 0.0
    generate_sequences: int = 0
    generate_tokens: int = 0
    generate_seconds: float = 0.0
    score_prompt_tokens: int = 0
    """Prompt tokens of the scored sequences (0 where a backend does not count them):
    with `score_tokens`, what `benchmarks/end_to_end.py` reports as prompt and
    continuation throughput."""
    generate_prompt_tokens: int = 0
    """Prompt tokens of the generated sequences (0 where a backend does not count them)."""
    extra: dict[str, float] = field(default_factory=dict)

    def add_generate(
        self, sequences: int, tokens: int, seconds: float, prompt_tokens: int = 0
    ) -> None:
        self.generate_sequences += sequences
        self.generate_tokens += tokens
        self.generate_seconds += seconds
        self.generate_prompt_tokens += prompt_tokens

    def add_score(
        self, sequences: int, tokens: int, seconds: float, prompt_tokens: int = 0
    ) -> None:
        self.score_sequences += sequences
        self.score_tokens += tokens
        self.score_seconds += seconds
        self.score_prompt_tokens += prompt_tokens


@runtime_checkable
class LanguageModel(Protocol):
    """A frozen LM. Implementations must make `generate` deterministic per seed: the
    text for a prompt depends only on (prompt, temperature, seed, max_new_tokens,
    top_p) and the batch it is generated in, never on global RNG state."""

    name: str
    """Identity recorded with results (model id / file and dtype)."""
    stats: LMStats

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
        """`stop`: strings that end a text (excluded from it). A backend may stop early
        at one or just generate on; callers cut with `mop_bench.mop.prompts.cut_at_stop`
        either way, so the text is the same. `min_new_tokens`: EOS is not allowed
        before this many tokens (ZeroGen's fixed-length samples)."""
        ...

    def score(
        self,
        prompts: Sequence[Prompt],
        continuations: Sequence[str],
        *,
        temperatures: Sequence[float] = (1.0,),
        max_tokens: int | None = None,
        per_token: bool = False,
    ) -> list[SequenceScore]: ...
