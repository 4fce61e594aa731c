"""Embeddings batched by token length are the vectors of texts encoded alone, bit for bit
(real all-MiniLM-L6-v2: the property belongs to the machine's matrix kernels)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mop_bench.embed import MIN_BATCHED_TOKENS, Encoder

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


def test_length_batches_equal_vectors_encoded_alone(tmp_path, alone, caplog) -> None:
    texts = _texts()
    enc = Encoder(cache=tmp_path / "a", progress=False, batch_size=8)
    batches = [rows for _, rows in enc._length_batches(texts)]
    assert max(len(b) for b in batches) == 8  # batching is attempted
    assert any(len(b) == 1 for b in batches)  # short texts (< MIN_BATCHED_TOKENS) alone
    assert sorted(i for b in batches for i in b) == list(range(len(texts)))
    with caplog.at_level(logging.WARNING, logger="mop_bench.embed"):
        together = enc.encode(texts)
    # Batching at speed is the kernels' gift (on one AVX512 machine equal-length batches
    # changed bits, 2026-12-07); the vectors of texts encoded alone are the promise.
    assert enc._grouping_ok is not None
    assert ("encoding each text alone" in caplog.text) is (not enc._grouping_ok)
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


def test_each_thread_count_reads_only_its_own_vectors(tmp_path, monkeypatch) -> None:
    """On some CPUs 1 and 2 threads give other bits (2026-12-07): the encoder computes on
    the run's thread count and keeps a cache folder per count (2 in the old folder), so
    a warm cache always returns what this count computes fresh."""
    import torch

    short = [" ".join(WORDS[: n % 9 + 2]) + f" {n}" for n in range(12)]  # 5-12 tokens
    threads = torch.get_num_threads()
    encoders, vecs = [], []
    try:
        for count in (1, 2, 1):
            monkeypatch.setenv("MOP_BENCH_THREADS", str(count))
            torch.set_num_threads(3)  # set elsewhere since: the encoder does not follow it
            enc = Encoder(cache=tmp_path, progress=False)
            calls: list[list[int]] = []  # [tokens, torch threads in the forward pass]
            real_batch, real_encode = enc._encode_batch, enc.model.encode

            def batch_spy(batch, length, calls=calls, real=real_batch):
                calls.append([length, 0])
                return real(batch, length)

            def encode_spy(*args, calls=calls, real=real_encode, **kwargs):
                calls[-1][1] = torch.get_num_threads()
                return real(*args, **kwargs)

            enc._encode_batch = batch_spy  # type: ignore[method-assign]
            enc.model.encode = encode_spy  # type: ignore[method-assign]
            vecs.append(enc.encode(short))
            assert enc.threads == count
            if enc.cache_misses:  # it computed: short texts on 1 thread, the rest on `count`
                assert calls and all(
                    t == (1 if n < MIN_BATCHED_TOKENS else count) for n, t in calls
                )
                assert any(n >= MIN_BATCHED_TOKENS for n, _ in calls)
            assert torch.get_num_threads() == 3  # the caller's count, restored
            encoders.append(enc)
    finally:
        torch.set_num_threads(threads)
    one, two, one_again = encoders
    assert one.cache_dir != two.cache_dir and one.cache_dir == one_again.cache_dir
    assert one_again.cache_hits == len(short) and one_again.cache_misses == 0
    assert np.array_equal(vecs[0], vecs[2])
    # the folder for 2 threads is the one every earlier cache used
    from mop_bench.embed import _cache_namespace

    assert _cache_namespace(two.identity, 2) == two.identity
    assert _cache_namespace(one.identity, 1) != one.identity
