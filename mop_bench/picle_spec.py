"""`PicleSpec`: PICLe's recorded settings (a part of `SimulatorSpec`, kept in its own
module as `PromptSpec` is; mop_bench/mop/picle.py uses them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PicleSpec:
    """PICLe's demonstration selection (Choi and Li, ICML 2024; ../shared/BASELINES.md
    section 4; mop_bench/mop/picle.py): a LoRA (on q_proj and v_proj, peft's default for
    Llama) fine-tuned on each label's pool texts ("the persona is the class
    population"), then each pool text scored by log p_lora(x) - log p_base(x), the top
    `exemplars_per_prompt` kept, the best shown last. The original trains 352 steps;
    `steps` caps it so that the selection fits a 2-core CPU (yelp, 500 texts: about
    3.5 minutes, two thirds of it scoring; docs/baselines.md says what the cap loses)."""

    steps: int = 16
    """Optimizer steps per label (the original: 352, the checkpoint at epoch 4 of a
    linear decay over 880; a capped run follows that schedule's first `steps`)."""
    batch_size: int = 8
    """Texts per step (the original: the HF Trainer's default 8)."""
    rank: int = 8
    """LoRA rank r (original)."""
    alpha: int = 32
    """LoRA alpha (original)."""
    lr: float = 2e-5
    """Learning rate (original)."""
    weight_decay: float = 0.01
    """Weight decay (original)."""
    max_tokens: int = 64
    """Tokens of each pool text used in training and scoring (the first is not scored,
    as in the original). Scoring every text twice is most of the cost: 64 tokens hold
    it to about 2 minutes for 500 yelp texts on 2 cores (the original's statements are
    one sentence; summed scores favour long texts, and at this cap most texts are
    equally long)."""
