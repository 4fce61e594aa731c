"""Generation speed: mop-bench's sampler against a naive `model.generate` loop.

Both run in this process, on the same prompts, the same model weights and the same
number of new tokens per prompt (`min_new_tokens` = `max_new_tokens`, so neither
stops early). The naive baseline is what one writes first: fp32, one prompt at a
time, `model.generate(do_sample=True)`; it is timed on a subset of the prompts and
reported per token.

    python benchmarks/generation.py [--prompts 64] [--new-tokens 64] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import figure, load_average, mop_prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: all cores)"
    )
    parser.add_argument("--naive-prompts", type=int, default=4)
    parser.add_argument(
        "--prompt-style",
        choices=("persona", "exemplar"),
        default="persona",
        help="persona-only prompts (~60 tokens) or MoP prompts with a real exemplar (~180)",
    )
    args = parser.parse_args()

    import torch

    from mop_bench.lm.hf import TransformersLM
    from mop_bench.lm.loading import load_pretrained

    print(f"load average before: {load_average()}")
    prompts, _ = mop_prompts(args.prompts, seed=0, exemplar=args.prompt_style == "exemplar")
    n_new = args.new_tokens
    lm = TransformersLM.from_pretrained(
        args.model, dtype=args.dtype, batch_size=args.batch_size, num_threads=args.threads
    )
    lengths = [len(lm.prompt_ids(p)) for p in prompts]
    print(f"model: {lm.name}; {len(prompts)} prompts of {min(lengths)}-{max(lengths)} tokens")

    # warm-up (oneDNN kernel selection, allocator) on a small call, then the timed run
    lm.generate(prompts[:2], temperatures=[1.0] * 2, seeds=[0, 1], max_new_tokens=2)
    start = time.perf_counter()
    out = lm.generate(
        prompts,
        temperatures=[1.0] * len(prompts),
        seeds=list(range(len(prompts))),
        max_new_tokens=n_new,
        min_new_tokens=n_new,
    )
    ours_s = time.perf_counter() - start
    ours_tokens = sum(c.n_tokens for c in out)
    ours_rate = ours_tokens / ours_s
    print(f"ours: {ours_tokens} new tokens in {ours_s:.1f} s, batch {args.batch_size}, {lm.dtype}")

    naive = load_pretrained(args.model, dtype="float32")
    model, tok = naive.model, naive.tokenizer
    subset = prompts[: args.naive_prompts]
    naive_tokens, naive_s = 0, 0.0
    with torch.inference_mode():
        for k, prompt in enumerate(subset):
            ids = tok.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            torch.manual_seed(k)  # what the naive loop does; ours never touches global RNG
            start = time.perf_counter()
            gen = model.generate(
                **ids,
                do_sample=True,
                max_new_tokens=n_new,
                min_new_tokens=n_new,
                pad_token_id=tok.pad_token_id,
            )
            naive_s += time.perf_counter() - start
            naive_tokens += gen.shape[1] - ids["input_ids"].shape[1]
    naive_rate = naive_tokens / naive_s
    print(f"naive: {naive_tokens} new tokens in {naive_s:.1f} s (fp32, one prompt at a time)")
    print(f"load average after: {load_average()}")
    figure("ours_new_tokens_per_s", ours_rate)
    figure("naive_new_tokens_per_s", naive_rate)
    figure("speedup", ours_rate / naive_rate)
    figure("dtype", lm.dtype)
    figure("threads", torch.get_num_threads())
    figure("batch_size", args.batch_size)
    figure("prompt_style", args.prompt_style)


if __name__ == "__main__":
    main()
