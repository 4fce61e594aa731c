"""`PromptSpec`: how a prompt is laid out, as recorded data (HELM's AdapterSpec is the model).

Every word the LM sees comes from this spec or from the task card (`request_template`,
`completion_header`); `mop_bench.mop.prompts` renders them, and generation, the fit's
scoring and `heldout_nll` all call that one renderer and cut texts with the same `stop`.

Three styles (REFERENCE.md section 9 measured why the style matters more than the model
size for a 135M model):

- `completion` (default): no chat template. Exemplars are shown as the population's own
  documents, each under its header (the card's `completion_header`, e.g. "Yelp review
  of a business in the Restaurants category (5 out of 5 stars):"), and the prompt ends
  with the requested text's header, so the model simply writes the next document:

      [persona preamble]
      <header of exemplar 1>
      <exemplar 1>

      <header of exemplar 2>
      <exemplar 2>

      [persona line]
      <header of the request>

- `chat_tagged`: the paper's tagged chat prompt (REFERENCE.md section 2): a system
  instruction, then `<Persona> ...`, `<Example> You have written ...` lines and the
  card's request in the user turn. Written for an 8B chat model; the `paper` preset.
- `chat_prefilled`: the chat template with the exemplars as documents and the request in
  the user turn, and the assistant turn pre-filled with the request's header, so the
  answer starts as a document rather than as a reply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

PromptStyle = Literal["completion", "chat_tagged", "chat_prefilled"]
PersonaPlacement = Literal["preamble", "line", "none"]


@dataclass(frozen=True)
class PromptSpec:
    """The layout and every fixed string of a simulator's prompts."""

    style: PromptStyle = "completion"
    """completion | chat_tagged | chat_prefilled (module docstring)."""
    persona_placement: PersonaPlacement = "none"
    """Where a persona goes in `completion` and `chat_prefilled` prompts: `line` (a
    `persona_line` directly above the request's header), `preamble` (a
    `persona_preamble` at the top of the prompt) or `none` (the default: personas still
    gate the exemplars and the temperature but are not shown). Chosen by measurement: on
    an AG News dev slice, showing the 135M synthesizer's personas pulled news toward
    reviews (MAUVE 0.65 with `line`, 0.97 with `none`; docs/prompts.md)."""
    persona_line: str = "Written by {who}."
    """Persona line template; `{who}` is the persona without its "You are" opening and
    final period ("You are a retired teacher." -> "a retired teacher"), `{persona}`
    the persona as synthesized."""
    persona_preamble: str = "The texts below were written by {who}."
    """Persona preamble template (same fields as `persona_line`)."""
    header_separator: str = "\n"
    """Between a header and its text."""
    block_separator: str = "\n\n"
    """Between one (header, text) block and the next header."""
    stop: tuple[str, ...] = ("\n\n",)
    """A generated text ends at the first of these strings (excluded); real texts scored
    by the fit and by `heldout_nll` are cut the same way. Empty: only EOS and the token
    cap end a text."""
    exemplar_words: int = 120
    """Exemplar texts longer than this many words are cut (with `cut_marker`), so that
    one long text cannot dominate a prompt or its cost. Prompt length drives the run's
    cost, but shorter exemplars cost quality: 64 words gave yelp MAUVE 0.39 against 0.64
    with 120 (docs/prompts.md)."""
    cut_marker: str = ""
    """Appended to an exemplar cut at `exemplar_words`. Empty by default: in a document
    prompt a marker teaches the model to write it, and generated texts are cut by
    `max_new_tokens` without one too (the `paper` preset's tagged prompt uses " ...")."""
    instruction: str = "You embody the persona in the description to complete the task."
    """`chat_tagged`/`chat_prefilled` system instruction when a persona is shown (the
    paper's wording)."""
    plain_instruction: str = "Complete the task."
    """The system instruction without a persona."""
    only_text: str = "Reply with the requested text only: no title, no preamble, no explanation."
    """Appended to the system instruction: small chat models otherwise open with "Sure!
    Here is a review:", which is not part of the population."""
    persona_tag: str = "<Persona> {persona}"
    """`chat_tagged` persona line."""
    exemplar_tag: str = "<Example> You have written {context}: {text}"
    """`chat_tagged` exemplar line; `{context}` is the exemplar's rendered context."""
    prefilled_intro: str = "Examples of the texts to write:"
    """`chat_prefilled`: the line above the exemplar documents in the user turn."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def chat(self) -> bool:
        """Whether prompts go through the model's chat template."""
        return self.style != "completion"
