"""The published MoP prompt (REFERENCE.md section 2) as chat messages.

    <Instruction> You embody the persona in the description to complete the task.
    <Persona> You are a genre enthusiast.
    <Example> You have written a review for the movie Home Alone 3: I was really ...
    Please write a review for a movie titled The Sunshine Boys.

The instruction goes in the system message (chat models weigh it more there, and
SmolLM2 otherwise injects its own default system prompt); persona, exemplar(s) and the
request go in the user message. Variants drop the persona and/or show several exemplars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mop_bench.types import Example

PERSONA_INSTRUCTION = "You embody the persona in the description to complete the task."
PLAIN_INSTRUCTION = "Complete the task."
# Small chat models open with "Sure! Here is a review:"; the preamble is not part of the
# population and would distort every metric, so the prompt asks for the bare text.
ONLY_TEXT = "Reply with the requested text only: no title, no preamble, no explanation."


@dataclass(frozen=True)
class PromptSettings:
    """How prompts are rendered; recorded with every fit and generation."""

    exemplar_words: int = 120
    """Exemplar texts longer than this many words are cut (with " ...") so that one long
    review cannot dominate the prompt or the scoring cost."""
    persona_instruction: str = PERSONA_INSTRUCTION
    plain_instruction: str = PLAIN_INSTRUCTION
    only_text: str = ONLY_TEXT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def truncate_words(text: str, max_words: int) -> str:
    """The first `max_words` words of `text` (whitespace normalised), marked if cut."""
    words = text.split()
    if len(words) <= max_words:
        return " ".join(words)
    return " ".join(words[:max_words]) + " ..."


def render_request(request_template: str, context: str) -> str:
    """The task request for one context, e.g. "Please write a positive review ..."."""
    try:
        return request_template.format(context=context)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"task card request_template {request_template!r} must contain '{{context}}' "
            f"and no other placeholder: {exc}"
        ) from exc


def render_exemplar(example: Example, settings: PromptSettings) -> str:
    """One exemplar line: its context and (truncated) text."""
    return (
        f"<Example> You have written {example.context}: "
        f"{truncate_words(example.text, settings.exemplar_words)}"
    )


def exemplar_feature_text(example: Example, settings: PromptSettings) -> str:
    """What the encoder sees for an exemplar (h(e_j)): its context and text."""
    return f"{example.context}: {truncate_words(example.text, settings.exemplar_words)}"


def build_messages(
    request: str,
    persona: str | None,
    exemplars: Sequence[Example],
    settings: PromptSettings,
) -> list[dict[str, str]]:
    """Chat messages for one (persona, exemplars, request) combination."""
    instruction = settings.persona_instruction if persona else settings.plain_instruction
    lines: list[str] = []
    if persona:
        lines.append(f"<Persona> {persona}")
    lines.extend(render_exemplar(ex, settings) for ex in exemplars)
    lines.append(request)
    return [
        {"role": "system", "content": f"{instruction} {settings.only_text}"},
        {"role": "user", "content": "\n".join(lines)},
    ]


def prompt_text(prompt: str | list[dict[str, str]]) -> str:
    """A flat rendering of a prompt, for records and for fakes that read prompts."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"[{m['role']}] {m['content']}" for m in prompt)
