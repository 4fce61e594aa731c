"""Tests of the LM backends: seeded sampling, multi-temperature scoring, loading, adapters."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_llama import smollm2_tokenizer, tiny_lm

from mop_bench.lm.base import LanguageModel
from mop_bench.lm.hf import TransformersLM
from mop_bench.lm.sampling import sample_tokens

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

PROMPTS = [
    "Write a short review of a pizza place.",
    "Hi",
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "A joke about cats?"}],
    "Describe a rainy day in the city in two sentences, please.",
    "Summarise the news about the stock market.",
]
CONTINUATIONS = [
    "Great crust, slow service.",
    "Hello there!",
    "Why did the cat sit on the computer? To keep an eye on the mouse.",
    "Grey skies.",
    "Stocks fell sharply on Monday after the central bank raised rates again.",
]


@pytest.fixture(scope="module")
def lm() -> TransformersLM:
    return tiny_lm(seed=0, batch_size=3)


def _gen(lm: TransformersLM, prompts: list, temps: list[float], seeds: list[int], n: int = 12):
    return lm.generate(prompts, temperatures=temps, seeds=seeds, max_new_tokens=n)


def test_implements_protocol(lm: TransformersLM) -> None:
    assert isinstance(lm, LanguageModel)


def test_generate_deterministic_per_seed(lm: TransformersLM) -> None:
    temps = [1.0] * len(PROMPTS)
    a = _gen(lm, PROMPTS, temps, [1, 2, 3, 4, 5])
    torch.manual_seed(12345)  # global RNG state must not matter
    torch.rand(10)
    b = _gen(lm, PROMPTS, temps, [1, 2, 3, 4, 5])
    assert a == b
    c = _gen(lm, PROMPTS, temps, [6, 7, 8, 9, 10])
    assert sum(x.text != y.text for x, y in zip(a, c, strict=False)) >= 4
    # the same prompt with different seeds in one call gives different samples
    same = _gen(lm, [PROMPTS[0]] * 4, [1.0] * 4, [0, 1, 2, 3])
    assert len({s.text for s in same}) == 4


def test_generate_independent_of_call_order(lm: TransformersLM) -> None:
    temps, seeds = [1.0, 0.7, 1.3, 0.0, 1.0], [11, 12, 13, 14, 15]
    a = _gen(lm, PROMPTS, temps, seeds)
    perm = [3, 0, 4, 2, 1]
    b = _gen(lm, [PROMPTS[i] for i in perm], [temps[i] for i in perm], [seeds[i] for i in perm])
    assert [a[i] for i in perm] == b


def test_max_new_tokens_and_stop_token(lm: TransformersLM) -> None:
    out = _gen(lm, PROMPTS, [0.0] * 5, [0] * 5, n=7)
    assert all(c.n_tokens == 7 for c in out)  # random weights rarely emit EOS greedily
    # Make the 4th greedy token of prompt 0 a stop token: that row must end after 3
    # tokens while the other rows carry on (unless they meet the same token).
    stop = _manual_greedy(lm, PROMPTS[0], 7)[3]
    saved = lm.stop_ids
    lm.stop_ids = saved | {stop}
    try:
        cut = _gen(lm, PROMPTS, [0.0] * 5, [0] * 5, n=7)
    finally:
        lm.stop_ids = saved
    assert cut[0].n_tokens == 3
    assert cut[0].text == lm.tokenizer.decode(_manual_greedy(lm, PROMPTS[0], 3))
    assert any(c.n_tokens == 7 for c in cut[1:])


def _manual_greedy(lm: TransformersLM, prompt, n: int) -> list[int]:
    """Greedy decoding by full forward passes without any cache or batching."""
    ids = lm.prompt_ids(prompt)
    new: list[int] = []
    with torch.inference_mode():
        for _ in range(n):
            logits = lm.model(torch.tensor([ids + new])).logits[0, -1]
            new.append(int(logits.argmax()))
    return new


def test_temperature_zero_is_argmax_path(lm: TransformersLM) -> None:
    out = _gen(lm, PROMPTS, [0.0] * 5, [3, 1, 4, 1, 5], n=8)
    for prompt, c in zip(PROMPTS, out, strict=False):
        assert c.text == lm.tokenizer.decode(
            _manual_greedy(lm, prompt, 8), skip_special_tokens=True
        )


def test_sampler_matches_distribution_and_top_p() -> None:
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0]).repeat(20000, 1)
    temps = torch.full((20000,), 0.5)
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(20000, generator=gen, dtype=torch.float64)
    picks = sample_tokens(logits, temps, u)
    freq = torch.bincount(picks, minlength=4).double() / 20000
    expect = torch.softmax(logits[0] / 0.5, -1).double()
    assert torch.allclose(freq, expect, atol=0.01)
    # top_p = 0.9 at T = 0.5: masses 0.865, 0.117, ... -> only the first two survive
    nucleus = sample_tokens(logits, temps, u, top_p=0.9)
    assert set(nucleus.tolist()) == {0, 1}
    greedy = sample_tokens(logits[:3], torch.zeros(3), u[:3])
    assert greedy.tolist() == [0, 0, 0]


def test_score_batched_equals_one_at_a_time(lm: TransformersLM) -> None:
    taus = [0.5, 1.0, 2.0]
    batched = lm.score(PROMPTS, CONTINUATIONS, temperatures=taus)
    for p, c, b in zip(PROMPTS, CONTINUATIONS, batched, strict=False):
        (single,) = lm.score([p], [c], temperatures=taus)
        assert single.n_tokens == b.n_tokens > 0
        np.testing.assert_allclose(single.logprob, b.logprob, rtol=1e-5, atol=1e-3)


def test_score_temperature_grid_matches_full_logits(lm: TransformersLM) -> None:
    taus = [0.25, 0.8, 1.0, 3.0]
    scores = lm.score(PROMPTS, CONTINUATIONS, temperatures=taus, per_token=True)
    for p, c, s in zip(PROMPTS, CONTINUATIONS, scores, strict=False):
        head = lm.prompt_ids(p)
        tail = lm.tokenizer(c, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logits = lm.model(torch.tensor([head + tail])).logits[0].double()
        pred = logits[len(head) - 1 : -1]
        manual = np.stack(
            [torch.log_softmax(pred / t, -1)[torch.arange(len(tail)), tail].numpy() for t in taus],
            1,
        )
        assert s.token_logprobs is not None and s.token_logprobs.shape == (len(tail), len(taus))
        np.testing.assert_allclose(s.token_logprobs, manual, atol=2e-4)
        np.testing.assert_allclose(s.logprob, manual.sum(0), atol=2e-3)
    # lower temperature sharpens: the argmax-heavy ordering of sums must change with tau
    assert not np.allclose(scores[0].logprob[0], scores[0].logprob[-1])


def test_score_truncates_to_max_tokens(lm: TransformersLM) -> None:
    full = lm.score(PROMPTS, CONTINUATIONS, per_token=True)
    cut = lm.score(PROMPTS, CONTINUATIONS, max_tokens=3, per_token=True)
    for f, c in zip(full, cut, strict=False):
        assert c.n_tokens == min(3, f.n_tokens)
        np.testing.assert_allclose(c.logprob, f.token_logprobs[:3].sum(0), atol=1e-3)
    empty = lm.score(["Hi"], [""])
    assert empty[0].n_tokens == 0 and empty[0].logprob.tolist() == [0.0]


def test_score_rejects_bad_input(lm: TransformersLM) -> None:
    with pytest.raises(ValueError, match="temperatures"):
        lm.score(["a"], ["b"], temperatures=[0.0])
    with pytest.raises(ValueError, match="continuations"):
        lm.score(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="seeds"):
        lm.generate(["a"], temperatures=[1.0], seeds=[], max_new_tokens=2)


def test_stats_count_work() -> None:
    lm = tiny_lm(seed=1)
    lm.generate(PROMPTS[:2], temperatures=[1.0, 1.0], seeds=[0, 1], max_new_tokens=4)
    lm.score(PROMPTS[:2], CONTINUATIONS[:2])
    assert lm.stats.generate_sequences == 2 and lm.stats.generate_tokens <= 8
    assert lm.stats.generate_seconds > 0 and lm.stats.score_seconds > 0
    assert lm.stats.score_sequences == 2
    assert lm.stats.score_tokens == sum(
        len(lm.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in CONTINUATIONS[:2]
    )


def test_chat_template_applied(lm: TransformersLM) -> None:
    text = lm.tokenizer.decode(lm.prompt_ids("Hello model"))
    assert "<|im_start|>user\nHello model<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    messages = [{"role": "system", "content": "S."}, {"role": "user", "content": "U."}]
    text = lm.tokenizer.decode(lm.prompt_ids(messages))
    assert text.startswith("<|im_start|>system\nS.<|im_end|>") and "assistant\n" in text


#: bf16 against fp32 on the tiny model: mean |delta log p| per token below this, and at
#: least this fraction of greedy tokens identical. (SmolLM2 itself: see docs/lm.md.)
BF16_MEAN_ABS_TOL = 0.05
BF16_GREEDY_AGREEMENT = 0.9


def test_bf16_agrees_with_fp32(lm: TransformersLM) -> None:
    half = TransformersLM(copy.deepcopy(lm.model).to(torch.bfloat16), lm.tokenizer, batch_size=3)
    a = lm.score(PROMPTS, CONTINUATIONS, per_token=True)
    b = half.score(PROMPTS, CONTINUATIONS, per_token=True)
    diff = np.concatenate(
        [abs(x.token_logprobs - y.token_logprobs).ravel() for x, y in zip(a, b, strict=False)]
    )
    assert 0 < diff.mean() < BF16_MEAN_ABS_TOL
    ga = _gen(lm, PROMPTS, [0.0] * 5, [0] * 5, n=16)
    gb = _gen(half, PROMPTS, [0.0] * 5, [0] * 5, n=16)
    ia = [lm.tokenizer(c.text, add_special_tokens=False)["input_ids"] for c in ga]
    ib = [lm.tokenizer(c.text, add_special_tokens=False)["input_ids"] for c in gb]
    # agreement up to the first divergence (after which the contexts differ)
    agree = sum(
        next((k for k, (x, y) in enumerate(zip(p, q, strict=False)) if x != y), len(p))
        for p, q in zip(ia, ib, strict=False)
    )
    assert agree / sum(len(p) for p in ia) >= BF16_GREEDY_AGREEMENT


def test_tokenizer_is_real_smollm2() -> None:
    tok = smollm2_tokenizer()
    assert len(tok) == 49152 and tok.eos_token == "<|im_end|>"


def test_load_lm_dispatch_and_errors() -> None:
    from mop_bench.lm.openai_compat import OpenAICompatLM
    from mop_bench.lm.registry import LM_BACKENDS, load_lm
    from mop_bench.registry import UnknownNameError
    from mop_bench.spec import LMSpec

    assert {"transformers", "openai", "vllm"} <= set(LM_BACKENDS.names())
    with pytest.raises(UnknownNameError, match="did you mean 'openai'"):
        load_lm(LMSpec(backend="opnai"))
    with pytest.raises(ValueError, match="base_url"):
        load_lm(LMSpec(backend="openai"))
    lm = load_lm(LMSpec(model="m", backend="openai", base_url="http://127.0.0.1:1"), batch_size=4)
    assert isinstance(lm, OpenAICompatLM) and lm.base_url.endswith("/v1") and lm.concurrency == 4
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"mop-bench\[vllm\]"):
            load_lm(LMSpec(backend="vllm"))


def test_resolve_model_and_dtype(tmp_path) -> None:
    from mop_bench.lm.loading import choose_dtype, resolve_model

    source = resolve_model("smollm2-135m-instruct")
    assert source.gguf_file and source.gguf_file.endswith(".gguf")
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct").gguf_file == source.gguf_file
    assert resolve_model("some-org/some-model").gguf_file is None
    with pytest.raises(FileNotFoundError, match=r"missing\.gguf"):
        resolve_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(ValueError, match="float16"):
        choose_dtype("float16")
    assert choose_dtype("float32") == "float32"
    assert choose_dtype("auto") in ("float32", "bfloat16")


def test_auto_dtype_follows_the_hardware_not_a_timing(monkeypatch) -> None:
    """`auto` is bf16 exactly where the CPU has native bf16, however busy it is."""
    from mop_bench.lm import loading

    assert not hasattr(loading, "bf16_speedup")  # no timed choice left to flip
    for native, want in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(loading, "cpu_has_native_bf16", lambda native=native: native)
        assert {loading.choose_dtype("auto") for _ in range(3)} == {want}


# -- the real default model -----------------------------------------------------------


@pytest.mark.slow
def test_smollm2_generates_and_scores() -> None:
    real = TransformersLM.from_pretrained("smollm2-135m-instruct", dtype="auto", batch_size=4)
    assert "SmolLM2-135M-Instruct" in real.name and "dtype=" in real.name
    prompts = ["What is the capital of France? Answer in one word.", "Say hello."]
    out = real.generate(prompts, temperatures=[0.0, 0.8], seeds=[0, 1], max_new_tokens=8)
    assert "Paris" in out[0].text and 0 < out[1].n_tokens <= 8
    good, bad = real.score([prompts[0]] * 2, ["Paris", "Banana"], temperatures=[0.7, 1.0])
    assert np.all(np.isfinite(good.logprob)) and good.logprob[1] > bad.logprob[1] + 2


def test_shared_prefix_prefill_matches_single_prompts(lm: TransformersLM) -> None:
    # One template -> a long common token prefix, computed once and copied to every row.
    prompts = [f"You are a careful reviewer. Please write a review of shop {i}." for i in range(3)]
    together = _gen(lm, prompts, [0.0] * 3, [0] * 3, n=6)
    alone = [_gen(lm, [p], [0.0], [0], n=6)[0] for p in prompts]
    assert together == alone


#: SmolLM2 bf16 against fp32 (measured: 0.037 nats mean over 16 x 64 Yelp tokens).
SMOLLM2_BF16_MEAN_ABS_TOL = 0.08


@pytest.mark.slow
def test_smollm2_bf16_close_to_fp32() -> None:
    from _common import mop_prompts  # benchmarks/_common.py: realistic MoP prompts

    prompts, texts = mop_prompts(4, seed=3)
    f32 = TransformersLM.from_pretrained(dtype="float32", batch_size=4)
    b16 = TransformersLM.from_pretrained(dtype="bfloat16", batch_size=4)
    a = f32.score(prompts, texts, max_tokens=32, per_token=True)
    b = b16.score(prompts, texts, max_tokens=32, per_token=True)
    diff = np.concatenate(
        [abs(x.token_logprobs - y.token_logprobs).ravel() for x, y in zip(a, b, strict=True)]
    )
    assert 0 < diff.mean() < SMOLLM2_BF16_MEAN_ABS_TOL


def test_prefilled_assistant_turn_is_continued(lm: TransformersLM) -> None:
    """A final assistant message is the start of the answer: the prompt ends with its
    text (no end-of-turn), right after the assistant header."""
    messages = [{"role": "user", "content": "Describe a diner."}]
    prefilled = [*messages, {"role": "assistant", "content": "You are a"}]
    plain = lm.prompt_ids(messages)
    ids = lm.prompt_ids(prefilled)
    assert ids[: len(plain)] == plain
    assert lm.tokenizer.decode(ids[len(plain) :]) == "You are a"
    (comp,) = lm.generate([prefilled], temperatures=[0.0], seeds=[0], max_new_tokens=4)
    assert comp.n_tokens >= 1


def test_stop_strings_end_a_row_and_raw_prompts_skip_the_chat_template(
    lm: TransformersLM,
) -> None:
    from mop_bench.lm.base import RawPrompt
    from mop_bench.mop.prompts import cut_at_stop

    raw = RawPrompt("Yelp review (positive):\n")
    assert lm.prompt_ids(raw) == list(lm.tokenizer(raw.text)["input_ids"])
    assert "<|im_start|>" not in lm.tokenizer.decode(lm.prompt_ids(raw))
    (free,) = lm.generate([raw], temperatures=[0.0], seeds=[0], max_new_tokens=12)
    # a stop string made of the greedy text's 3rd-4th tokens: the row must end there
    ids = _manual_greedy(lm, raw, 12)
    stop = lm.tokenizer.decode(ids[2:4])
    assert stop and stop in free.text
    (cut,) = lm.generate([raw], temperatures=[0.0], seeds=[0], max_new_tokens=12, stop=[stop])
    assert cut.n_tokens <= 4 and stop in cut.text  # ended once the stop was complete
    assert free.text.startswith(cut.text)  # the same tokens up to the stop
    assert cut_at_stop(cut.text, [stop]) == cut_at_stop(free.text, [stop])
