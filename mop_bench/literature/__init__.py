"""Generators from the synthetic-data literature (ZeroGen, ProGen, AttrPrompt) as
configurations of one template generator; PICLe is a MoP configuration (fixed
exemplars chosen by `mop_bench.mop.picle`). docs/baselines.md says what each keeps of
its original and what is approximated."""

from mop_bench.literature.settings import TaskPrompts, TemplateSettings

__all__ = ["TaskPrompts", "TemplateSettings"]
