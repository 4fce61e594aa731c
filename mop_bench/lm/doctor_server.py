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
from mop_bench.lm.http import one_line
from mop_bench.lm.openai_compat import OpenAICompatLM, first_choice


def _reason(err: Exception) -> str:
    """The server's own words from a ServerError ("POST url -> HTTP 400: words")."""
    return one_line(str(err).split(" -> ", 1)[-1], 120)


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
