"""In-process transformers backend: batched seeded sampling and multi-temperature scoring."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from mop_bench.lm.base import (
    Completion,
    LMStats,
    Prompt,
    RawPrompt,
    SequenceScore,
    split_prefill,
)
from mop_bench.lm.sampling import (
    MIN_SHARED_PREFIX,
    DecoderParts,
    StopStrings,
    common_prefix,
    generate_batch,
)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """$MOP_BENCH_THREADS, else every core this process may use. On a machine shared
    with other busy processes fewer threads can be much faster: an OpenMP region waits
    for its slowest thread, and a descheduled one stalls every op."""
    env = os.environ.get("MOP_BENCH_THREADS")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"MOP_BENCH_THREADS must be a positive integer, got {env!r}") from None
        if value >= 1:
            return value
        raise ValueError(f"MOP_BENCH_THREADS must be a positive integer, got {env!r}")
    return available_cores()


class TransformersLM:
    """A frozen causal LM run in this process (implements `LanguageModel`).

    `batch_size` bounds the rows of one forward pass; `max_batch_tokens` bounds rows x
    padded length while scoring. Results never depend on either beyond float round-off.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str | None = None,
        batch_size: int = 32,
        max_batch_tokens: int = 8192,
        progress: bool = False,
        num_threads: int | None = None,
        fast_decode: bool = True,
        lean_score: bool = True,
        device: str = "cpu",
    ) -> None:
        import torch

        from mop_bench.lm.attention import install

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        torch.set_num_threads(num_threads or default_threads())
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        self.name = (
            name or f"{getattr(model, 'name_or_path', type(model).__name__)} dtype={self.dtype}"
        )
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        #: Where `model` lives (`mop_bench.devices`); inputs are sent there.
        self.device = device
        self.progress = progress
        self.stats = LMStats()
        # single-token attention by two small matmuls (see attention.py); off = stock sdpa
        self.fast_decode = install(model) if fast_decode else False
        decoder = model.get_decoder()
        params = inspect.signature(decoder.forward).parameters
        cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self._parts = DecoderParts(decoder, model.get_output_embeddings(), cache_kwarg, device)
        self.stop_ids = self._stop_ids()
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.stop_ids))
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        # scoring through fastscore.LeanLlama where the architecture allows (its fused
        # kernels are tuned for CPUs); built on the first `score` call (it holds a
        # folded copy of the weights)
        self.lean_score = lean_score and device == "cpu"
        self._lean: Any = None
        #: Token positions actually run through the decoder while scoring (padding
        #: included, a shared prefix counted once per batch): for utilisation figures.
        self.score_forward_tokens = 0

    def _lean_model(self) -> Any:
        from mop_bench.lm.fastscore import LeanLlama, unsupported_reason

        if self._lean is None and self.lean_score and unsupported_reason(self.model) is None:
            self._lean = LeanLlama(self.model)
        return self._lean

    @classmethod
    def from_pretrained(
        cls,
        model: str = "smollm2-135m-instruct",
        *,
        dtype: str = "auto",
        batch_size: int = 32,
        max_batch_tokens: int = 8192,
        progress: bool = False,
        num_threads: int | None = None,
        device: str = "cpu",
    ) -> TransformersLM:
        """Load by alias, Hub id or path (see `mop_bench.lm.loading.resolve_model`) onto
        `device` (resolved: "cpu", "cuda", "cuda:N" or "mps")."""
        from mop_bench.lm.loading import load_pretrained

        loaded = load_pretrained(model, dtype=dtype, device=device)
        return cls(
            loaded.model,
            loaded.tokenizer,
            name=loaded.identity,
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            progress=progress,
            num_threads=num_threads,
            device=device,
        )

    def _stop_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (
            self.tokenizer.eos_token_id,
            getattr(getattr(self.model, "generation_config", None), "eos_token_id", None),
        ):
            if isinstance(source, int):
                ids.add(source)
            elif isinstance(source, list | tuple):
                ids.update(int(s) for s in source)
        if not ids:
            raise ValueError(f"{self.name}: the tokenizer has no EOS token to stop generation at")
        return ids

    # -- tokenisation ----------------------------------------------------------------

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt, chat template applied (with the assistant header)
        where the tokenizer has one. A final assistant message is a pre-filled start of
        the answer: generation continues it (see `split_prefill`). A `RawPrompt` is
        tokenised as is, without the chat template."""
        if isinstance(prompt, RawPrompt):
            return list(self.tokenizer(prompt.text)["input_ids"])
        if self.has_chat_template:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            messages, prefill = split_prefill(list(messages))
            text = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            return list(self.tokenizer(text + prefill, add_special_tokens=False)["input_ids"])
        if not isinstance(prompt, str):
            raise ValueError(
                f"{self.name}: the tokenizer has no chat template, so prompts must be plain "
                f"strings, not message lists"
            )
        return list(self.tokenizer(prompt)["input_ids"])

    def _score_batches(self, heads: list[list[int]], lengths: list[int]) -> Iterator[list[int]]:
        """Scoring batches (`mop_bench.lm.score_batches.plan`): prompt-sharing groups
        only where the lean path runs their common prefix once."""
        from mop_bench.lm.score_batches import plan

        return plan(
            heads,
            lengths,
            batch_size=self.batch_size,
            max_batch_tokens=self.max_batch_tokens,
            share_prefixes=self._lean_model() is not None,
        )

    def _bar(self, total: int, desc: str) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="seq", disable=not self.progress, leave=False)

    # -- generate --------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        temperatures: Sequence[float],
        seeds: Sequence[int],
        max_new_tokens: int,
        top_p: float = 1.0,
        stop: Sequence[str] = (),
        min_new_tokens: int = 0,
    ) -> list[Completion]:
        """Sample one continuation per prompt (temperature 0 = greedy). A row ends at
        EOS, at `max_new_tokens`, or once its text holds a `stop` string (kept in the
        text, for the caller to cut). `min_new_tokens` forbids the stop tokens before
        that many tokens (used to time fixed lengths)."""
        import torch

        n = len(prompts)
        if len(temperatures) != n or len(seeds) != n:
            raise ValueError(
                f"generate: {n} prompts but {len(temperatures)} temperatures and {len(seeds)} seeds"
            )
        if max_new_tokens < 1:
            raise ValueError(f"generate: max_new_tokens must be >= 1, got {max_new_tokens}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"generate: top_p must be in (0, 1], got {top_p}")
        for i, t in enumerate(temperatures):
            if not t >= 0.0:
                raise ValueError(f"generate: temperature of prompt {i} is {t}; must be >= 0")
        start = time.perf_counter()
        ids = [self.prompt_ids(p) for p in prompts]
        # Sorting on content (not call order) makes the batches a function of the set of
        # requests, so reordering a call does not change any text.
        order = sorted(range(n), key=lambda i: (len(ids[i]), ids[i], temperatures[i], seeds[i]))
        new: list[list[int]] = [[] for _ in range(n)]
        stop_strings = StopStrings(self._decode, stop) if stop else None
        bar = self._bar(n, "generate")
        with torch.inference_mode():
            for start_row in range(0, n, self.batch_size):
                batch = order[start_row : start_row + self.batch_size]
                tokens = generate_batch(
                    self._parts,
                    [ids[i] for i in batch],
                    temperatures=[float(temperatures[i]) for i in batch],
                    seeds=[int(seeds[i]) for i in batch],
                    max_new_tokens=max_new_tokens,
                    top_p=top_p,
                    stop_ids=self.stop_ids,
                    pad_id=self.pad_id,
                    min_new_tokens=min_new_tokens,
                    stop_strings=stop_strings,
                )
                for i, t in zip(batch, tokens, strict=False):
                    new[i] = t
                bar.update(len(batch))
        bar.close()
        out = [Completion(self._decode(t), len(t)) for t in new]
        self.stats.add_generate(
            n,
            sum(c.n_tokens for c in out),
            time.perf_counter() - start,
            prompt_tokens=sum(len(i) for i in ids),
        )
        return out

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # -- score -----------------------------------------------------------------------

    def score(
        self,
        prompts: Sequence[Prompt],
        continuations: Sequence[str],
        *,
        temperatures: Sequence[float] = (1.0,),
        max_tokens: int | None = None,
        per_token: bool = False,
    ) -> list[SequenceScore]:
        """log p_tau(continuation | prompt) for every tau, from one forward pass per batch:
        log p_tau(y_t) = z_y / tau - logsumexp(z / tau) over the vocabulary."""
        import torch

        if len(prompts) != len(continuations):
            raise ValueError(
                f"score: {len(prompts)} prompts but {len(continuations)} continuations"
            )
        taus = [float(t) for t in temperatures]
        if not taus or any(not t > 0 for t in taus):
            raise ValueError(
                f"score: temperatures must be a non-empty list of values > 0, got {taus}"
            )
        if max_tokens is not None and max_tokens < 0:
            raise ValueError(f"score: max_tokens must be >= 0, got {max_tokens}")
        start = time.perf_counter()
        heads, tails = [], []
        for i, (p, c) in enumerate(zip(prompts, continuations, strict=False)):
            head = self.prompt_ids(p)
            if not head:
                raise ValueError(
                    f"score: prompt {i} is empty after tokenisation; nothing to condition on"
                )
            tail = list(self.tokenizer(c, add_special_tokens=False)["input_ids"])
            heads.append(head)
            tails.append(tail[:max_tokens] if max_tokens is not None else tail)
        lengths = [len(h) + len(t) for h, t in zip(heads, tails, strict=False)]
        results: list[SequenceScore | None] = [None] * len(heads)
        bar = self._bar(len(heads), "score")
        with torch.inference_mode():
            for batch in self._score_batches(heads, lengths):
                per_row = self._score_batch(
                    [heads[i] for i in batch], [tails[i] for i in batch], taus
                )
                for i, lp in zip(batch, per_row, strict=False):
                    results[i] = SequenceScore(
                        logprob=lp.sum(0).astype(np.float64),
                        n_tokens=len(tails[i]),
                        token_logprobs=lp if per_token else None,
                    )
                bar.update(len(batch))
        bar.close()
        self.stats.add_score(
            len(heads),
            sum(len(t) for t in tails),
            time.perf_counter() - start,
            prompt_tokens=sum(len(h) for h in heads),
        )
        return results  # type: ignore[return-value]

    def _score_batch(
        self, heads: list[list[int]], tails: list[list[int]], tau: list[float]
    ) -> list[np.ndarray]:
        import torch

        from mop_bench.lm.fastscore import continuation_logprobs

        rows = len(heads)
        lean = self._lean_model()
        # A token prefix common to every prompt of the batch (chat header, system
        # prompt, instruction) is run once and its keys/values shared by all rows;
        # each row keeps at least the last prompt token (it predicts the first target).
        shared = common_prefix(heads) if lean is not None and rows > 1 else 0
        shared = min(shared, min(len(h) for h in heads) - 1)
        if shared < MIN_SHARED_PREFIX:
            shared = 0
        width = max(len(h) + len(t) for h, t in zip(heads, tails, strict=False)) - shared
        ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
        row_idx, col_idx, targets = [], [], []
        for r, (h, t) in enumerate(zip(heads, tails, strict=False)):
            seq = h[shared:] + t
            ids[r, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            # the hidden state at position p predicts the token at p + 1
            row_idx += [r] * len(t)
            col_idx += range(len(h) - 1 - shared, len(seq) - 1)
            targets += t
        # Right padding and no attention mask: with causal attention a pad at the end
        # cannot influence earlier positions.
        self.score_forward_tokens += rows * width + shared
        rows_t = torch.tensor(row_idx, dtype=torch.long)
        cols_t = torch.tensor(col_idx, dtype=torch.long)
        if lean is not None:
            past = lean.prefix_kv(heads[0][:shared]) if shared else None
            picked = lean.final_norm(lean.hidden(ids, past)[rows_t, cols_t])
            head: Any = lean.head
        else:
            dev = self.device
            hidden = self._parts.decoder(input_ids=ids.to(dev), use_cache=False).last_hidden_state
            picked, head = hidden[rows_t.to(dev), cols_t.to(dev)], self._parts.lm_head
        target = torch.tensor(targets, dtype=torch.long).to(picked.device)
        out = continuation_logprobs(picked, head, target, tau)
        pieces = torch.split(out, [len(t) for t in tails])
        return [p.numpy().copy() for p in pieces]
