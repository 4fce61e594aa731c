"""The capability checks behind `mop-bench doctor` (report and cache: `doctor.py`).

Each check returns one `Check`: a name, pass / FAIL / warn / skip, and the reason in
plain words. Checks marked `scoring` guard log-likelihood scoring (a MoP fit, held-out
likelihood): a server failing one of them must not be trusted to score. The others
concern generation and are reported so users know the exact semantics they get.

Generic checks use only the `LanguageModel` protocol (any backend); the server checks
talk HTTP to an OpenAI-compatible server through `OpenAICompatLM`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mop_bench.lm.base import LanguageModel, Prompt
from mop_bench.lm.http import ServerError, one_line

PASS, FAIL, WARN, SKIP = "pass", "FAIL", "warn", "skip"

#: Mean |Δ| per token (nats) within which two backends count as scoring alike. A
#: one-position shift or a wrong template costs whole nats per token (llama-cpp-python's
#: shifted echo: 11 nats on average). Measured here: vLLM fp32 against our fp32 1e-5,
#: bf16 against fp32 0.04 (docs/lm.md), llama.cpp's Q4_1 kernels (8-bit activations)
#: against the dequantized weights in fp32 0.05-0.1 on its generation log-probs.
MEAN_TOLERANCE = 0.25

#: Canary (prompt, continuation) pairs for raw-text scoring: plain facts, a review, a
#: continuation that starts without a space, and non-ASCII text (offsets in characters).
RAW_CANARIES: tuple[tuple[str, str], ...] = (
    ("The capital of France is", " Paris."),
    ("Once upon a time, there was a", " little fox who lived in the forest."),
    ("I ordered the pasta and", " it was cold, bland and overpriced. Never again!"),
    ("Le café était", " très bon, même si la crème brûlée coûtait 9 €."),
    ("Numbers: 1, 2, 3,", "4, 5, 6"),
)

#: Chat-form canaries: message lists as MoP sends them, and a continuation.
CHAT_CANARIES: tuple[tuple[Prompt, str], ...] = (
    (
        [
            {"role": "system", "content": "You embody the persona in the description."},
            {"role": "user", "content": "Write a short negative review of a pizza place."},
        ],
        "The crust was soggy and the cheese tasted like plastic. Two stars at most.",
    ),
    (
        "Please write a positive review of a business in the category Hotels.",
        "Lovely staff, spotless rooms and a quiet street. We will be back!",
    ),
)


@dataclass(frozen=True)
class Check:
    """One capability: its name, status (pass / FAIL / warn / skip) and why."""

    name: str
    status: str
    detail: str
    scoring: bool = False
    """A FAIL here means log-probs from this backend cannot be trusted for scoring."""

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<20} {self.detail}"


def _guard(name: str, scoring: bool, fn: Any, *args: Any) -> Check:
    """Run one check; a server error becomes its FAIL line (the doctor goes on)."""
    try:
        return fn(*args)
    except (ServerError, ValueError, NotImplementedError) as err:
        return Check(name, FAIL, one_line(str(err), 400), scoring)


def _short(text: str, n: int = 40) -> str:
    return repr(one_line(text, n))


# -- generic checks (any LanguageModel) ------------------------------------------------


def check_seed(lm: LanguageModel) -> Check:
    prompt = "Write one sentence about the sea."
    out = lm.generate([prompt] * 3, temperatures=[1.0] * 3, seeds=[1, 1, 2], max_new_tokens=24)
    a, b, c = (o.text for o in out)
    if a != b:
        return Check("seed", FAIL, f"seed 1 twice gave different texts: {_short(a)} / {_short(b)}")
    if a == c:
        return Check(
            "seed", FAIL, f"seeds 1 and 2 gave the same text {_short(a)}: the seed is ignored"
        )
    return Check("seed", PASS, "same seed, same text; another seed, another text (T = 1)")


def check_greedy(lm: LanguageModel) -> Check:
    prompt = "List three colours."
    out = lm.generate([prompt] * 2, temperatures=[0.0] * 2, seeds=[1, 2], max_new_tokens=16)
    if out[0].text != out[1].text:
        return Check(
            "temperature 0",
            FAIL,
            f"T = 0 is not greedy: seeds 1 and 2 gave {_short(out[0].text)} / {_short(out[1].text)}",
        )
    return Check("temperature 0", PASS, "T = 0 gives the same text whatever the seed")


def check_max_new_tokens(lm: LanguageModel) -> Check:
    out = lm.generate(
        ["Tell me a long story about a dragon."] * 2,
        temperatures=[1.0, 1.0],
        seeds=[3, 4],
        max_new_tokens=5,
    )
    counts = [o.n_tokens for o in out]
    if any(n > 5 for n in counts):
        return Check("max_new_tokens", FAIL, f"asked for at most 5 tokens, got {counts}")
    if any(n < 0 for n in counts):
        return Check("max_new_tokens", WARN, "the backend does not report token counts")
    return Check("max_new_tokens", PASS, f"at most 5 new tokens honoured (got {counts})")


def raw_reference(
    reference: Any, pairs: Sequence[tuple[str, str]]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-token log-probs of raw-text continuations from an in-process
    `TransformersLM`, the way a server scores raw text: prompt + continuation tokenised
    together (special tokens as the tokenizer adds them), the continuation being the
    tokens that start at or after the end of the prompt. Also the one-position-late
    variant, log p(token_i) under the distribution at position i (the one predicting
    token i + 1): what an echo that is off by one position returns."""
    import torch

    tok, model = reference.tokenizer, reference.model
    out, late = [], []
    for prompt, cont in pairs:
        enc = tok(prompt + cont, return_offsets_mapping=True)
        ids, spans = enc["input_ids"], enc["offset_mapping"]
        picked = [i for i, (a, b) in enumerate(spans) if i > 0 and b > a and a >= len(prompt)]
        with torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0].float()
        logp = torch.log_softmax(logits, -1)
        out.append(np.array([float(logp[i - 1, ids[i]]) for i in picked]))
        late.append(np.array([float(logp[i, ids[i]]) for i in picked]))
    return out, late


def compare_token_logprobs(
    ours: Sequence[np.ndarray],
    ref: Sequence[np.ndarray],
    labels: Sequence[str],
    *,
    late: Sequence[np.ndarray] | None = None,
    tolerance: float = MEAN_TOLERANCE,
) -> tuple[Check, dict[str, Any]]:
    """Per-token log-probs of a backend against the in-process reference: the token
    count per text, then mean / max |Δ|, and (when it fails) whether the values are
    those of the neighbouring token, or (`late`, see `raw_reference`) of the next
    position's distribution."""
    stats: dict[str, Any] = {"pairs": len(ours)}
    counts = [(len(o), len(r)) for o, r in zip(ours, ref, strict=True)]
    bad = [i for i, (a, b) in enumerate(counts) if a != b]
    if bad:
        i = bad[0]
        return Check(
            "reference",
            FAIL,
            f"{len(bad)} of {len(ours)} canaries have a different token count than the "
            f"in-process reference (e.g. {_short(labels[i])}: {counts[i][0]} vs {counts[i][1]})",
            True,
        ), stats
    diffs = np.concatenate(
        [np.abs(np.asarray(o, float) - r) for o, r in zip(ours, ref, strict=True)]
    )
    shifted = [np.abs(np.asarray(o[:-1], float) - r[1:]) for o, r in zip(ours, ref, strict=True)]
    shift = np.concatenate([d for d in shifted if d.size] or [np.zeros(0)])
    stats |= {"tokens": int(diffs.size), "mean": float(diffs.mean()), "max": float(diffs.max())}
    summary = (
        f"{len(ours)} canaries, {diffs.size} tokens: mean |Δ| {diffs.mean():.2g}, "
        f"max {diffs.max():.2g} nats (tolerance: mean < {tolerance:g})"
    )
    if diffs.mean() < tolerance:
        return Check(
            "reference", PASS, f"log-probs agree with the in-process reference; {summary}", True
        ), stats
    hint = ""
    if late is not None:
        off = np.concatenate(
            [np.abs(np.asarray(o, float) - r) for o, r in zip(ours, late, strict=True)]
        )
        if off.mean() < min(tolerance, diffs.mean() / 4):
            hint = (
                f"; the log-probs are off by one position: each token's value comes from the "
                f"distribution one position later, the one that predicts the next token "
                f"(against that the mean |Δ| is {off.mean():.2g})"
            )
    if not hint and shift.size and shift.mean() < diffs.mean() / 4:
        hint = (
            f"; they are shifted by one position (shifted back by one they would agree to "
            f"{shift.mean():.2g})"
        )
    return Check(
        "reference",
        FAIL,
        f"log-probs disagree with the in-process reference: {summary}{hint}",
        True,
    ), stats


def per_token(scores: Sequence[Any]) -> list[np.ndarray]:
    return [np.asarray(s.token_logprobs[:, 0], dtype=np.float64) for s in scores]


def check_reference_chat(lm: LanguageModel, reference: LanguageModel) -> Check:
    """Chat-form canaries (the form MoP scores) through `lm` and the reference."""
    prompts = [p for p, _ in CHAT_CANARIES]
    conts = [c for _, c in CHAT_CANARIES]
    ours = per_token(lm.score(prompts, conts, per_token=True))
    ref = per_token(reference.score(prompts, conts, per_token=True))
    return compare_token_logprobs(ours, ref, conts)[0]


def generic_checks(lm: LanguageModel, reference: LanguageModel | None) -> list[Check]:
    checks = [
        _guard("seed", False, check_seed, lm),
        _guard("temperature 0", False, check_greedy, lm),
        _guard("max_new_tokens", False, check_max_new_tokens, lm),
    ]
    if reference is None:
        checks.append(Check("reference", SKIP, "no in-process reference model (--reference)", True))
    else:
        checks.append(_guard("reference", True, check_reference_chat, lm, reference))
    return checks
