"""The top_p nucleus from ranked candidates equals the one from a full stable sort, bit for
bit (ties included), so the faster sampler changes no text."""

from __future__ import annotations

import pytest
import torch

from mop_bench.lm import sampling


def _full_sort_sample(logits, temps, uniforms, top_p) -> torch.Tensor:
    """The sampler as it was: softmax, a full stable sort, nucleus, inverse CDF."""
    probs = torch.softmax(logits.float() / temps[:, None], dim=-1)
    probs, order = probs.sort(dim=-1, descending=True, stable=True)
    probs = probs * (probs.cumsum(dim=-1) - probs < top_p)
    cdf = probs.cumsum(dim=-1)
    total = cdf[:, -1]
    target = (uniforms * total.double()).float()
    target = torch.minimum(target, torch.nextafter(total, torch.zeros_like(total)))[:, None]
    pick = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[-1] - 1)
    return order.gather(-1, pick).squeeze(-1)


@pytest.mark.parametrize("scale", [0.3, 2.0, 8.0])  # flat (full-sort fallback) to peaked
def test_ranked_candidates_sample_what_a_full_sort_samples(scale: float) -> None:
    gen = torch.Generator().manual_seed(1)
    vocab = 3 * sampling.NUCLEUS_CANDIDATES
    for _ in range(10):
        # bf16 logits: many exact ties, so the tie order (index ascending) matters
        logits = (torch.randn(32, vocab, generator=gen) * scale).to(torch.bfloat16)
        logits[:4, :50] = logits[:4, :1]  # a block of tied top tokens
        temps = torch.rand(32, generator=gen) + 0.3
        uniforms = torch.rand(32, generator=gen, dtype=torch.float64)
        for top_p in (0.3, 0.9, 0.95, 0.999):
            expected = _full_sort_sample(logits, temps, uniforms, top_p)
            got = sampling.sample_tokens(logits, temps, uniforms, top_p)
            assert torch.equal(got, expected), (scale, top_p)


def test_nucleus_order_is_the_full_sorts_prefix() -> None:
    gen = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(8, 5000, generator=gen).to(torch.bfloat16).float() * 6, -1)
    values, index = sampling.nucleus_order(probs, 0.9)
    full_values, full_index = probs.sort(dim=-1, descending=True, stable=True)
    mass = values.cumsum(-1)
    for r in range(8):
        n = int((mass[r] - values[r] < 0.9).sum())  # the row's nucleus
        assert torch.equal(values[r, :n], full_values[r, :n])
        assert torch.equal(index[r, :n], full_index[r, :n])
