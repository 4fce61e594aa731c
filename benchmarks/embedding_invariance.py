"""How much do sentence embeddings depend on which texts share their batch, and what
does each cure cost? (issue 12, item 3)

sentence-transformers pads a batch to its longest text, and the batch's shape changes
the last bits of each vector, so a warm cache (texts encoded across earlier calls) and
a fresh one (all at once) gave FIDs differing in the 9th digit. Measured side by side:

- batched: the usual batches of 64 (the old behaviour), and the same texts encoded in
  another composition (what a warm cache sees);
- same-length groups: texts batched only with texts of equal token length (no padding);
  `mop_bench.embed.Encoder` does this (texts under 12 tokens alone), timed cold on a
  run's worth of texts (1,000 golden + 500 pool reviews + 300 40-word texts);
- alone: every text encoded on its own (what `mop_bench.embed` did before), through
  `model.encode([text])` and through a bare forward pass (less per-call overhead);
- rounding: how often rounding vectors to 4-6 decimals still differs between the two
  batched compositions (a drift straddling a rounding boundary).

Texts: half real Yelp reviews (long; the golden and pool sets), half their first 40
words (the length of synthetic texts). Prints `name: value` lines last.
Usage: python benchmarks/embedding_invariance.py [N]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np


def texts(n: int) -> list[str]:
    import pandas as pd

    root = os.environ.get("MOP_BENCH_DATA_DIR", "/work/shared/data")
    frame = pd.read_parquet(f"{root}/yelp/test.parquet", columns=["text"])
    rows = frame["text"].head(2 * n).tolist()
    long = [t[:2000] for t in rows[: n // 2]]
    short = [" ".join(t.split()[:40]) for t in rows[n // 2 : n]]
    return [t for pair in zip(long, short, strict=True) for t in pair]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    from mop_bench.embed import resolve_encoder_path
    from mop_bench.metrics.fid import fid

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    model = SentenceTransformer(resolve_encoder_path("all-MiniLM-L6-v2"), device="cpu")
    data = texts(2 * n)
    a, b = data[:n], data[n:]  # each half long reviews, half short texts

    def batched(items: list[str]) -> np.ndarray:
        return model.encode(items, batch_size=64, normalize_embeddings=True)

    def alone(items: list[str]) -> np.ndarray:
        return np.stack(
            [model.encode([t], batch_size=1, normalize_embeddings=True)[0] for t in items]
        )

    def forward(items: list[str]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for t in items:
                vec = model.forward(model.tokenize([t]))["sentence_embedding"]
                out.append(torch.nn.functional.normalize(vec, dim=1)[0].numpy())
        return np.stack(out)

    def grouped(items: list[str]) -> np.ndarray:
        lengths = model.tokenize(items)["attention_mask"].sum(1).tolist()
        out = np.zeros((len(items), model.get_sentence_embedding_dimension()), np.float32)
        for length in set(lengths):
            rows = [i for i, m in enumerate(lengths) if m == length]
            out[rows] = batched([items[i] for i in rows])
        return out

    def mixed(fn) -> np.ndarray:  # `a` encoded in two calls, each mixed with other texts
        h = n // 2
        return np.concatenate([fn(a[:h] + b[:h])[:h], fn(b[h:] + a[h:])[n - h :]])

    batched(a[:8])  # warm-up
    times: dict[str, float] = {}
    results: dict[str, np.ndarray] = {}
    for _ in range(2):  # interleaved rounds, best of each: a busy machine inflates less
        for name, fn in (("batched", batched), ("alone", alone), ("forward", forward)):
            t0 = time.perf_counter()
            results[name] = fn(a)
            times[name] = min(times.get(name, float("inf")), time.perf_counter() - t0)
    ref = batched(b)
    warm = mixed(batched)
    fresh = results["batched"]
    print(
        f"texts: {n} (half Yelp reviews <= 2000 chars, half 40-word texts), torch threads {torch.get_num_threads()}"
    )
    print(f"batched_seconds: {times['batched']:.2f}")
    print(f"alone_seconds: {times['alone']:.2f}")
    print(f"forward_seconds: {times['forward']:.2f}")
    print(f"alone_over_batched: {times['alone'] / times['batched']:.2f}x")
    print(f"forward_over_batched: {times['forward'] / times['batched']:.2f}x")
    print(f"batched_drift_max_abs: {float(np.abs(fresh - warm).max()):.3g}")
    print(f"grouped_drift_max_abs: {float(np.abs(grouped(a) - mixed(grouped)).max()):.3g}")
    print(f"grouped_vs_alone_max_abs: {float(np.abs(grouped(a) - results['alone']).max()):.3g}")
    print(f"alone_drift_max_abs: {float(np.abs(results['alone'] - mixed(alone)).max()):.3g}")
    print(
        f"forward_vs_alone_max_abs: {float(np.abs(results['forward'] - results['alone']).max()):.3g}"
    )
    print(f"fid_fresh: {fid(fresh, ref).value!r}")
    print(f"fid_warm: {fid(warm, ref).value!r}")
    product_seconds, product_alone = product_path(model)
    print(f"encoder_1800_texts_cold_seconds: {product_seconds:.1f}")
    print(f"encoder_vs_alone_identical: {product_alone}")
    for d in (4, 5, 6):
        share = float((np.round(fresh, d) != np.round(warm, d)).mean())
        print(f"rounded_{d}_decimals_values_differing: {share:.2e}")


def product_path(model) -> tuple[float, bool]:
    """Seconds for `Encoder.encode` on 1,800 texts with an empty cache, and whether its
    vectors equal those of each text encoded alone (checked on every 9th text)."""
    import tempfile
    from pathlib import Path

    from mop_bench.embed import Encoder

    data = texts(3000)  # 1,500 long reviews interleaved with 1,500 40-word texts
    run_like = data[0::2][:1500] + data[1::2][:300]  # long reviews, then 40-word texts
    encoder = Encoder(cache=Path(tempfile.mkdtemp(prefix="mop-emb-")), progress=False)
    encoder._model = model
    t0 = time.perf_counter()
    vecs = encoder.encode(run_like)
    seconds = time.perf_counter() - t0
    probe = run_like[::9]
    alone = np.stack([model.encode([t], normalize_embeddings=True)[0] for t in probe])
    return seconds, bool(np.array_equal(alone, vecs[::9]))


if __name__ == "__main__":
    main()
