"""A faster single-token attention for CPU decoding, plugged into transformers.

During generation each step attends one query per row to the whole KV cache. torch's
CPU flash kernel with a padding mask handles that case slowly (several ms per layer
at batch 64, most of it fixed cost); two small batched matmuls over the grouped
heads do the same work in a fraction of the time. Prompts (query length > 1) still
go to transformers' own sdpa path, so scoring is unchanged.
"""

from __future__ import annotations

from typing import Any

import torch

NAME = "mop_sdpa"
#: Above this many attention scores (fp32) per layer, fall back to the flash kernel.
MAX_SCORE_ELEMENTS = 1 << 25


def decode_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, q_len, dim = query.shape
    kv_heads, kv_len = key.shape[1], key.shape[-2]
    if (
        q_len != 1  # prompts: the flash kernel measured faster than this math path
        or dropout
        or heads % kv_heads
        or kwargs.get("position_bias") is not None
        or batch * heads * q_len * kv_len > MAX_SCORE_ELEMENTS
        or (
            attention_mask is not None
            and attention_mask.dim() == 4
            and attention_mask.shape[1] != 1
        )
    ):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    group = heads // kv_heads
    # head h reads kv head h // group, the layout transformers' repeat_kv assumes
    q = query.reshape(batch, kv_heads, group, dim)
    scores = torch.matmul(q, key.transpose(-1, -2)).float()  # (batch, kv_heads, group, kv)
    scores *= scaling if scaling is not None else dim**-0.5
    if attention_mask is not None:
        mask = attention_mask[..., -kv_len:]  # (batch, 1, 1, kv)
        if mask.dtype == torch.bool:
            scores.masked_fill_(~mask, float("-inf"))
        else:
            scores += mask.float()
    probs = torch.softmax(scores, dim=-1).to(value.dtype).view(batch, kv_heads, group, kv_len)
    out = torch.matmul(probs, value)  # (batch, kv_heads, group, dim)
    return out.reshape(batch, 1, heads, dim), None


def install(model: Any) -> bool:
    """Route `model`'s attention through `decode_attention` if it uses sdpa; returns
    whether it did."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(NAME, decode_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    for config in {
        id(c): c for c in (model.config, model.config.get_text_config(decoder=True))
    }.values():
        config._attn_implementation = NAME
    return True
