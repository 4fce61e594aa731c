"""Language-model backends behind one small protocol (see `base.py`)."""

from mop_bench.lm.base import Completion, LanguageModel, LMStats, Prompt, SequenceScore

__all__ = ["Completion", "LMStats", "LanguageModel", "Prompt", "SequenceScore"]
