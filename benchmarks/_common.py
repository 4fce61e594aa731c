"""Shared pieces of the speed benchmarks: realistic MoP prompts and a matmul yardstick."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: The published MoP prompt structure (REFERENCE.md section 2), filled from Yelp rows.
PROMPT = (
    "<Instruction> You embody the persona in the description to complete the task.\n"
    "<Persona> {persona}\n"
    "<Example> You have written a {sentiment} review of a business in the category "
    "{example_category}: {example}\n"
    "Please write a {target_sentiment} review of a business in the category {category}."
)
PERSONAS = [
    "You are a budget-conscious parent who reviews family restaurants.",
    "You are a frequent business traveller who cares about quiet rooms and fast wifi.",
    "You are a food enthusiast who writes long, detailed reviews.",
    "You are a student who values cheap eats and late opening hours.",
    "You are a retiree who notices the service more than the food.",
    "You are a nightlife regular who judges bars by their cocktails.",
    "You are a pet owner who always checks whether dogs are welcome.",
    "You are a busy nurse who wants quick, friendly service.",
]
SENTIMENT = {0: "negative", 1: "positive"}


def _yelp(split: str) -> tuple[list[str], list[int], list[str]] | None:
    root = (
        Path(os.environ.get("MOP_BENCH_DATA_DIR", "/work/shared/data"))
        / "yelp"
        / f"{split}.parquet"
    )
    if not root.is_file():
        return None
    import pandas as pd

    frame = pd.read_parquet(root, columns=["text", "label", "category"])
    return frame["text"].tolist(), frame["label"].astype(int).tolist(), frame["category"].tolist()


SHORT_PROMPT = (
    "<Instruction> You embody the persona in the description to complete the task.\n"
    "<Persona> {persona}\n"
    "Please write a {target_sentiment} review of a business in the category {category}."
)


def mop_prompts(n: int, seed: int = 0, *, exemplar: bool = True) -> tuple[list[str], list[str]]:
    """`n` MoP-style prompts and `n` real reviews (continuations to score), drawn with a
    seeded generator from the Yelp mirror, or from fixed synthetic text without it.
    Without `exemplar` the prompts are persona-only (about 60 tokens instead of 200)."""
    rng = np.random.default_rng(seed)
    data = _yelp("test")
    if data is None:
        texts = [
            f"Review {i}: the staff were friendly and the food arrived quickly. " * 6
            for i in range(200)
        ]
        labels, cats = [i % 2 for i in range(200)], ["Restaurants", "Nightlife"] * 100
    else:
        texts, labels, cats = data
    prompts, targets = [], []
    for _ in range(n):
        ex, tg = rng.integers(len(texts), size=2)
        example = texts[ex][: int(rng.integers(150, 600))]
        prompts.append(
            (PROMPT if exemplar else SHORT_PROMPT).format(
                persona=PERSONAS[int(rng.integers(len(PERSONAS)))],
                sentiment=SENTIMENT[labels[ex]],
                example_category=cats[ex],
                example=example,
                target_sentiment=SENTIMENT[labels[tg]],
                category=cats[tg],
            )
        )
        targets.append(texts[tg])
    return prompts, targets


def matmul_flops(dtype_name: str, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a size x size matrix product in `dtype_name` (best of `repeats`): the
    probe the cost estimate times (`mop_bench.rates.matmul_gflops`)."""
    from mop_bench.rates import matmul_gflops

    return matmul_gflops(dtype_name, size, repeats) * 1e9


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def figure(name: str, value: float | str) -> None:
    """The `name: value` lines the scripts end with (machine-readable)."""
    print(f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}")
