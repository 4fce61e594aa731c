"""Server-specific checks of `mop-bench doctor` (OpenAI-compatible HTTP semantics).

They find the defects that silently break a MoP fit through a server: echoed prompt
log-probs shifted by one position (llama-cpp-python with models that add no BOS), a
missing generated entry, `max_tokens=0` meaning "unlimited", character offsets
counted in bytes, a chat template that differs from the model's tokenizer's, and a
final assistant message that is closed instead of continued.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np

from mop_bench.lm.doctor_checks import (
    FAIL,
    MEAN_TOLERANCE,
    PASS,
    RAW_CANARIES,
    SKIP,
    WARN,
    Check,
    _guard,
    _short,
    check_reference_chat,
    compare_token_logprobs,
    raw_reference,
)
from mop_bench.lm.doctor_generation import (
    check_chat,
    check_continue,
    check_greedy_top1,
    check_max_tokens,
    check_token_ids,
)
from mop_bench.lm.openai_compat import OpenAICompatLM, first_choice


def _raw_twin(lm: OpenAICompatLM) -> OpenAICompatLM:
    """The same server with raw-text prompts (chat=False)."""
    twin = OpenAICompatLM(
        lm.base_url,
        lm.model,
        api_key=lm.http.api_key,
        timeout=lm.http.timeout,
        retries=lm.http.retries,
        concurrency=lm.concurrency,
        chat=False,
        tokenizer=lm._tokenizer,
    )
    twin._info = lm._info
    return twin


def _greedy_with_logprobs(
    lm: OpenAICompatLM, prompt: str, n: int, *, rendered: bool = False
) -> tuple[list[str], list[float], str]:
    """Greedy tokens after a raw prompt with their generation log-probs (at T = 1,
    which every engine reports whatever the sampling temperature)."""
    body: dict[str, Any] = {
        "model": lm.model,
        "prompt": prompt,
        "max_tokens": n,
        "temperature": 0.0,
        "logprobs": 1,
        "seed": 0,
    }
    if rendered and lm.engine == "vllm":
        body["add_special_tokens"] = False
    choice = first_choice(lm.http.request("completions", body), "completions")
    lp = choice.get("logprobs") or {}
    tokens, values = lp.get("tokens"), lp.get("token_logprobs")
    if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
        raise ValueError("the server returned no log-probs for generated tokens (logprobs=1)")
    return [str(t) for t in tokens], [float(v) for v in values], str(choice.get("text") or "")


def check_echo(lm: OpenAICompatLM) -> Check:
    """Echoed entries: one per prompt token (usage.prompt_tokens), plus the generated one."""
    text = RAW_CANARIES[0][0] + RAW_CANARIES[0][1]
    echo = lm.echo(text)
    inside = echo.in_text()
    extra = len(echo.offsets) - len(inside)
    if echo.prompt_tokens is not None and len(inside) != echo.prompt_tokens:
        return Check(
            "echo",
            FAIL,
            f"{len(inside)} echoed entries for {echo.prompt_tokens} prompt tokens: the echo does "
            f"not cover the prompt",
            True,
        )
    if extra == 0:
        return Check(
            "echo",
            WARN,
            f"{len(echo.offsets)} entries for {len(inside)} prompt tokens: the generated token is "
            f"missing from the echo (harmless here: the adapter selects by text_offset)",
        )
    return Check(
        "echo",
        PASS,
        f"{len(inside)} prompt entries + {extra} generated (max_tokens=1), all with log-probs",
    )


def _at_offsets(text: str, tokens: list[str], offsets: list[int], idx: list[int]) -> int:
    """How many of the entries `idx` have their (non-empty) token at their offset."""
    return sum(1 for i in idx if tokens[i] and text[offsets[i] :].startswith(tokens[i]))


def check_offsets(lm: OpenAICompatLM) -> Check:
    """text_offset counts characters of the sent text: on a non-ASCII canary, and on a
    chat-template prompt (special tokens must be counted like any other text)."""
    text = "".join(RAW_CANARIES[3])
    echo = lm.echo(text)
    inside = echo.in_text()
    offsets = [echo.offsets[i] for i in inside]
    if not offsets or offsets[0] != 0 or any(b < a for a, b in itertools.pairwise(offsets)):
        return Check(
            "text_offset", FAIL, f"offsets do not start at 0 and increase: {offsets}", True
        )
    # a byte-fallback piece of a multi-byte character cannot match; whole tokens must
    matched = _at_offsets(text, echo.tokens, echo.offsets, inside)
    if matched < 0.8 * len(inside):
        as_bytes = text.encode()
        in_bytes = sum(
            1 for i in inside if as_bytes[echo.offsets[i] :].startswith(echo.tokens[i].encode())
        )
        why = " (they count bytes, not characters)" if in_bytes > matched else ""
        return Check(
            "text_offset",
            FAIL,
            f"only {matched} of {len(inside)} tokens sit at their text_offset in "
            f"{_short(text)}{why}",
            True,
        )
    chat, rendered = lm.render("Say hi.")
    chat += "Hello there!"
    echo2 = lm.echo(chat, rendered=rendered)
    inside2 = echo2.in_text()
    matched2 = _at_offsets(chat, echo2.tokens, echo2.offsets, inside2)
    if matched2 < 0.8 * len(inside2):
        empty = any(not echo2.tokens[i] for i in inside2)
        why = (
            ": its special tokens come back as empty strings that text_offset does not "
            "count, so every later offset points too early"
            if empty
            else ""
        )
        return Check(
            "text_offset",
            FAIL,
            f"on a chat-template prompt only {matched2} of {len(inside2)} tokens sit at "
            f"their text_offset{why}",
            True,
        )
    return Check(
        "text_offset",
        PASS,
        f"character offsets match the text ({matched}/{len(inside)} tokens of a non-ASCII "
        f"canary, {matched2}/{len(inside2)} of a chat-template prompt)",
        True,
    )


def check_alignment(lm: OpenAICompatLM) -> Check:
    """Self-consistency, no reference needed: the log-prob the server reports for a
    token it generated must equal the one it echoes for that token in prompt +
    generated text. A shifted echo gives the next token's value instead."""
    diffs: list[np.ndarray] = []
    shifted: list[np.ndarray] = []
    shifted_back: list[np.ndarray] = []
    example = None
    for prompt, _ in RAW_CANARIES[:3]:
        tokens, gen_lp, gen_text = _greedy_with_logprobs(lm, prompt, 6)
        echo = lm.echo(prompt + gen_text)
        picked = [i for i, o in enumerate(echo.offsets) if len(prompt) <= o < len(echo.text)]
        echoed = [echo.tokens[i] for i in picked]
        n = 0
        while n < min(len(echoed), len(tokens)) and echoed[n] == tokens[n]:
            n += 1  # compare while the re-tokenised text has the generated tokens
        if n == 0:
            continue
        values = [echo.values[i] for i in picked[:n]]
        if any(v is None for v in values):
            return Check(
                "alignment", FAIL, "the echo has no log-prob for a continuation token", True
            )
        ech = np.array(values, dtype=float)
        gen = np.array(gen_lp[:n])
        diffs.append(np.abs(ech - gen))
        # the echo one entry off, either way: echo[i] against gen[i + 1] and gen[i - 1]
        shifted.append(np.abs(ech[:-1] - gen[1:]))
        shifted_back.append(np.abs(ech[1:] - gen[:-1]))
        if example is None:
            example = (prompt, tokens[0], float(ech[0]), float(gen[0]))
    if not diffs:
        return Check(
            "alignment", SKIP, "re-tokenised generations never matched; nothing to compare", True
        )
    d = np.concatenate(diffs)
    summary = f"mean |Δ| {d.mean():.2g} nats over {d.size} tokens"
    if d.mean() < MEAN_TOLERANCE:
        return Check(
            "alignment",
            PASS,
            f"echoed log-probs equal the generation log-probs of the same tokens ({summary})",
            True,
        )
    detail = (
        f"echoed log-probs disagree with the generation log-probs of the same tokens ({summary})"
    )
    if example:
        prompt, token, ech0, gen0 = example
        detail += (
            f": {token!r} after {prompt!r} is echoed as {ech0:.2f} but was generated with "
            f"{gen0:.2f}"
        )
    best = min(
        (np.concatenate(x) for x in (shifted, shifted_back) if x and np.concatenate(x).size),
        key=lambda a: a.mean(),
        default=np.zeros(0),
    )
    if best.size and best.mean() < d.mean() / 4:
        detail += (
            f"; the echo is shifted by one position (each token carries its neighbour's "
            f"log-prob; shifted back, mean |Δ| {best.mean():.2g})"
        )
    elif lm.engine == "llama-cpp-python":
        detail += (
            "; llama-cpp-python reads each echoed token's log-prob one position late for "
            "models that add no BOS token (upstream issue #1983)"
        )
    return Check("alignment", FAIL, detail, True)


def check_reference_raw(lm: OpenAICompatLM, reference: Any) -> Check:
    raw = _raw_twin(lm)
    prompts = [p for p, _ in RAW_CANARIES]
    conts = [c for _, c in RAW_CANARIES]
    ours = [
        np.asarray(s.token_logprobs[:, 0], float) for s in raw.score(prompts, conts, per_token=True)
    ]
    ref, late = raw_reference(reference, RAW_CANARIES)
    check = compare_token_logprobs(ours, ref, conts, late=late)[0]
    return dataclasses.replace(check, name="reference raw")


def server_checks(lm: OpenAICompatLM, reference: Any, *, scoring_only: bool = False) -> list[Check]:
    """The checks of an OpenAI-compatible server (after `server_info` succeeded)."""
    checks = [
        _guard("echo", True, check_echo, lm),
        _guard("text_offset", True, check_offsets, lm),
        _guard("alignment", True, check_alignment, lm),
    ]
    if scoring_only:
        return checks
    echo_ok = all(c.status == PASS for c in checks)
    if reference is None:
        checks += [
            Check("reference raw", SKIP, "no in-process reference model (--reference)", True),
            Check("reference chat", SKIP, "no in-process reference model (--reference)", True),
        ]
    else:
        checks.append(_guard("reference raw", True, check_reference_raw, lm, reference))
        chat = _guard("reference chat", True, check_reference_chat, lm, reference)
        checks.append(dataclasses.replace(chat, name="reference chat"))
    checks += [
        _guard("greedy", False, check_greedy_top1, lm),
        _guard("max_tokens", False, check_max_tokens, lm),
        _guard("chat", False, check_chat, lm, reference, echo_ok),
        _guard("continue assistant", False, check_continue, lm, reference, echo_ok),
        _guard("token-id prompts", False, check_token_ids, lm),
    ]
    return checks


__all__ = ["FAIL", "PASS", "SKIP", "WARN", "server_checks"]
