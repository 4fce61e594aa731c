"""A tiny random Llama with the real SmolLM2 tokenizer, wrapped as a `TransformersLM`.

For tests anywhere in the project: it builds in well under a second (after the
tokenizer has been cached once under the mop-bench cache dir) and exercises the real
code paths (chat template, KV cache, batching) of the transformers backend.

    from tiny_llama import tiny_lm  # pytest puts tests/ on sys.path
    lm = tiny_lm(seed=0)
"""

from __future__ import annotations

import functools
from typing import Any

from mop_bench.lm.hf import TransformersLM


@functools.lru_cache(maxsize=1)
def smollm2_tokenizer() -> Any:
    """The SmolLM2 tokenizer (loaded from the mop-bench cache; built once from the GGUF)."""
    from mop_bench.lm.loading import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


def tiny_llama_model(
    *,
    seed: int = 0,
    dtype: str = "float32",
    layers: int = 2,
    hidden: int = 64,
    vocab_size: int | None = None,
    logit_scale: float = 2.0,
) -> Any:
    """A random LlamaForCausalLM (2 layers, hidden 64, SmolLM2's vocabulary).

    `logit_scale` multiplies the output embedding: a random model at init predicts
    an almost uniform distribution, which would make greedy, temperature and bf16
    tests vacuous; sharper logits make those differences visible.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=vocab_size or len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # The generator is passed to every init explicitly: no global RNG state involved.
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.02)
        model.lm_head.weight.mul_(logit_scale / 0.02 / hidden**0.5)
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)  # rebuild meta buffers
    return model.to(getattr(torch, dtype)).eval()


def tiny_lm(
    *, seed: int = 0, dtype: str = "float32", batch_size: int = 8, **kwargs: Any
) -> TransformersLM:
    """A `TransformersLM` around `tiny_llama_model` (same keyword arguments)."""
    model = tiny_llama_model(seed=seed, dtype=dtype, **kwargs)
    return TransformersLM(
        model,
        smollm2_tokenizer(),
        name=f"tiny-llama seed={seed} dtype={dtype}",
        batch_size=batch_size,
    )
