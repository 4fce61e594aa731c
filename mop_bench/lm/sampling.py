"""The batched sampling loop behind `TransformersLM.generate`.

We do not use `model.generate`: its sampling draws from torch's global RNG, so a row's
text would depend on everything sampled before it. Here every row owns a
`torch.Generator` seeded with that row's seed, from which all its uniforms are drawn
up front, and tokens are chosen by inverting the row's CDF. A row's text then depends
only on its prompt, seed, temperature, top_p and max_new_tokens (and, through float
round-off, on which prompts share its batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

#: Drop finished rows once this fraction of the live batch has finished: selecting rows
#: copies the whole KV cache, so doing it after every single EOS would cost more than
#: the wasted compute on a few dead rows.
DROP_FINISHED_FRACTION = 0.25


def _growing_layer_class(reserve: int) -> type:
    """A KV-cache layer that preallocates room for `reserve` tokens past the prompt and
    writes new keys in place. transformers' DynamicLayer concatenates on every step,
    which copies the whole cache once per token per layer."""
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            self.device = key_states.device
            self.length = 0
            self._k: torch.Tensor | None = None
            self._v: torch.Tensor | None = None
            self.is_initialized = True

        def update(
            self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
        ) -> tuple[torch.Tensor, torch.Tensor]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            new = key_states.shape[-2]
            end = self.length + new
            if self._k is None or end > self._k.shape[-2]:
                capacity = end + reserve if self._k is None else 2 * end
                k = key_states.new_empty((*key_states.shape[:-2], capacity, key_states.shape[-1]))
                v = value_states.new_empty(
                    (*value_states.shape[:-2], capacity, value_states.shape[-1])
                )
                if self._k is not None:
                    k[..., : self.length, :] = self._k[..., : self.length, :]
                    v[..., : self.length, :] = self._v[..., : self.length, :]
                self._k, self._v = k, v
            self._k[..., self.length : end, :] = key_states
            self._v[..., self.length : end, :] = value_states
            self.length = end
            self.keys = self._k[..., :end, :]
            self.values = self._v[..., :end, :]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length if self.is_initialized else 0

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self._k is not None:
                self._k = self._k.repeat_interleave(repeats, dim=0)
                self._v = self._v.repeat_interleave(repeats, dim=0)
                self.keys = self._k[..., : self.length, :]
                self.values = self._v[..., : self.length, :]

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self._k is not None:
                self._k = self._k[indices]
                self._v = self._v[indices]
                self.keys = self._k[..., : self.length, :]
                self.values = self._v[..., : self.length, :]

    return GrowingLayer


#: Shared prompt prefixes shorter than this are not worth a separate forward pass.
MIN_SHARED_PREFIX = 8


def common_prefix(seqs: Sequence[Sequence[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return n


def make_cache(reserve: int) -> Any:
    from transformers.cache_utils import Cache

    return Cache(layer_class_to_replicate=_growing_layer_class(reserve))


def row_uniforms(seeds: Sequence[int], steps: int) -> torch.Tensor:
    """(rows, steps) float64 uniforms in [0, 1); row i from its own generator."""
    out = torch.empty((len(seeds), steps), dtype=torch.float64)
    for i, seed in enumerate(seeds):
        gen = torch.Generator().manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
        out[i] = torch.rand(steps, generator=gen, dtype=torch.float64)
    return out


#: Tokens ranked per row before the nucleus is cut (`nucleus_order`); a row whose
#: nucleus does not end among them is sorted in full.
NUCLEUS_CANDIDATES = 1024
#: How far above top_p the mass of a row's ranked candidates must reach for its nucleus
#: to certainly end among them (float32 round-off of the running sum is ~1e-7).
NUCLEUS_MARGIN = 1e-5


def nucleus_order(probs: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The leading columns of `probs.sort(dim=-1, descending=True, stable=True)`: enough
    of them to hold every row's top_p nucleus, bit for bit the same values and order.

    A full sort of the vocabulary took 11% of generation time. The candidates are each
    row's top `NUCLEUS_CANDIDATES`, put in the stable sort's order (probability down,
    then index up: ties are common in bf16 logits). Those strictly above the smallest
    candidate are exactly the full sort's first columns; a running sum is sequential
    (cumsum accumulates in double), so the nucleus mask and CDF over them equal the full
    ones wherever the nucleus ends before them (their mass reaches top_p + margin).
    Rows where it does not are sorted in full."""
    vocab = probs.shape[-1]
    k = min(NUCLEUS_CANDIDATES, vocab)
    if k == vocab:
        return probs.sort(dim=-1, descending=True, stable=True)
    values, index = probs.topk(k, dim=-1, sorted=False)
    index, by_index = index.sort(dim=-1)  # distinct indices: ascending, then...
    values = values.gather(-1, by_index)
    values, by_value = values.sort(dim=-1, descending=True, stable=True)  # ...stable by value
    index = index.gather(-1, by_value)
    strict = values > values[:, -1:]  # a prefix of each row: what the full sort puts first
    mass = torch.where(strict, values.cumsum(dim=-1), torch.zeros_like(values)).amax(dim=-1)
    short = (mass < top_p + NUCLEUS_MARGIN).nonzero().squeeze(-1)
    if len(short):
        full_values, full_index = probs[short].sort(dim=-1, descending=True, stable=True)
        values = torch.cat([values, values.new_zeros((len(values), vocab - k))], dim=-1)
        index = torch.cat([index, index.new_zeros((len(index), vocab - k))], dim=-1)
        values[short], index[short] = full_values, full_index
    return values, index


def sample_tokens(
    logits: torch.Tensor, temperatures: torch.Tensor, uniforms: torch.Tensor, top_p: float = 1.0
) -> torch.Tensor:
    """One token per row: argmax where temperature is 0, else the inverse CDF of
    softmax(logits / temperature) (restricted to the top_p nucleus) at the row's
    uniform. Rows never interact, so the batch a row sits in does not change its draw."""
    logits = logits.float()
    greedy_rows = temperatures <= 0
    any_greedy = bool(greedy_rows.any())
    greedy = logits.argmax(dim=-1) if any_greedy else None
    if bool(greedy_rows.all()):
        return greedy
    temps = torch.where(greedy_rows, torch.ones_like(temperatures), temperatures).float()
    if bool((temps == 1.0).all()):
        probs = torch.softmax(logits, dim=-1)
    else:
        probs = torch.softmax(logits / temps[:, None], dim=-1)
    order = None
    if top_p < 1.0:
        probs, order = nucleus_order(probs, top_p)
        before = probs.cumsum(dim=-1) - probs
        probs = probs * (before < top_p)  # the top token always survives
    # float32 is exact enough: the target is scaled by this same cdf's total
    cdf = probs.cumsum(dim=-1)
    # right=True picks the first index whose cdf exceeds the target, never a zero-mass one
    total = cdf[:, -1]
    target = (uniforms * total.double()).float()
    # a uniform near 1 must not round up to the total (that would land past the mass)
    target = torch.minimum(target, torch.nextafter(total, torch.zeros_like(total)))[:, None]
    pick = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[-1] - 1)
    sampled = (order.gather(-1, pick) if order is not None else pick).squeeze(-1)
    return torch.where(greedy_rows, greedy, sampled) if greedy is not None else sampled


class StopStrings:
    """Ends a row once its text contains a stop string (e.g. the blank line that ends
    a document in a completion prompt). Only tokens that could complete a stop (their
    text holds a stop's last character) trigger a decode of the row's last few tokens,
    so the check costs next to nothing per step. The stop's tokens stay in the row: the
    caller cuts the text at the stop (`mop_bench.mop.prompts.cut_at_stop`)."""

    def __init__(self, decode: Callable[[list[int]], str], stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.decode = decode
        self.last_chars = {s[-1] for s in self.stops}
        # every token decodes to at least one character (or a replacement char), so a
        # stop string lies inside the last len(stop) + 2 tokens once it is complete
        self.window = max((len(s) for s in self.stops), default=0) + 2
        self._may_end: dict[int, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.stops)

    def hit(self, tokens: list[int]) -> bool:
        last = tokens[-1]
        may = self._may_end.get(last)
        if may is None:
            piece = self.decode([last])
            may = self._may_end[last] = any(c in piece for c in self.last_chars)
        if not may:
            return False
        tail = self.decode(tokens[-self.window :])
        return any(s in tail for s in self.stops)


@dataclass
class DecoderParts:
    """The pieces of a causal LM the loop drives: the decoder stack (to hidden states),
    the output projection, and the name of the cache keyword of this transformers."""

    decoder: Callable[..., Any]
    lm_head: Callable[[torch.Tensor], torch.Tensor]
    cache_kwarg: str
    device: str = "cpu"
    """Where the model lives: inputs go there, logits come back to the CPU, where the
    rows' uniforms are (so a row draws the same way on every device)."""

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        out = self.lm_head(hidden)
        return out if self.device == "cpu" else out.float().cpu()


def generate_batch(
    parts: DecoderParts,
    prompt_ids: Sequence[Sequence[int]],
    *,
    temperatures: Sequence[float],
    seeds: Sequence[int],
    max_new_tokens: int,
    top_p: float,
    stop_ids: set[int],
    pad_id: int,
    min_new_tokens: int = 0,
    drop_fraction: float = DROP_FINISHED_FRACTION,
    stop_strings: StopStrings | None = None,
) -> list[list[int]]:
    """New token ids for each prompt (stop token excluded), one left-padded batch. A row
    also ends once its text holds one of `stop_strings` (whose tokens it keeps)."""
    rows = len(prompt_ids)
    # Prompts built from one template share a long token prefix (chat header,
    # instruction). Its keys and values are computed once and copied to every row;
    # each row keeps at least one token of its own so its last logits exist.
    shared = common_prefix(prompt_ids) if rows > 1 else 0
    shared = min(shared, min(len(p) for p in prompt_ids) - 1)
    if shared < MIN_SHARED_PREFIX:
        shared = 0
    tails = [p[shared:] for p in prompt_ids]
    width = max(len(t) for t in tails)
    ids = torch.full((rows, width), pad_id, dtype=torch.long)
    mask = torch.ones((rows, shared + width), dtype=torch.long)
    for i, t in enumerate(tails):
        ids[i, width - len(t) :] = torch.tensor(t, dtype=torch.long)
        mask[i, shared : shared + width - len(t)] = 0  # pads sit between prefix and tail
    positions = (mask.cumsum(-1) - 1).clamp_(min=0)[:, shared:]
    temps = torch.tensor(temperatures, dtype=torch.float32)
    uniforms = row_uniforms(seeds, max_new_tokens)
    stops = torch.tensor(sorted(stop_ids), dtype=torch.long)
    live = torch.arange(rows)  # original row of each row still in the batch
    out: list[list[int]] = [[] for _ in range(rows)]
    done = torch.zeros(rows, dtype=torch.bool)
    cache = make_cache(width + max_new_tokens)
    kw = {parts.cache_kwarg: cache, "use_cache": True}

    dev = parts.device
    if shared:
        prefix = torch.tensor([prompt_ids[0][:shared]], dtype=torch.long)
        parts.decoder(
            input_ids=prefix.to(dev), position_ids=torch.arange(shared)[None].to(dev), **kw
        )
        cache.batch_repeat_interleave(rows)
    hidden = parts.decoder(
        input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=positions.to(dev), **kw
    )
    logits = parts.logits(hidden.last_hidden_state[:, -1])
    last_pos = positions[:, -1]
    for step in range(max_new_tokens):
        if step < min_new_tokens:
            logits = logits.float().index_fill_(-1, stops, float("-inf"))
        token = sample_tokens(logits, temps, uniforms[:, step], top_p)
        finished_now = torch.isin(token, stops) & ~done
        appended = (~done & ~finished_now).nonzero().squeeze(-1).tolist()
        for pos in appended:
            r = int(live[pos])
            out[r].append(int(token[pos]))
            if stop_strings and stop_strings.hit(out[r]):
                finished_now[pos] = True
        done |= finished_now
        if step == max_new_tokens - 1 or bool(done.all()):
            break
        if int(done.sum()) >= drop_fraction * len(done):
            keep = (~done).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            live, done, token = live[keep], done[keep], token[keep]
            mask, last_pos = mask[keep], last_pos[keep]
            temps, uniforms = temps[keep], uniforms[keep]
        token = torch.where(done, torch.full_like(token, pad_id), token)
        mask = torch.cat([mask, torch.ones((len(live), 1), dtype=mask.dtype)], dim=-1)
        last_pos = last_pos + 1
        hidden = parts.decoder(
            input_ids=token[:, None].to(dev),
            attention_mask=mask.to(dev),
            position_ids=last_pos[:, None].to(dev),
            **kw,
        )
        logits = parts.logits(hidden.last_hidden_state[:, -1])
    return out
