"""Tests of the lean scoring path (mop_bench/lm/fastscore.py) and shared-prefix scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_lm import BF16_MEAN_ABS_TOL, CONTINUATIONS, PROMPTS
from tiny_llama import smollm2_tokenizer, tiny_lm

from mop_bench.lm.hf import TransformersLM


@pytest.fixture(scope="module")
def lm() -> TransformersLM:
    return tiny_lm(seed=0, batch_size=3)


#: MoP-like prompts: a long shared token prefix (system prompt + instruction), then
#: each its own persona/exemplar/request; scored batched, the prefix runs once.
SHARED_PREFIX_PROMPTS = [
    [
        {"role": "system", "content": "You embody the persona in the description. Reply only."},
        {"role": "user", "content": f"<Persona> {persona}\nPlease write a review of shop {i}."},
    ]
    for i, persona in enumerate(["A student.", "A retired nurse who likes tea.", "A chef."])
]


def _manual_logprobs(lm: TransformersLM, prompt, text: str, taus: list[float]) -> np.ndarray:
    head = lm.prompt_ids(prompt)
    tail = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = lm.model(torch.tensor([head + tail])).logits[0].double()
    pred = logits[len(head) - 1 : -1]
    return np.stack(
        [torch.log_softmax(pred / t, -1)[torch.arange(len(tail)), tail].numpy() for t in taus], 1
    )


def test_score_shared_prefix_matches_full_forward(lm: TransformersLM) -> None:
    from mop_bench.lm.sampling import MIN_SHARED_PREFIX, common_prefix

    heads = [lm.prompt_ids(p) for p in SHARED_PREFIX_PROMPTS]
    assert common_prefix(heads) >= MIN_SHARED_PREFIX  # the prefix path is exercised
    taus = [0.5, 1.0]
    conts = CONTINUATIONS[:3]
    batched = lm.score(SHARED_PREFIX_PROMPTS, conts, temperatures=taus, per_token=True)
    assert lm._lean is not None
    for p, c, b in zip(SHARED_PREFIX_PROMPTS, conts, batched, strict=True):
        np.testing.assert_allclose(b.token_logprobs, _manual_logprobs(lm, p, c, taus), atol=2e-4)
        (single,) = lm.score([p], [c], temperatures=taus)
        np.testing.assert_allclose(single.logprob, b.logprob, atol=1e-3)


def test_lean_and_transformers_paths_agree() -> None:
    from tiny_llama import tiny_llama_model

    model = tiny_llama_model(seed=2, dtype="bfloat16")
    tok = smollm2_tokenizer()
    lean = TransformersLM(model, tok, batch_size=4)
    stock = TransformersLM(model, tok, batch_size=4, lean_score=False)
    prompts = SHARED_PREFIX_PROMPTS + PROMPTS
    conts = CONTINUATIONS[:3] + CONTINUATIONS
    a = lean.score(prompts, conts, temperatures=[0.7, 1.0], per_token=True)
    b = stock.score(prompts, conts, temperatures=[0.7, 1.0], per_token=True)
    assert lean._lean is not None and stock._lean is None
    diff = np.concatenate(
        [abs(x.token_logprobs - y.token_logprobs).ravel() for x, y in zip(a, b, strict=True)]
    )
    assert diff.mean() < BF16_MEAN_ABS_TOL


def test_lean_unsupported_models_fall_back() -> None:
    from types import SimpleNamespace

    from mop_bench.lm.fastscore import unsupported_reason

    assert "gpt2" in unsupported_reason(SimpleNamespace(config=SimpleNamespace(model_type="gpt2")))
    biased = SimpleNamespace(config=SimpleNamespace(model_type="llama", attention_bias=True))
    assert unsupported_reason(biased) == "biased projections"


def test_continuation_logprobs_chunking() -> None:
    from mop_bench.lm.fastscore import continuation_logprobs

    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(11, 8, generator=gen)
    head = 3 * torch.randn(50, 8, generator=gen)
    targets = torch.randint(0, 50, (11,), generator=gen)
    taus = [0.3, 1.0, 2.5]
    with torch.inference_mode():  # as in TransformersLM.score
        small = continuation_logprobs(hidden, head, targets, taus, chunk=4, lse_chunk=3)
    lm_head = torch.nn.Linear(8, 50, bias=False)
    lm_head.weight.data = head
    with torch.inference_mode():
        big = continuation_logprobs(hidden, lm_head, targets, taus)  # a module head, one chunk
    z = (hidden @ head.T).double()
    manual = torch.stack(
        [torch.log_softmax(z / t, -1)[torch.arange(11), targets] for t in taus], 1
    ).float()
    torch.testing.assert_close(small, manual, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(big, small, atol=1e-6, rtol=0)


def test_rows_sharing_a_long_prefix_are_scored_together(lm: TransformersLM) -> None:
    """A (persona, exemplar) prompt scored for many requests: the rows are grouped so
    the prefix runs once, and the scores equal one-at-a-time scoring."""
    body = "You are a careful critic. Example: " + " ".join(["the soup was fine"] * 12)
    prompts = [
        [{"role": "system", "content": "S."}, {"role": "user", "content": f"{body}\nWrite {w}."}]
        for w in ("one", "two", "three", "four")
    ] + [[{"role": "user", "content": "Something else entirely."}]]
    conts = ["Good.", "Bad soup here.", "Fine, fine.", "Never again.", "Hmm."]
    heads = [lm.prompt_ids(p) for p in prompts]
    batches = list(lm._score_batches(heads, [len(h) + 3 for h in heads]))
    # (the fixture's batch_size is 3, so the group of four fills two batches)
    assert [4] in batches and all(set(b) <= {0, 1, 2, 3} for b in batches if b != [4])
    lm.score_forward_tokens = 0
    grouped = lm.score(prompts, conts, temperatures=[1.0])
    assert lm.score_forward_tokens < sum(len(h) for h in heads)  # the prefix ran once
    for p, c, g in zip(prompts, conts, grouped, strict=True):
        (single,) = lm.score([p], [c], temperatures=[1.0])
        np.testing.assert_allclose(single.logprob, g.logprob, atol=1e-3)
