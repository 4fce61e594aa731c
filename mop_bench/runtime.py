"""What the machine contributes to a run's output, resolved once before the run starts.

`dtype: auto` used to pick bf16 or fp32 from a timed matmul, so a busy machine could
flip it between two runs of one fingerprint (issue 10). It is now a function of the
hardware only, and the resolved dtype and the CPU's kernel family (AVX2, AVX512, ...;
float kernels round differently on each) enter the fingerprint; the dtype also enters
the comparable key, since it changes the model itself. The thread count enters the
fingerprint of every CPU run: whether it changes outputs depends on the very CPU, not
on its kernel family (1 and 2 threads gave identical bytes on one AVX512 machine, and
other generations and embeddings on an AVX2 machine and on another AVX512 machine,
2026-12-07). Two threads is written by omission and any other count hashed: the
published runs were made with 1 or 2 threads on the machine where the two gave identical
bytes, so each is what 2 threads make there, and keeps its name. The device
(`--device`, `mop_bench.devices`) is recorded always and hashed when it is not the CPU,
so CPU runs keep the fingerprints they had before the option existed.
"""

from __future__ import annotations

from typing import Any

from mop_bench.spec import RunSpec


def runtime_identity(spec: RunSpec, device: str = "cpu") -> dict[str, Any]:
    """`{"lm_dtype", "cpu_capability", "threads", "device"}` for a run on this machine
    (`device` already resolved); `lm_dtype` is None where no in-process LM computes the
    output (the `real` calibration, servers)."""
    import torch

    from mop_bench.lm.hf import default_threads
    from mop_bench.lm.loading import choose_dtype

    in_process = spec.lm.backend == "transformers" and spec.simulator.kind in ("mop", "template")
    return {
        "lm_dtype": choose_dtype(spec.lm.dtype, device) if in_process else None,
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "threads": default_threads(),
        "device": device,
    }


def comparable_lm_dtype(spec: RunSpec, runtime: dict[str, Any]) -> str | None:
    """The LM dtype a run is compared under (its comparable key). The `real` calibration
    computes nothing with the LM (it only uses its tokenizer to length-match), yet it
    is compared beside the simulators that ran the in-process LM, so it takes their
    dtype; without it every comparison left the calibration row out ("lm_dtype: null").
    Servers: None for every run."""
    if runtime["lm_dtype"] is not None or spec.lm.backend != "transformers":
        return runtime["lm_dtype"]
    from mop_bench.lm.loading import choose_dtype

    return choose_dtype(spec.lm.dtype, runtime.get("device", "cpu"))


#: The thread count written by omission in a CPU run's fingerprint: the published runs
#: (made with 1 or 2 threads where the two were byte-identical) keep their names.
UNHASHED_THREADS = 2


def fingerprinted(runtime: dict[str, Any]) -> dict[str, Any]:
    """The part of `runtime_identity` that decides outputs (enters the fingerprint): the
    device only off the CPU, so CPU fingerprints are those of before `--device`; on the
    CPU the thread count, unless it is `UNHASHED_THREADS` (one count, so distinct counts
    still give distinct fingerprints). It applies to runs without an in-process LM too:
    the sentence encoder runs on the same threads (`mop_bench.embed`)."""
    out = {k: runtime[k] for k in ("lm_dtype", "cpu_capability")}
    if runtime.get("device", "cpu") != "cpu":
        out["device"] = runtime["device"]
    elif runtime["threads"] != UNHASHED_THREADS:
        out["threads"] = runtime["threads"]
    return out
