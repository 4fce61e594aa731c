"""The generation-side server checks of `mop-bench doctor` (greedy, max_tokens, chat, token ids)."""

from __future__ import annotations

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
)
from mop_bench.lm.http import one_line
from mop_bench.lm.openai_compat import OpenAICompatLM, first_choice


def _reason(err: Exception) -> str:
    """The server's own words from a ServerError ("POST url -> HTTP 400: words")."""
    return one_line(str(err).split(" -> ", 1)[-1], 120)


def check_greedy_top1(lm: OpenAICompatLM) -> Check:
    """At T = 0 every generated token is the most likely one (top_logprobs)."""
    body = {
        "model": lm.model,
        "prompt": RAW_CANARIES[1][0],
        "max_tokens": 8,
        "temperature": 0.0,
        "logprobs": 3,
        "seed": 5,
    }
    choice = first_choice(lm.http.request("completions", body), "completions")
    lp = choice.get("logprobs") or {}
    tokens, top = lp.get("tokens") or [], lp.get("top_logprobs") or []
    if not tokens or len(top) != len(tokens):
        return Check("greedy", WARN, "no top_logprobs for generated tokens; cannot check T = 0")
    for i, (tok, alts) in enumerate(zip(tokens, top, strict=True)):
        if (
            isinstance(alts, dict)
            and alts
            and max(alts, key=alts.get) != tok
            and alts.get(tok, -1e9) < max(alts.values()) - 1e-4
        ):
            return Check(
                "greedy",
                FAIL,
                f"T = 0 picked {tok!r} at step {i}, not the top token {max(alts, key=alts.get)!r}",
            )
    return Check(
        "greedy", PASS, f"T = 0 picks the most likely token at each of {len(tokens)} steps"
    )


def check_max_tokens(lm: OpenAICompatLM) -> Check:
    """max_tokens = n gives n tokens; and what max_tokens = 0 means here."""
    body = {
        "model": lm.model,
        "prompt": "Tell me a long story about a dragon.",
        "temperature": 1.0,
        "seed": 1,
    }
    one = lm.http.request("completions", {**body, "max_tokens": 3})
    got = (one.get("usage") or {}).get("completion_tokens")
    reason = first_choice(one, "completions").get("finish_reason")
    if got is not None and (got > 3 or (reason == "length" and got != 3)):
        return Check("max_tokens", FAIL, f"max_tokens=3 gave {got} tokens (finish_reason {reason})")
    try:
        zero = lm.http.request("completions", {**body, "max_tokens": 0})
    except ValueError as err:
        return Check(
            "max_tokens",
            PASS,
            f"max_tokens=3 gives 3 tokens; max_tokens=0 is refused ({_reason(err)})",
        )
    n0 = (zero.get("usage") or {}).get("completion_tokens")
    if n0:
        return Check(
            "max_tokens",
            WARN,
            f"max_tokens=3 gives 3 tokens, but max_tokens=0 generated {n0} tokens: 0 means "
            f"'unlimited' here (the adapter never sends 0; it scores with max_tokens=1)",
        )
    return Check("max_tokens", PASS, "max_tokens=3 gives 3 tokens; max_tokens=0 gives none")


def _chat_check(
    lm: OpenAICompatLM, reference: Any, messages: list[dict[str, str]], name: str, echo_ok: bool
) -> Check:
    """Greedy tokens from the route the adapter generates through (the server's chat
    template on /v1/chat/completions; a final assistant message continued with vLLM's
    `continue_final_message`) must carry the log-probs that scoring them after *our*
    rendering of the template gives (the in-process reference for a user turn, else
    the server's echo, once the alignment check has passed): otherwise the server
    applies another chat template than the model's tokenizer."""
    route, body = lm.generation_request(messages, temperature=0.0, seed=0, max_tokens=8, top_p=1.0)
    if route == "completions":
        return Check(
            name, PASS, "rendered locally with the tokenizer's chat template, sent as raw text"
        )
    body["logprobs"] = True
    choice = first_choice(lm.http.request(route, body), route)
    content = (choice.get("logprobs") or {}).get("content") or []
    values = [float(c.get("logprob")) for c in content]
    text = str((choice.get("message") or {}).get("content") or "")
    if not values:
        return Check(name, WARN, f"no generation log-probs from /{route}; cannot compare templates")
    use_reference = reference is not None and messages[-1]["role"] != "assistant"
    if not use_reference and not echo_ok:
        return Check(name, SKIP, "needs a reference model or an aligned echo to compare with")
    scorer = reference if use_reference else lm
    (score,) = scorer.score([messages], [text], per_token=True)
    ours = score.token_logprobs[:, 0]
    n = min(len(ours), len(values))
    d = np.abs(np.asarray(values[:n], float) - ours[:n])
    if n == 0 or d.mean() >= MEAN_TOLERANCE:
        return Check(
            name,
            FAIL,
            f"greedy tokens from /{route} score differently after the tokenizer's chat "
            f"template (mean |Δ| {d.mean() if n else float('nan'):.2g}): the server renders "
            f"this prompt differently from the model's template",
        )
    against = "the in-process reference" if use_reference else "the echo of our rendering"
    return Check(
        name,
        PASS,
        f"the server's rendering matches the tokenizer's chat template (generation log-probs "
        f"vs {against}: mean |Δ| {d.mean():.2g})",
    )


def check_chat(lm: OpenAICompatLM, reference: Any, echo_ok: bool) -> Check:
    messages = [{"role": "user", "content": "Write a short review of a bakery."}]
    return _chat_check(lm, reference, messages, "chat", echo_ok)


def check_continue(lm: OpenAICompatLM, reference: Any, echo_ok: bool) -> Check:
    """A final assistant message is continued, not closed and answered anew."""
    messages = [
        {"role": "user", "content": "Write a short review of a bakery."},
        {"role": "assistant", "content": "The croissants here are"},
    ]
    return _chat_check(lm, reference, messages, "continue assistant", echo_ok)


def check_token_ids(lm: OpenAICompatLM) -> Check:
    ids = list(lm.tokenizer(RAW_CANARIES[0][0], add_special_tokens=False)["input_ids"])
    try:
        lm.http.request(
            "completions", {"model": lm.model, "prompt": ids, "max_tokens": 1, "seed": 0}
        )
    except ValueError as err:
        return Check("token-id prompts", WARN, f"refused ({_reason(err)}); the adapter sends text")
    return Check("token-id prompts", PASS, "accepted (the adapter sends text all the same)")
