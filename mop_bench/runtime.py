"""What the machine contributes to a run's output, resolved once before the run starts.

`dtype: auto` used to pick bf16 or fp32 from a timed matmul, so a busy machine could
flip it between two runs of one fingerprint (issue 10). It is now a function of the
hardware only, and the resolved dtype and the CPU's kernel family (AVX2, AVX512, ...;
float kernels round differently on each) enter the fingerprint; the dtype also enters
the comparable key, since it changes the model itself. The thread count is recorded, and
hashed only where it was seen to change outputs: on an AVX512 CPU in bf16, generations,
scores and embeddings were measured bit-identical with 1 and 2 threads
(tests/test_reproducible.py; the gate fit runs single-threaded), but on an AVX2 CPU in
fp32 the same smoke run generated other texts with 2 threads than with 1 (2026-12-07),
so there, and on any CPU kind not measured, the thread count enters the fingerprint. The device
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


#: (cpu_capability, lm_dtype) where a run was measured byte-identical with 1 and 2
#: threads (tests/test_reproducible.py): there the thread count stays out of the
#: fingerprint, as it always did.
THREAD_INVARIANT = {("AVX512", "bfloat16")}


def fingerprinted(runtime: dict[str, Any]) -> dict[str, Any]:
    """The part of `runtime_identity` that decides outputs (enters the fingerprint): the
    device only off the CPU, so CPU fingerprints are those of before `--device`; the
    thread count where an in-process LM runs on a CPU kind not in THREAD_INVARIANT."""
    out = {k: runtime[k] for k in ("lm_dtype", "cpu_capability")}
    if runtime.get("device", "cpu") != "cpu":
        out["device"] = runtime["device"]
    elif runtime["lm_dtype"] is not None and not thread_invariant(runtime):
        out["threads"] = runtime["threads"]
    return out


def thread_invariant(runtime: dict[str, Any]) -> bool:
    """Whether runs on this kind of CPU were measured not to depend on the thread count."""
    return (runtime.get("cpu_capability"), runtime.get("lm_dtype")) in THREAD_INVARIANT
