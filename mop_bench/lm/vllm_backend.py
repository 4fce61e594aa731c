"""In-process vLLM adapter (GPU machines; `pip install mop-bench[vllm]`).

Generation passes one `SamplingParams(seed=...)` per request, so each text depends on
its own seed only. Scoring uses `prompt_logprobs=0` (the log-prob of each actual prompt
token) on prompt + continuation token ids, which vLLM reports at temperature 1 only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as err:
        raise ImportError(
            "the 'vllm' LM backend needs the vllm package (a CUDA machine): "
            "pip install 'mop-bench[vllm]'; on a CPU use backend 'transformers'"
        ) from err
    return vllm


class VLLMLM:
    """`LanguageModel` on an in-process `vllm.LLM` engine."""

    def __init__(self, model: str, *, dtype: str = "auto", **engine_kwargs: Any) -> None:
        vllm = _import_vllm()
        self._vllm = vllm
        self.llm = vllm.LLM(model=model, dtype=dtype, **engine_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.name = f"{model} [vllm {vllm.__version__}] dtype={dtype}"
        self.stats = LMStats()

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        # Same convention as the transformers backend: a string is one user message,
        # a RawPrompt is tokenised as is.
        if isinstance(prompt, RawPrompt):
            return list(self.tokenizer(prompt.text)["input_ids"])
        messages = (
            [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        )
        if getattr(self.tokenizer, "chat_template", None):
            messages, prefill = split_prefill(messages)
            text = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            return list(self.tokenizer(text + prefill, add_special_tokens=False)["input_ids"])
        if not isinstance(prompt, str):
            raise ValueError(f"{self.name}: no chat template, so prompts must be plain strings")
        return list(self.tokenizer(prompt)["input_ids"])

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
        if len(temperatures) != len(prompts) or len(seeds) != len(prompts):
            raise ValueError(
                f"generate: {len(prompts)} prompts but {len(temperatures)} temperatures and {len(seeds)} seeds"
            )
        start = time.perf_counter()
        params = [
            self._vllm.SamplingParams(
                temperature=float(t),
                top_p=top_p,
                max_tokens=max_new_tokens,
                seed=int(s),
                stop=list(stop) or None,
                min_tokens=int(min_new_tokens),
            )
            for t, s in zip(temperatures, seeds, strict=False)
        ]
        requests = [{"prompt_token_ids": self._prompt_ids(p)} for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        out = [Completion(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outputs]
        self.stats.add_generate(len(out), sum(c.n_tokens for c in out), time.perf_counter() - start)
        return out

    def score(
        self,
        prompts: Sequence[Prompt],
        continuations: Sequence[str],
        *,
        temperatures: Sequence[float] = (1.0,),
        max_tokens: int | None = None,
        per_token: bool = False,
    ) -> list[SequenceScore]:
        if len(temperatures) != 1 or float(temperatures[0]) != 1.0:
            raise NotImplementedError(
                f"{self.name}: vLLM reports prompt log-probs at temperature 1.0 only "
                f"(asked for {list(temperatures)}); use the transformers backend for a grid"
            )
        if len(prompts) != len(continuations):
            raise ValueError(
                f"score: {len(prompts)} prompts but {len(continuations)} continuations"
            )
        start = time.perf_counter()
        heads = [self._prompt_ids(p) for p in prompts]
        tails = [
            list(self.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in continuations
        ]
        tails = [t[:max_tokens] if max_tokens is not None else t for t in tails]
        params = self._vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0)
        requests = [{"prompt_token_ids": h + t} for h, t in zip(heads, tails, strict=False)]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        out = []
        for h, t, o in zip(heads, tails, outputs, strict=False):
            ids = h + t
            # entry p maps token ids to Logprob objects; the actual token is always present
            values = [o.prompt_logprobs[p][ids[p]].logprob for p in range(len(h), len(ids))]
            tokens = np.asarray(values, dtype=np.float64).reshape(-1, 1)
            out.append(
                SequenceScore(
                    logprob=tokens.sum(0),
                    n_tokens=len(t),
                    token_logprobs=tokens.astype(np.float32) if per_token else None,
                )
            )
        self.stats.add_score(len(out), sum(s.n_tokens for s in out), time.perf_counter() - start)
        return out
