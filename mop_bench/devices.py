"""Where the in-process LM and the sentence encoder run: `--device auto|cpu|cuda|mps`.

The device is resolved once per process, before any run starts, and recorded in each
run's runtime identity (`mop_bench.runtime`): kernels round differently on each device,
so a run on a GPU gets its own fingerprint, while a CPU run keeps the fingerprint it
had before the option existed. `auto` picks CUDA where torch sees a GPU, then Apple's
MPS, else the CPU.
"""

from __future__ import annotations

#: What `--device` accepts (`cuda:N` names one GPU of several).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> str:
    """ "cpu", "mps", "cuda" or "cuda:N" for `name`; ValueError naming what is missing
    when the device asked for is not there."""
    name = (name or "auto").strip().lower()
    base, _, index = name.partition(":")
    if base not in DEVICE_CHOICES or (index and (base != "cuda" or not index.isdigit())):
        raise ValueError(
            f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)} (or cuda:N)"
        )
    if base == "cpu":
        return "cpu"
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if base == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if base == "cuda":
        if not cuda:
            raise ValueError(
                f"--device {name}: torch {torch.__version__} sees no CUDA GPU (a CPU-only "
                "wheel, or no driver); use --device cpu or auto"
            )
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
        return name
    if not mps:
        raise ValueError(f"--device {name}: torch sees no Apple MPS device; use cpu or auto")
    return "mps"


def batch_scale(device: str) -> int:
    """How many times the CPU's batch sizes a device takes: a GPU wants far more rows
    per forward pass than a CPU's caches reward."""
    return 8 if device.startswith("cuda") else 4 if device == "mps" else 1
