"""`TemplateSettings`: a literature generator's recorded definition (prompts, sampling,
filters, contexts, demonstrations), read from a simulator file's `template:` mapping.

ZeroGen, ProGen and AttrPrompt are configurations of these settings; every string the
LM sees is quoted here from the authors' code (each task's `source` says where), never
written in code. ../shared/BASELINES.md gives the recipes.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

ContextSource = Literal["none", "generated", "attributes"]
CutRule = Literal["none", "quote"]
DemoSource = Literal["none", "own"]


@dataclass(frozen=True)
class TaskPrompts:
    """One task's prompt strings for a generator."""

    prompt: str
    """The generation prompt. Fields: `{label_word}` (the requested label's word),
    `{context}` (a generated context, e.g. a movie title), the attribute names of
    `attributes` (e.g. `{cuisine}`, `{subtopic}`, `{length}`, `{length_max}`), and
    `{demos}` (ProGen's demonstrations, each followed by `demo_separator`; empty when a
    prompt shows none)."""
    label_words: tuple[str, ...]
    """The word each label id is called in `prompt` (index = label id). Mapped by
    meaning, never by the original's key order (ZeroGen's key "0" is *positive*)."""
    source: str
    """Where the strings come from: repository@commit and file, or "ours" with why."""
    context_prompt: str = ""
    """`contexts: generated`: the prompt that generates one context (ZeroGen's stage x1,
    e.g. `Movie: "`); the context is cut by the same rule as `cut: quote`
    (ZeroGen's `process_output` for both stages: literature/filters.py `zerogen_cut`)."""
    demo: str = ""
    """`demos: own`: one demonstration; fields `{context}` and `{text}`."""
    attributes: str = ""
    """`contexts: attributes`: the AttrPrompt folder under `<data dir>/attrprompt/`
    (yelp, agnews, sst-2)."""


@dataclass(frozen=True)
class TemplateSettings:
    """A generator from the synthetic-data literature, as data."""

    source: str
    """The method and the code it is read from (paper; repository@commit)."""
    prompts: dict[str, TaskPrompts]
    """Prompt strings by task card name; a task without an entry is refused."""
    chat: bool = False
    """Send `prompt` as one user message through the model's chat template (AttrPrompt)
    rather than as raw completion text (ZeroGen, ProGen)."""
    contexts: ContextSource = "none"
    """What fills the prompt besides the label: `generated` (an LM-generated pool of
    contexts, ZeroGen's titles, cached as an artifact), `attributes` (AttrPrompt's
    attribute values, drawn uniformly and independently per sample: uniform over the
    label's attribute product) or `none`."""
    samples_per_context: int = 32
    """`generated`: samples per context per label (ZeroGen's 32); the pool holds as
    many contexts as the requests need."""
    context_tokens: int = 10
    """`generated`: exact new tokens per context draw (ZeroGen: min_length = max_length)."""
    context_min_words: int = 1
    """`generated`: a context needs this many words after the cut."""
    exact_tokens: int = 0
    """Generate exactly this many tokens (EOS forbidden before; ZeroGen's 40, ProGen's
    100), capped by the budget's `max_new_tokens`; 0: EOS or the cap ends a text."""
    top_p: float = 1.0
    """Nucleus mass of the generator's recipe (ZeroGen/ProGen 0.9; AttrPrompt's API
    call hard-codes 1.0). The budget's `top_p` is not used: sampling is the recipe's."""
    cut: CutRule = "none"
    """`quote` (ZeroGen/ProGen): cut at the first `"`; without one, at the first line
    break; without one, after the last `.`; without any, the text is rejected."""
    min_words: int = 0
    """Reject texts with fewer words (ZeroGen/ProGen: 10), counted as they count them:
    `len(text.strip().split(' '))` (literature/filters.py `word_count`)."""
    drop_context_copies: bool = False
    """Reject a text equal to its context (ZeroGen: X == C)."""
    dedupe: bool = False
    """Reject a text already produced for the same (context, label) in the run."""
    refusals: tuple[str, ...] = ()
    """Reject a text containing any of these strings (AttrPrompt's filter)."""
    clean_str: bool = False
    """AttrPrompt's `clean_str` (literature/filters.py): every character outside
    [A-Za-z0-9(),.!?"'] becomes a space, runs of 2+ whitespace become one space, the ends
    are stripped. Applied to synthetic texts only, so it shifts FID and MAUVE; recorded."""
    max_attempts: int = 4
    """A rejected sample is drawn again (its attempt number in the seed) up to this many
    times; after that the last attempt's text is kept and counted as a rejection (the
    budget is one text per request, for every simulator)."""
    demos: DemoSource = "none"
    """`own` (ProGen): demonstrations from the generator's own earlier accepted texts."""
    demos_per_prompt: int = 8
    """ProGen's 8 same-label demonstrations."""
    demo_prob: float = 0.5
    """Chance that a chunk's requests of one label are shown demonstrations (ProGen: one
    coin per batch and label)."""
    demo_overlap: float = 0.9
    """Reject a text containing at least this share of any shown demo's word set."""
    demo_separator: str = "\n\n"
    """After each demonstration (ProGen joins demos by a blank line and ends with one)."""
    rounds: tuple[int, ...] = (100, 400, 1200, 3200, 8000, 19200)
    """Accepted-text counts at which the demonstration pool is refreshed (ProGen); the
    pool is empty (no demos) before the first."""

    def for_task(self, task: str) -> TaskPrompts:
        if task not in self.prompts:
            known = ", ".join(sorted(self.prompts)) or "none"
            raise ValueError(
                f"this generator has no prompts for task {task!r} (it has: {known}); "
                "add them under template.prompts in a copy of its simulator file"
            )
        return self.prompts[task]

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], where: str) -> TemplateSettings:
        """Validated settings from a simulator file's `template:` mapping."""
        from mop_bench.spec import _coerce

        if not raw:
            raise ValueError(f"{where}: a template simulator needs a `template:` mapping")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise ValueError(
                    f"{where}: unknown template key {key!r}; allowed: {', '.join(sorted(known))}"
                )
            if key == "prompts":
                values[key] = _task_prompts(value, where)
            else:
                values[key] = _coerce(value, hints[key], f"{where}: template.{key}")
        for name in ("source", "prompts"):
            if name not in values:
                raise ValueError(f"{where}: template.{name} is required")
        out = cls(**values)
        out.check(where)
        return out

    def check(self, where: str) -> None:
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"{where}: template.top_p must be in (0, 1], got {self.top_p}")
        for name in ("samples_per_context", "context_tokens", "max_attempts", "demos_per_prompt"):
            if getattr(self, name) < 1:
                raise ValueError(f"{where}: template.{name} must be >= 1")
        if not 0.0 <= self.demo_prob <= 1.0:
            raise ValueError(f"{where}: template.demo_prob must be in [0, 1]")
        for task, p in self.prompts.items():
            if self.contexts == "generated" and not p.context_prompt:
                raise ValueError(
                    f"{where}: prompts.{task} needs context_prompt (contexts: generated)"
                )
            if self.contexts == "attributes" and not p.attributes:
                raise ValueError(f"{where}: prompts.{task} needs attributes (contexts: attributes)")
            if self.demos == "own" and not p.demo:
                raise ValueError(f"{where}: prompts.{task} needs demo (demos: own)")


def _task_prompts(raw: Any, where: str) -> dict[str, TaskPrompts]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: template.prompts must map task names to prompt strings")
    known = {f.name for f in dataclasses.fields(TaskPrompts)}
    out = {}
    for task, entry in raw.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: template.prompts.{task} must be a mapping")
        bad = set(entry) - known
        if bad:
            raise ValueError(
                f"{where}: template.prompts.{task}: unknown key {sorted(bad)[0]!r}; "
                f"allowed: {', '.join(sorted(known))}"
            )
        try:
            words = tuple(str(w) for w in entry.get("label_words", ()))
            out[str(task)] = TaskPrompts(**(entry | {"label_words": words}))
        except TypeError as exc:
            raise ValueError(f"{where}: template.prompts.{task}: {exc}") from exc
    return out


def settings_json(settings: TemplateSettings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


__all__ = ["TaskPrompts", "TemplateSettings"]
