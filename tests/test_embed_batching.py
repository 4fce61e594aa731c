"""Embeddings batched by token length are the vectors of texts encoded alone, bit for bit
(real all-MiniLM-L6-v2: the property belongs to the machine's matrix kernels)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mop_bench.embed import Encoder

WORDS = [
    "the",
    "food",
    "was",
    "great",
    "and",
    "the",
    "staff",
    "were",
    "kind",
    "but",
    "the",
    "wait",
    "was",
    "long",
]


def _texts() -> list[str]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(60):
        n = int(rng.integers(1, 30)) if i % 3 else 14  # every third text has 14 words
        out.append(" ".join(rng.choice(WORDS, size=n)) + f" ({i % 5})")
    out.append(" ".join(["long"] * 300))  # truncated by the encoder: its own length
    return out


@pytest.fixture(scope="module")
def alone(tmp_path_factory) -> np.ndarray:
    enc = Encoder(cache=tmp_path_factory.mktemp("alone"), progress=False)
    return np.stack([enc.encode([t])[0] for t in _texts()])


def test_length_batches_equal_vectors_encoded_alone(tmp_path, alone) -> None:
    texts = _texts()
    enc = Encoder(cache=tmp_path / "a", progress=False, batch_size=8)
    batches = [rows for _, rows in enc._length_batches(texts)]
    assert max(len(b) for b in batches) == 8  # batching really happens
    assert any(len(b) == 1 for b in batches)  # short texts (< MIN_BATCHED_TOKENS) alone
    assert sorted(i for b in batches for i in b) == list(range(len(texts)))
    together = enc.encode(texts)
    assert enc._grouping_ok is True
    assert np.array_equal(together, alone)
    # another composition and order, with other texts in the call, on a fresh cache
    other = Encoder(cache=tmp_path / "b", progress=False, batch_size=64)
    extra = ["an unrelated text of some length", "short"]
    order = list(reversed(range(len(texts))))
    mixed = other.encode(extra + [texts[i] for i in order])
    assert np.array_equal(mixed[len(extra) :], alone[order])


def test_falls_back_to_alone_when_batching_changes_bits(tmp_path, alone, caplog) -> None:
    texts = _texts()
    enc = Encoder(cache=tmp_path, progress=False)
    real = enc._encode_batch

    def drifting(batch: list[str], length: int) -> np.ndarray:
        out = real(batch, length)
        return out + np.float32(1e-7) if len(batch) > 1 else out

    enc._encode_batch = drifting  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="mop_bench.embed"):
        vecs = enc.encode(texts)
    assert enc._grouping_ok is False
    assert "encoding each text alone" in caplog.text
    assert np.array_equal(vecs, alone)


def test_short_texts_give_the_same_bits_on_one_or_two_threads(tmp_path) -> None:
    import torch

    short = [" ".join(WORDS[: n % 9 + 2]) + f" {n}" for n in range(12)]  # 5-12 tokens
    threads = torch.get_num_threads()
    vecs = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            enc = Encoder(cache=tmp_path / str(count), progress=False)
            vecs.append(enc.encode(short))
            assert torch.get_num_threads() == count  # restored after the one-thread block
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(vecs[0], vecs[1])
