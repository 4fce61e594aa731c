"""Parsed OpenAI-compatible answers: `Echo` (echoed log-probs), vLLM's prompt_logprobs, choices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mop_bench.lm.http import ServerError, one_line


@dataclass(frozen=True)
class Echo:
    """What /v1/completions echoed for one text (`echo=True, logprobs=1, max_tokens=1`)."""

    text: str
    tokens: list[str]
    offsets: list[int]
    values: list[float | None]
    """Echoed log-prob per entry (None for the first token, which has no context)."""
    prompt_tokens: int | None
    """The server's `usage.prompt_tokens` (None where it does not report usage)."""
    token_ids: list[int] | None
    """Prompt token ids from vLLM's `prompt_logprobs` (None on other engines)."""

    def in_text(self) -> list[int]:
        """Indices of the entries that echo the sent text (not the generated token)."""
        return [i for i, o in enumerate(self.offsets) if o < len(self.text)]


def _prompt_logprobs(
    choice: dict[str, Any], echoed: list[Any], length: int, offsets: list[Any]
) -> tuple[list[int], list[Any]]:
    """vLLM's `prompt_logprobs` (one {token_id: {logprob}} per prompt token, None first):
    the prompt's token ids, and the echoed values with the prompt part taken from it.
    Its length must equal the number of echoed entries inside the text."""
    entries = choice.get("prompt_logprobs")
    n_text = sum(1 for o in offsets if int(o) < length)
    if not isinstance(entries, list) or len(entries) != n_text:
        got = len(entries) if isinstance(entries, list) else "none"
        raise ServerError(
            f"vLLM's prompt_logprobs ({got} entries) do not match the {n_text} echoed prompt tokens"
        )
    ids: list[int] = []
    values = list(echoed)
    for i, entry in enumerate(entries):
        if entry is None:  # the first token has no context
            ids.append(-1)
            continue
        # prompt_logprobs=0 asks for the actual token only
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ServerError(f"vLLM's prompt_logprobs entry {i} is not one token: {entry!r}")
        ((key, value),) = entry.items()
        ids.append(int(key))
        values[i] = float(value["logprob"])
    return ids, values


def first_choice(answer: Any, route: str) -> dict[str, Any]:
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ServerError(f"/{route}: the answer has no choices: {one_line(str(answer))}")
    return choices[0]
