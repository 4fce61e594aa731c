"""Language-model backends behind one small protocol (see `base.py`).

`load_lm(spec)` builds the backend a run names; `LM_BACKENDS` lists them (transformers
in process, any OpenAI-compatible server such as vLLM's, in-process vLLM).
"""

from typing import TYPE_CHECKING, Any

from mop_bench.lm.base import Completion, LanguageModel, LMStats, Prompt, SequenceScore

if TYPE_CHECKING:
    from mop_bench.lm.registry import LM_BACKENDS, load_lm

__all__ = [
    "LM_BACKENDS",
    "Completion",
    "LMStats",
    "LanguageModel",
    "Prompt",
    "SequenceScore",
    "load_lm",
]


def __getattr__(name: str) -> Any:
    if name in ("LM_BACKENDS", "load_lm"):
        from mop_bench.lm import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'mop_bench.lm' has no attribute {name!r}")
