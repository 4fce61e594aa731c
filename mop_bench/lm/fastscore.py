"""A lean scoring forward pass for Llama-architecture decoders, and the per-temperature
log-sum-exp at the scored positions.

Scoring runs thousands of tokens per forward pass, where transformers' Llama spends
a good share of its time (most under CPU contention) outside the matrix products: fp32
RMSNorm with three temporaries, rotary by `cat`, fresh allocations that page-fault,
the CPU flash-attention kernel (~15% of matmul speed at these lengths). Here:

- each RMSNorm weight is folded into the matrix that reads its output (q/k/v,
  gate/up, the output projection), so a norm is one fp32 reduction plus one scaling
  pass that writes the model dtype directly;
- q/k/v and gate/up are single matrix products (fewer, larger matmuls);
- rotary is four fused multiply-adds on views, written in place;
- attention is batched matmuls over grouped KV heads (no `repeat_kv`), which also
  lets every row attend to a prompt prefix computed once for the batch (`prefix_kv`);
- the final norm is applied only at the positions that are scored.

The arithmetic is the same as transformers' up to float round-off (folding rounds the
product of two weights once instead of the normalised activation); the tests compare
against transformers' own forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

#: Scored positions projected to the vocabulary per matmul: fewer rows re-read the
#: whole (vocabulary x hidden) matrix per row (64 rows ran at 2/3 of 512 rows' speed).
HEAD_CHUNK = 512
#: Rows of logits converted to fp32 for the log-sum-exp at once: 64 x 49152 x 4 bytes
#: = 12.6 MB stays in cache and is reused by malloc (large buffers are mmap-ed afresh
#: on every allocation and page-fault on first touch).
LSE_CHUNK = 64
#: Rows of attention scores (fp32) computed at once are capped at about this size.
ATTENTION_SCORE_BYTES = 16 << 20


@dataclass
class _Layer:
    qkv: torch.Tensor  # ((heads + 2 kv_heads) * head_dim, hidden), input norm folded in
    o: torch.Tensor
    gate_up: torch.Tensor  # (2 * intermediate, hidden), post-attention norm folded in
    down: torch.Tensor
    eps_in: float
    eps_post: float


def unsupported_reason(model: Any) -> str | None:
    """Why `model` cannot use `LeanLlama` (None when it can)."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) not in ("llama",):
        return f"model_type {getattr(config, 'model_type', None)!r} is not llama"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "biased projections"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act!r}"
    if getattr(config, "pretraining_tp", 1) != 1:
        return "pretraining_tp != 1"
    decoder = model.get_decoder()
    if not hasattr(decoder, "rotary_emb") or not hasattr(decoder, "layers"):
        return "no rotary_emb/layers on the decoder"
    return None


def _fold(weight: torch.Tensor, norm_weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """W @ diag(g), computed in fp32 and rounded once to `dtype`."""
    return (weight.float() * norm_weight.float()[None, :]).to(dtype).contiguous()


def _rms_scale(x: torch.Tensor, eps: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """x / rms(x): the mean square is reduced in fp32 (as transformers does); the row
    scale is applied in x's dtype, written into `out` if given. (A bf16 x times an
    fp32 scale would go through an fp32 temporary, which costs more than the matmul
    that reads the result.)"""
    sq = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=torch.float32).square_()
    inv = sq.div_(x.shape[-1]).add_(eps).rsqrt_().to(x.dtype)
    return torch.mul(x, inv, out=out) if out is not None else x * inv


def _causal_mask(width: int, start: int, dtype: torch.dtype) -> torch.Tensor:
    """(width, start + width) additive mask: query i (at position start + i) sees keys
    0..start + i. Adding 0 or -inf is exact in any dtype."""
    return torch.full((width, start + width), float("-inf"), dtype=dtype).triu_(start + 1)


def _attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """softmax(q k^T + mask) v with grouped kv heads (q already scaled by
    1/sqrt(head_dim)), as batched matmuls in the model dtype (the flash CPU kernel
    measured slower at these lengths), a few rows at a time so the scores stay near
    cache size. torch's CPU softmax accumulates bf16 in fp32. q: (rows, heads, width,
    d), k/v: (rows, kv_heads, keys, d), mask: (width, keys)."""
    rows, heads, width, d = q.shape
    kv_heads, keys = k.shape[1], k.shape[2]
    group = heads // kv_heads
    out = q.new_empty((rows, heads, width, d))
    step = max(1, ATTENTION_SCORE_BYTES // (heads * width * keys * q.element_size()))
    for lo in range(0, rows, step):
        hi = min(rows, lo + step)
        # head j reads kv head j // group (transformers' repeat_kv layout)
        qg = q[lo:hi].reshape(hi - lo, kv_heads, group * width, d)
        s = torch.matmul(qg, k[lo:hi].transpose(-1, -2))
        s = s.view(hi - lo, kv_heads, group, width, keys).add_(mask)
        p = torch.softmax(s, dim=-1).view(hi - lo, kv_heads, group * width, keys)
        torch.matmul(p, v[lo:hi], out=out[lo:hi].view(hi - lo, kv_heads, group * width, d))
    return out


class LeanLlama:
    """Hidden states (final norm applied, its weight folded into `head`) of a Llama
    decoder for right-padded batches without an attention mask."""

    def __init__(self, model: Any) -> None:
        reason = unsupported_reason(model)
        if reason:
            raise ValueError(f"LeanLlama: unsupported model ({reason})")
        decoder = model.get_decoder()
        config = model.config
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(getattr(config, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.heads)
        self.rotary = decoder.rotary_emb
        self.embed = decoder.embed_tokens.weight
        dtype = self.embed.dtype
        with torch.no_grad():
            self.layers = []
            for layer in decoder.layers:
                att, mlp = layer.self_attn, layer.mlp
                g_in, g_post = layer.input_layernorm, layer.post_attention_layernorm
                # 1/sqrt(head_dim) folded into q (exact for power-of-two head sizes)
                q_scaled = att.q_proj.weight.float() * float(att.scaling)
                qkv = torch.cat([q_scaled, att.k_proj.weight.float(), att.v_proj.weight.float()])
                gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
                self.layers.append(
                    _Layer(
                        qkv=_fold(qkv, g_in.weight, dtype),
                        o=att.o_proj.weight.contiguous(),
                        gate_up=_fold(gate_up, g_post.weight, dtype),
                        down=mlp.down_proj.weight.contiguous(),
                        eps_in=float(g_in.variance_epsilon),
                        eps_post=float(g_post.variance_epsilon),
                    )
                )
            self.final_eps = float(decoder.norm.variance_epsilon)
            self.head = _fold(model.get_output_embeddings().weight, decoder.norm.weight, dtype)
        self._rope: tuple[int, tuple[torch.Tensor, ...]] | None = None

    def _rope_tables(self, width: int) -> tuple[torch.Tensor, ...]:
        """cos/sin halves for positions 0..width-1, shaped (1, width, 1, head_dim / 2)."""
        if self._rope is None or self._rope[0] < width:
            pos = torch.arange(width)[None]
            cos, sin = self.rotary(self.embed[:1], pos)  # (1, width, head_dim)
            half = self.head_dim // 2
            tables = tuple(
                t[:, :, None, sl].contiguous()
                for t in (cos, sin)
                for sl in (slice(0, half), slice(half, None))
            )
            self._rope = (width, tables)
        return tuple(t[:, :width] for t in self._rope[1])

    def prefix_kv(self, ids: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (keys, values), each (1, kv_heads, len(ids), head_dim), of a token
        prefix shared by every row of a batch (see `hidden(past=...)`)."""
        kv: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._run(torch.tensor([list(ids)], dtype=torch.long), None, kv)
        return kv

    def hidden(
        self, ids: torch.Tensor, past: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    ) -> torch.Tensor:
        """(rows, width) token ids -> (rows, width, hidden) residual stream after the
        last layer (not yet normalised: see `final_norm`). With `past` (from
        `prefix_kv`), every row continues that prefix: positions start after it and
        every token also attends to it."""
        return self._run(ids, past, None)

    def _run(
        self,
        ids: torch.Tensor,
        past: list[tuple[torch.Tensor, torch.Tensor]] | None,
        collect: list[tuple[torch.Tensor, torch.Tensor]] | None,
    ) -> torch.Tensor:
        rows, width = ids.shape
        h, kv, d = self.heads, self.kv_heads, self.head_dim
        half, n = d // 2, rows * width
        start = past[0][0].shape[2] if past else 0
        c1, c2, s1, s2 = (t[:, start:] for t in self._rope_tables(start + width))
        x = F.embedding(ids, self.embed).view(n, -1)
        # One buffer per intermediate, reused by every layer: fresh multi-MB tensors
        # are mmap-ed and page-faulted on every allocation.
        normed = torch.empty_like(x)
        qkv = x.new_empty((n, self.layers[0].qkv.shape[0]))
        # rotated q and k, and v, head-major: (rows, heads + 2 kv_heads, width, d)
        heads = x.new_empty((rows, h + 2 * kv, width, d))
        att = x.new_empty((n, h * d))
        gate_up = x.new_empty((n, self.layers[0].gate_up.shape[0]))
        inter = gate_up.shape[1] // 2
        act = x.new_empty((n, inter))
        q4 = qkv.view(rows, width, -1, d)
        x1, x2 = q4[:, :, : h + kv, :half], q4[:, :, : h + kv, half:]
        rot = heads.transpose(1, 2)
        r1, r2 = rot[:, :, : h + kv, :half], rot[:, :, : h + kv, half:]
        q, k, v = heads[:, :h], heads[:, h : h + kv], heads[:, h + kv :]
        mask = _causal_mask(width, start, x.dtype)
        for i, layer in enumerate(self.layers):
            torch.mm(_rms_scale(x, layer.eps_in, normed), layer.qkv.t(), out=qkv)
            # rotate_half(q) = (-x2, x1): rotated = (x1 c1 - x2 s1, x2 c2 + x1 s2)
            torch.mul(x1, c1, out=r1).addcmul_(x2, s1, value=-1)
            torch.mul(x2, c2, out=r2).addcmul_(x1, s2)
            rot[:, :, h + kv :].copy_(q4[:, :, h + kv :])
            keys, values = k, v
            if past:
                pk, pv = past[i]
                keys = torch.cat([pk.expand(rows, -1, -1, -1), k], dim=2)
                values = torch.cat([pv.expand(rows, -1, -1, -1), v], dim=2)
            if collect is not None:
                collect.append((keys.clone(), values.clone()))
            out = _attention(q, keys, values, mask)
            att.view(rows, width, h, d).copy_(out.transpose(1, 2))
            x.addmm_(att, layer.o.t())
            torch.mm(_rms_scale(x, layer.eps_post, normed), layer.gate_up.t(), out=gate_up)
            torch.ops.aten.silu.out(gate_up[:, :inter], out=act).mul_(gate_up[:, inter:])
            x.addmm_(act, layer.down.t())
        return x.view(rows, width, -1)

    def final_norm(self, x: torch.Tensor) -> torch.Tensor:
        """The final RMSNorm without its weight (folded into `head`)."""
        return _rms_scale(x, self.final_eps)


def continuation_logprobs(
    hidden: torch.Tensor,
    head: Any,
    targets: torch.Tensor,
    taus: Sequence[float],
    chunk: int = HEAD_CHUNK,
    lse_chunk: int = LSE_CHUNK,
) -> torch.Tensor:
    """(n, len(taus)) fp32 log p_tau(target) from (n, hidden) states: the vocabulary
    projection `head` (a weight matrix or a module) is applied `chunk` rows at a time,
    and log p_tau(y) = z_y / tau - logsumexp(z / tau), where logsumexp(z / tau) =
    m / tau + log sum exp((z - m) / tau) shares the max m across temperatures (in fp32,
    `lse_chunk` rows at a time)."""
    n = hidden.shape[0]
    out = torch.empty((n, len(taus)), dtype=torch.float32)
    logits: torch.Tensor | None = None
    for lo in range(0, n, chunk):
        h = hidden[lo : lo + chunk]
        if isinstance(head, torch.Tensor):
            if logits is None:  # one buffer for the whole call (no mmap churn)
                logits = h.new_empty((min(n, chunk), head.shape[0]))
            z_all = torch.mm(h, head.t(), out=logits[: len(h)])
        else:
            z_all = head(h)
        for sub in range(0, len(h), lse_chunk):
            rows = slice(lo + sub, lo + min(sub + lse_chunk, len(h)))
            z = z_all[sub : sub + lse_chunk].float()
            zy = z.gather(-1, targets[rows, None])[:, 0]
            m = z.amax(-1, keepdim=True)
            z.sub_(m)
            m = m[:, 0]
            buf = torch.empty_like(z) if any(t != 1.0 for t in taus) else None
            for k, t in enumerate(taus):
                if t == 1.0:
                    total = torch.exp(z).sum(-1) if buf is None else torch.exp(z, out=buf).sum(-1)
                else:
                    total = torch.mul(z, 1.0 / t, out=buf).exp_().sum(-1)
                out[rows, k] = (zy - m) / t - total.log()
    return out
