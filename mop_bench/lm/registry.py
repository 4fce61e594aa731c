"""LM backends by name, and `load_lm(spec)`, the one way the runner gets a model."""

from __future__ import annotations

from typing import Any

from mop_bench.lm.base import LanguageModel
from mop_bench.registry import Registry
from mop_bench.spec import LMSpec

#: name -> factory(spec, *, batch_size, progress, device) -> LanguageModel. Entries are
#: "module:attr" strings so nothing heavy is imported until a backend is built.
LM_BACKENDS: Registry[Any] = Registry("LM backend")
LM_BACKENDS.register("transformers", "mop_bench.lm.registry:_transformers")
LM_BACKENDS.register("openai", "mop_bench.lm.registry:_openai")
LM_BACKENDS.register("vllm", "mop_bench.lm.registry:_vllm")


def _transformers(
    spec: LMSpec, *, batch_size: int, progress: bool, device: str = "cpu"
) -> LanguageModel:
    from mop_bench.devices import batch_scale
    from mop_bench.lm.hf import TransformersLM

    scale = batch_scale(device)
    return TransformersLM.from_pretrained(
        spec.model,
        dtype=spec.dtype,
        batch_size=batch_size * scale,
        max_batch_tokens=8192 * scale,
        progress=progress,
        device=device,
    )


def _openai(spec: LMSpec, *, batch_size: int, progress: bool, device: str = "cpu") -> LanguageModel:
    import os

    from mop_bench.lm.openai_compat import OpenAICompatLM

    if not spec.base_url:
        raise ValueError(
            "the 'openai' LM backend needs a server address: set lm.base_url "
            "(e.g. http://127.0.0.1:8000/v1)"
        )
    return OpenAICompatLM(
        spec.base_url,
        spec.model,
        # Keys only from the environment (never from the spec, so never recorded).
        api_key=os.environ.get(os.environ.get("MOP_BENCH_API_KEY_ENV") or "OPENAI_API_KEY"),
        concurrency=batch_size,
        progress=progress,
    )


def _vllm(spec: LMSpec, *, batch_size: int, progress: bool, device: str = "cpu") -> LanguageModel:
    from mop_bench.lm.loading import PACKAGED_GGUF
    from mop_bench.lm.vllm_backend import VLLMLM

    # vLLM loads Hub ids and folders; our offline alias maps to its Hub original.
    model = "HuggingFaceTB/SmolLM2-135M-Instruct" if spec.model in PACKAGED_GGUF else spec.model
    return VLLMLM(model, dtype=spec.dtype, max_num_seqs=max(batch_size, 1))


def load_lm(
    spec: LMSpec, *, batch_size: int = 32, progress: bool = True, device: str = "cpu"
) -> LanguageModel:
    """Build the language model a run spec names (`spec.backend` picks the factory);
    `device` (resolved, `mop_bench.devices`) is where an in-process model runs (servers
    and vLLM place their models themselves)."""
    factory = LM_BACKENDS.get(spec.backend)
    # only off the CPU, so factories registered before `device` existed keep working
    extra = {"device": device} if device != "cpu" else {}
    return factory(spec, batch_size=batch_size, progress=progress, **extra)
