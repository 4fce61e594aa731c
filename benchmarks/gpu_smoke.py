"""A smoke MoP run on one device with tiny models built in code (no weights travel):
a 2-layer Llama with SmolLM2's tokenizer as the LM and a 2-layer BERT (same tokenizer,
mean pooling) as the sentence encoder, on a toy two-label CSV written here.

    python benchmarks/gpu_smoke.py --device cuda

Runs `mop-bench run` as a user would (`--device` given) and prints the run's recorded
device, fingerprint, metrics and stage times as `name: value` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
LABEL_WORDS = {
    "neg": ["rain", "storm", "cold", "grey", "wet", "dark", "slow", "rude", "noisy", "bland"],
    "pos": ["sun", "bright", "warm", "happy", "clear", "blue", "fast", "kind", "quiet", "tasty"],
}


def tiny_models(assets: Path, work: Path) -> tuple[Path, Path]:
    """Save a random 2-layer Llama and a random 2-layer BERT sentence encoder to `work`."""
    from gpu_throughput import seeded_weights
    from transformers import AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(assets)
    lm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        )
    )  # fmt: skip
    lm_dir = work / "tiny-lm"
    seeded_weights(lm, seed=0).save_pretrained(lm_dir)
    tokenizer.save_pretrained(lm_dir)
    encoder = BertModel(
        BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
            num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=512,
            pad_token_id=tokenizer.pad_token_id,
        )
    )  # fmt: skip
    enc_dir = work / "tiny-encoder"
    seeded_weights(encoder, seed=1).save_pretrained(enc_dir)
    tokenizer.save_pretrained(enc_dir)
    return lm_dir, enc_dir


def toy_csv(path: Path, n: int = 240) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    rows = ["text,label"]
    for i in range(n):
        label = ("neg", "pos")[i % 2]
        words = rng.choice(LABEL_WORDS[label], size=int(rng.integers(6, 14)))
        rows.append(f"{' '.join(words)} w{rng.integers(50)},{label}")
    path.write_text("\n".join(rows) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--assets", type=Path, default=HERE / "gpu_assets" / "model")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mop-gpu-smoke-"))
    lm_dir, enc_dir = tiny_models(args.assets, work)
    data = toy_csv(work / "toy.csv")
    cmd = [
        sys.executable, "-m", "mop_bench.cli", "run", "--task", "toy", "--sim", "mop",
        "--preset", "smoke", "--data", str(data), "--text-column", "text",
        "--label-column", "label", "--device", args.device, "--n", "32",
        "--set", f"lm.model={lm_dir}", "--set", f"encoder.model={enc_dir}",
        "--set", "budget.chunk_size=16", "--set", "pool=60", "--set", "golden=80",
        "--set", "personas=2", "--set", "fit.n_train=8", "--set", "fit.epochs=1",
        "--set", "metrics.mauve_seeds=25", "--out", str(work / "results"), "--no-progress",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env.setdefault("MOP_BENCH_CACHE", str(work / "cache"))
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, cwd=work)
    seconds = time.perf_counter() - t0
    (run_dir,) = (work / "results" / "toy").glob("mop-*")
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"smoke_run_dir: {run_dir}")
    print(f"smoke_run_seconds: {seconds:.1f}")
    print(f"smoke_runtime: {json.dumps(config['runtime'], sort_keys=True)}")
    print(f"smoke_fingerprint: {config['fingerprint']}")
    for name in ("fid", "mauve", "kl_cosine", "format"):
        value = metrics.get(name, {})
        value = value.get("value") if isinstance(value, dict) else value
        print(f"smoke_{name}: {value}")
    print(f"smoke_generations: {sum(1 for _ in (run_dir / 'generations.jsonl').open())}")


if __name__ == "__main__":
    main()
