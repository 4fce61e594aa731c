"""Generation and scoring throughput of a random-weight SmolLM2-135M (exact architecture,
real tokenizer) through mop-bench's in-process backend on one device.

Throughput does not depend on the weights, so the model is built from the config in
`benchmarks/gpu_assets/model` (`gpu_prepare.py`) with seeded random weights. Prompts are
completion-style, about as long as the default MoP prompt (3 exemplars, ~350 tokens);
generation runs to `--new-tokens` for every row (no early stop), scoring scores a
continuation of ~`--continuation` tokens per prompt.

    python benchmarks/gpu_throughput.py --device cuda
    python benchmarks/gpu_throughput.py --device cpu --prompts 16

Prints `name: value` lines last.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

FILLER = (
    "the food was great and the staff were friendly but the wait was long we ordered "
    "pasta and a salad the room was loud prices are fair I would come back again for "
    "brunch service was slow parking is easy the dessert menu is small coffee was cold"
)


def seeded_weights(model, seed: int = 0):
    """Every weight drawn from one seeded generator (N(0, 0.02); norms 1, biases 0)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or "LayerNorm.weight" in name:
                param.fill_(1.0)
            elif name.endswith("bias"):
                param.zero_()
            else:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.02)
    return model


def random_model(folder: Path, device: str, dtype: str, seed: int = 0):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    model = seeded_weights(model.to_empty(device="cpu"), seed)
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)
    return model.to(device=device, dtype=getattr(torch, dtype)).eval()


def texts(n: int, words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = FILLER.split(" ")
    return [" ".join(rng.choice(vocab, size=words)) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--assets", type=Path, default=HERE / "gpu_assets" / "model")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-words", type=int, default=300, help="~350 tokens")
    ap.add_argument("--continuation", type=int, default=100, help="words scored per pair")
    ap.add_argument("--batch-size", type=int, default=None)
    args = ap.parse_args()

    import torch
    from transformers import AutoTokenizer

    from mop_bench.devices import batch_scale, resolve_device
    from mop_bench.lm.base import RawPrompt
    from mop_bench.lm.hf import TransformersLM
    from mop_bench.lm.loading import choose_dtype

    device = resolve_device(args.device)
    dtype = choose_dtype("auto", device)
    t0 = time.perf_counter()
    model = random_model(args.assets, device, dtype)
    tokenizer = AutoTokenizer.from_pretrained(args.assets)
    scale = batch_scale(device)
    lm = TransformersLM(
        model, tokenizer, name=f"random SmolLM2-135M {dtype}",
        batch_size=args.batch_size or 32 * scale, max_batch_tokens=8192 * scale, device=device,
    )  # fmt: skip
    build_s = time.perf_counter() - t0
    prompts = [
        RawPrompt(f"Review {i} (4 out of 5 stars):\n{body}\n\nReview (4 out of 5 stars):\n")
        for i, body in enumerate(texts(args.prompts, args.prompt_words, seed=1))
    ]
    prompt_tokens = sum(len(lm.prompt_ids(p)) for p in prompts)
    n = len(prompts)
    lm.generate(prompts[:2], temperatures=[1.0] * 2, seeds=[0, 1], max_new_tokens=2)  # warm-up
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    out = lm.generate(
        prompts, temperatures=[1.0] * n, seeds=list(range(n)),
        max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, top_p=0.95,
    )  # fmt: skip
    sync()
    gen_s = time.perf_counter() - t0
    new_tokens = sum(c.n_tokens for c in out)
    continuations = texts(n, args.continuation, seed=2)
    t0 = time.perf_counter()
    scores = lm.score(prompts, continuations, temperatures=[0.6, 0.8, 1.0])
    sync()
    score_s = time.perf_counter() - t0
    scored = sum(s.n_tokens for s in scores)
    print(
        f"device: {device} ({torch.cuda.get_device_name() if device.startswith('cuda') else 'cpu'})"
    )
    print(f"model_build_seconds: {build_s:.1f}")
    print(f"dtype: {dtype}")
    print(f"torch: {torch.__version__}")
    print(f"prompts: {n}, prompt_tokens_mean: {prompt_tokens / n:.0f}")
    print(f"generate_seconds: {gen_s:.2f}")
    print(f"generate_new_tokens_per_s: {new_tokens / gen_s:.1f}")
    print(f"score_seconds: {score_s:.2f}")
    print(f"score_continuation_tokens_per_s: {scored / score_s:.1f}")
    print(f"score_all_tokens_per_s: {(scored + prompt_tokens) / score_s:.1f}")


if __name__ == "__main__":
    main()
