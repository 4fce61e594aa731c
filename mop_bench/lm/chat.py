"""Chat prompts as text: the model's chat template applied the way every backend
must apply it, including a final assistant message that is to be continued."""

from __future__ import annotations

from typing import Any

from mop_bench.lm.base import Prompt


def as_messages(prompt: Prompt) -> list[dict[str, str]]:
    """A prompt as messages: a string is one user message."""
    from mop_bench.lm.base import RawPrompt

    if isinstance(prompt, RawPrompt):
        raise ValueError("a raw (completion-style) prompt has no chat messages")
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def continues_assistant(prompt: Prompt) -> bool:
    """True for a message list ending in an assistant message (a turn to continue)."""
    return isinstance(prompt, list) and bool(prompt) and prompt[-1].get("role") == "assistant"


def render_chat(tokenizer: Any, prompt: Prompt) -> str:
    """The chat template applied to `prompt` as text: with the assistant header
    (`add_generation_prompt`) after a user turn, or the final assistant message left
    open (`continue_final_message`) when the prompt ends with one."""
    messages = as_messages(prompt)
    if continues_assistant(prompt):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=False, continue_final_message=True
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
