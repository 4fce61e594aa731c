"""The one prompt renderer: a `PromptSpec` plus the task card's strings -> an LM prompt.

Generation (sample.py), the fit's scoring (scoring.py) and `heldout_nll` (heldout.py)
all build prompts with `render_prompt` and cut texts with `cut_at_stop`, so the three
can never disagree on what a mixture component is. Styles and every fixed string are
documented in `mop_bench.prompt_spec`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mop_bench.lm.base import Prompt, RawPrompt
from mop_bench.prompt_spec import PromptSpec
from mop_bench.types import Example


@dataclass(frozen=True)
class CardPrompt:
    """The task card's share of every prompt (recorded with the card)."""

    request_template: str
    """The task sentence; `{context}` is the rendered context (chat styles)."""
    completion_header: str | None = None
    """Template over the context fields heading each document (completion and
    prefilled styles); None: the rendered context, capitalised, followed by ":"."""

    def header(self, context: str, fields: dict[str, Any]) -> str:
        if self.completion_header is None:
            return context[:1].upper() + context[1:] + ":"
        try:
            return self.completion_header.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"task card completion_header {self.completion_header!r} cannot be filled "
                f"from the fields {sorted(fields)}: {type(exc).__name__}: {exc}"
            ) from exc

    def request(self, context: str) -> str:
        try:
            return self.request_template.format(context=context)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"task card request_template {self.request_template!r} must contain "
                f"'{{context}}' and no other placeholder: {exc}"
            ) from exc


def truncate_words(text: str, max_words: int, marker: str = "") -> str:
    """The first `max_words` words of `text`, whitespace normalised (so an exemplar
    never contains a blank line, the default stop), `marker` appended if cut."""
    words = text.split()
    if len(words) <= max_words:
        return " ".join(words)
    return " ".join(words[:max_words]) + marker


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string (excluded)."""
    end = len(text)
    for stop in stops:
        if stop:
            pos = text.find(stop)
            if 0 <= pos < end:
                end = pos
    return text[:end]


def scored_text(text: str, spec: PromptSpec) -> str:
    """What the fit and `heldout_nll` score of a real text: the part a generation
    could have produced before its stop (the same cut as generation's)."""
    return cut_at_stop(text, spec.stop).strip()


_YOU_ARE = re.compile(r"^\s*(you are|you're)\s+", re.IGNORECASE)


def persona_who(persona: str) -> str:
    """A persona as a noun phrase: "You are a retired teacher." -> "a retired teacher"."""
    who = _YOU_ARE.sub("", persona.strip()).rstrip(". ")
    return who if who else persona.strip()


def _persona_text(template: str, persona: str) -> str:
    return template.format(persona=persona.strip(), who=persona_who(persona))


def exemplar_feature_text(example: Example, spec: PromptSpec) -> str:
    """What the encoder sees for an exemplar (h(e_j)): its context and text."""
    return f"{example.context}: {truncate_words(example.text, spec.exemplar_words)}"


def _documents(spec: PromptSpec, card: CardPrompt, exemplars: Sequence[Example]) -> list[str]:
    return [
        card.header(ex.context, ex.fields)
        + spec.header_separator
        + truncate_words(ex.text, spec.exemplar_words, spec.cut_marker)
        for ex in exemplars
    ]


def render_prompt(
    spec: PromptSpec,
    card: CardPrompt,
    *,
    context: str,
    fields: dict[str, Any],
    persona: str | None,
    exemplars: Sequence[Example],
) -> Prompt:
    """The prompt for one (persona, exemplar set, request) combination."""
    if spec.style == "chat_tagged":
        return _tagged(spec, card, context, persona, exemplars)
    header = card.header(context, fields)
    shown = persona if spec.persona_placement != "none" else None
    if spec.style == "completion":
        blocks = _documents(spec, card, exemplars)
        target = header + spec.header_separator
        if shown and spec.persona_placement == "line":
            target = _persona_text(spec.persona_line, shown) + "\n" + target
        text = spec.block_separator.join([*blocks, target])
        if shown and spec.persona_placement == "preamble":
            text = _persona_text(spec.persona_preamble, shown) + spec.block_separator + text
        return RawPrompt(text)
    if spec.style == "chat_prefilled":
        lines: list[str] = []
        if shown and spec.persona_placement == "preamble":
            lines.append(_persona_text(spec.persona_preamble, shown))
        if exemplars:
            lines.append(spec.prefilled_intro)
            lines.append(spec.block_separator.join(_documents(spec, card, exemplars)))
        if shown and spec.persona_placement == "line":
            lines.append(_persona_text(spec.persona_line, shown))
        lines.append(card.request(context))
        instruction = spec.instruction if shown else spec.plain_instruction
        return [
            {"role": "system", "content": f"{instruction} {spec.only_text}"},
            {"role": "user", "content": "\n".join(lines)},
            {"role": "assistant", "content": header + spec.header_separator},
        ]
    raise ValueError(f"unknown prompt style {spec.style!r}")


def _tagged(
    spec: PromptSpec,
    card: CardPrompt,
    context: str,
    persona: str | None,
    exemplars: Sequence[Example],
) -> list[dict[str, str]]:
    """The paper's tagged chat prompt (REFERENCE.md section 2)."""
    instruction = spec.instruction if persona else spec.plain_instruction
    lines: list[str] = []
    if persona:
        lines.append(spec.persona_tag.format(persona=persona))
    for ex in exemplars:
        text = truncate_words(ex.text, spec.exemplar_words, spec.cut_marker)
        lines.append(spec.exemplar_tag.format(context=ex.context, text=text))
    lines.append(card.request(context))
    return [
        {"role": "system", "content": f"{instruction} {spec.only_text}"},
        {"role": "user", "content": "\n".join(lines)},
    ]


def prompt_record(prompt: Prompt) -> Any:
    """A prompt as generations.jsonl records it: the raw text, or the messages."""
    if isinstance(prompt, RawPrompt):
        return prompt.text
    return prompt


def prompt_text(prompt: Prompt) -> str:
    """A flat rendering of a prompt, for records and for fakes that read prompts."""
    if isinstance(prompt, RawPrompt):
        return prompt.text
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"[{m['role']}] {m['content']}" for m in prompt)


def _template_regex(template: str) -> str:
    """A regex matching any filling of a `str.format` template (fields: 1-60 chars)."""
    import string

    out = []
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(re.escape(literal))
        if name is not None:
            out.append(r".{1,60}?")
    return "".join(out)


def leak_patterns(spec: PromptSpec, card: CardPrompt) -> tuple[str, ...]:
    """Regexes that, found in a generated text, show it echoed the prompt's scaffolding
    (for the `format` metric): the tagged style's tags, and the card's header or a
    persona line at the start of a line."""
    patterns = [r"<\s*/?\s*(Persona|Example|Instruction)\s*>"]
    if card.completion_header:
        patterns.append(r"(?m)^\s*" + _template_regex(card.completion_header.strip()))
    for template in (spec.persona_line, spec.persona_preamble):
        if template.strip():
            patterns.append(r"(?m)^\s*" + _template_regex(template.strip()))
    return tuple(dict.fromkeys(patterns))
