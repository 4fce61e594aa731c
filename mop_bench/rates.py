"""The rates a cost estimate assumes (mop_bench/estimate.py): this machine's, from the
timing.json of finished runs of the same LM and backend on the same kind of machine in
the results folder, else those of a reference run recorded in benchmarks/README.md.

Two reference runs were measured, on the two kinds of 2-core CPU this project runs on:
one that computes bf16 in hardware (AVX512-BF16, where `dtype: auto` picks bf16) and an
AVX2 one (fp32; bf16 there is emulated, ~80x slower). The two differ 3-5x, so the
reference is the one of this machine's kind; on any other machine (other kernel family,
dtype or thread count) the AVX2 run's rates are scaled by a short timed matrix product
in the run's dtype, never above them (the estimate errs high rather than low).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

#: Minimum recorded tokens before a machine's own rate replaces the reference rate.
MIN_RECORDED_TOKENS = 2000
#: What makes two runs' rates comparable: the same device, LM dtype, CPU kernel family
#: and thread count (`mop_bench.runtime.runtime_identity`).
MACHINE_KEYS = ("device", "lm_dtype", "cpu_capability", "threads")


@dataclass(frozen=True)
class Rates:
    generate: float
    """New tokens per second while generating, prompt processing included."""
    score: float
    """Scored (continuation) tokens per second, prompt processing included."""
    encode: float
    """Texts per second through the sentence encoder."""
    source: str

    def describe(self) -> str:
        return (
            f"{_rate(self.generate)} new tokens/s generating, {_rate(self.score)} scored "
            f"tokens/s, {_rate(self.encode)} texts/s encoding ({self.source})"
        )


def _rate(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


#: The cold default yelp MoP run of 2026-12-06 on the AVX512-BF16 machine
#: (benchmarks/README.md; 479 s; 16,220 new tokens in 296 s, 60,136 scored in 142 s).
REFERENCE_RATES = Rates(
    generate=55.0,
    score=420.0,
    encode=40.0,
    source="the reference run in benchmarks/README.md: 2-core AVX512-BF16 CPU, SmolLM2-135M bf16",
)
#: The same run on the AVX2 machine, 2026-12-07 (benchmarks/README.md; 1,786 s;
#: 16,818 new tokens in 975 s, 60,018 scored tokens in 668 s, 1,300 texts in ~30 s).
AVX2_REFERENCE_RATES = Rates(
    generate=17.0,
    score=90.0,
    encode=40.0,
    source="the reference run in benchmarks/README.md: 2-core AVX2 CPU, SmolLM2-135M fp32",
)
#: (cpu_capability, lm_dtype, threads) -> the reference measured on that kind of machine.
REFERENCES = {
    ("AVX512", "bfloat16", 2): REFERENCE_RATES,
    ("AVX2", "float32", 2): AVX2_REFERENCE_RATES,
}
#: `matmul_gflops(dtype, PROBE_SIZE)` on the AVX2 reference machine, float32 (68-69).
PROBE_SIZE = 512
AVX2_PROBE_GFLOPS = 68.0


def matmul_gflops(dtype: str, size: int = PROBE_SIZE, repeats: int = 3) -> float:
    """GFLOP/s of a size x size matrix product in `dtype` on the CPU (best of
    `repeats`, after one untimed product). Random operands from a fixed seed."""
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(getattr(torch, dtype))
    b = torch.randn(size, size, generator=gen).to(getattr(torch, dtype))
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def reference_rates(runtime: dict[str, Any] | None) -> Rates:
    """The reference rates for a run on this machine (`runtime_identity`): the measured
    run of this machine's kind, else the AVX2 run scaled by a timed matrix product in
    the run's dtype (at most 1x: a faster machine is estimated at the AVX2 rates). Off
    the CPU, or without an in-process LM, the first reference (errs high on a GPU)."""
    if not runtime or runtime.get("device", "cpu") != "cpu" or not runtime.get("lm_dtype"):
        return REFERENCE_RATES
    kind = (runtime.get("cpu_capability"), runtime["lm_dtype"], runtime.get("threads"))
    if kind in REFERENCES:
        return REFERENCES[kind]
    speed = matmul_gflops(runtime["lm_dtype"])
    factor = min(1.0, speed / AVX2_PROBE_GFLOPS)
    base = AVX2_REFERENCE_RATES
    return replace(
        base,
        generate=base.generate * factor,
        score=base.score * factor,
        source=f"{base.source}, x{factor:.2g} for this machine's {runtime['lm_dtype']} matrix "
        f"products ({speed:.1f} GFLOP/s against {AVX2_PROBE_GFLOPS:.0f})",
    )


def same_machine(recorded: Any, runtime: dict[str, Any] | None) -> bool:
    """Whether a run's recorded `runtime` (config.json) was measured on this kind of
    machine; any run counts when `runtime` is None."""
    if runtime is None:
        return True
    if not isinstance(recorded, dict):
        return False
    return all(recorded.get(k) == runtime.get(k) for k in MACHINE_KEYS)


def recorded_rates(
    results_dir: Path, lm: Any, *, runtime: dict[str, Any] | None = None, limit: int = 100
) -> Rates:
    """Rates from the timing.json of finished runs of `lm` (model and backend) under
    `results_dir` made on this kind of machine (`runtime`, when given), newest first (at
    most `limit` runs read); each rate falls back to `reference_rates(runtime)` where
    fewer than MIN_RECORDED_TOKENS were recorded."""
    gen = [0.0, 0.0]
    score = [0.0, 0.0]
    used = 0
    try:
        files = list(Path(results_dir).glob("*/*/timing.json"))
        files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        files = []
    for path in files[:limit]:
        try:
            with open(path.parent / "config.json", encoding="utf-8") as fh:
                config = json.load(fh)
            run_lm = config["spec"]["lm"]
            with open(path, encoding="utf-8") as fh:
                totals = json.load(fh).get("totals") or {}
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if run_lm.get("model") != lm.model or run_lm.get("backend") != lm.backend:
            continue
        if not same_machine(config.get("runtime"), runtime):
            continue
        g = (totals.get("lm_generate_tokens", 0), totals.get("lm_generate_seconds", 0))
        s = (totals.get("lm_score_tokens", 0), totals.get("lm_score_seconds", 0))
        if g[1] > 0 or s[1] > 0:
            used += 1
        gen = [gen[0] + g[0], gen[1] + g[1]]
        score = [score[0] + s[0], score[1] + s[1]]
    own_gen = gen[0] >= MIN_RECORDED_TOKENS and gen[1] > 0
    own_score = score[0] >= MIN_RECORDED_TOKENS and score[1] > 0
    if own_gen and own_score:  # no reference needed (nor its probe)
        return Rates(
            generate=gen[0] / gen[1],
            score=score[0] / score[1],
            encode=REFERENCE_RATES.encode,
            source=f"recorded by {used} finished run(s) of {lm.model} under {results_dir}",
        )
    reference = reference_rates(runtime)
    if not (own_gen or own_score):
        return reference
    return Rates(
        generate=gen[0] / gen[1] if own_gen else reference.generate,
        score=score[0] / score[1] if own_score else reference.score,
        encode=reference.encode,
        source=f"recorded by {used} finished run(s) of {lm.model} under {results_dir}; "
        f"the rest from {reference.source}",
    )
