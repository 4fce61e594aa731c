"""PICLe's exemplar selection (mop_bench/mop/picle.py) on a tiny random Llama built in
code: deterministic, per group, best last, cached, planted preference found, wired into
the MoP simulator's fixed sets, and refused where it cannot apply."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tiny_llama import tiny_lm

from mop_bench.mop.picle import load_scores, select_picle
from mop_bench.mop.simulator import MoPSimulator
from mop_bench.runner import build_spec
from mop_bench.simulators import resolve_simulator
from mop_bench.spec import PicleSpec
from mop_bench.types import Example
from tests.test_mop import make_inputs, make_pool

#: Few steps at a large learning rate: on a random 2-layer model the original's 2e-5
#: moves nothing measurable in a handful of steps.
FAST = PicleSpec(steps=6, batch_size=4, lr=1e-2, max_tokens=24)


@pytest.fixture(scope="module")
def lm():
    return tiny_lm(seed=0)


def _select(lm, pool, *, cache_dir=None, spec=FAST, seed=0, match=("label",), calls=None):
    def load():
        if calls is not None:
            calls.append(1)
        return lm.model, lm.tokenizer

    return select_picle(
        pool,
        per_prompt=3,
        seed=seed,
        match=match,
        spec=spec,
        exemplar_words=40,
        lm={"model": "tiny", "dtype": "float32"},
        load_model=load,
        cache_dir=cache_dir,
    )


def test_selection_is_deterministic_per_group_and_best_last(lm, tmp_path: Path) -> None:
    pool = make_pool(16)
    slots, record = _select(lm, pool, cache_dir=tmp_path / "a")
    again, record2 = _select(lm, pool, cache_dir=tmp_path / "b")
    assert [[ex.uid for ex in s] for s in slots] == [[ex.uid for ex in s] for s in again]
    assert load_scores(record, tmp_path / "a") == load_scores(record2, tmp_path / "b")
    assert not record["path"].startswith("/")  # relative to the artifacts directory
    assert len(slots) == 2 and all(len(s) == 3 for s in slots)
    labels = sorted({ex.label for ex in pool})
    for slot, label, group, scores in zip(
        slots, labels, record["groups"], load_scores(record, tmp_path / "a"), strict=True
    ):
        assert {ex.label for ex in slot} == {label}  # from the right group
        assert len(scores) == sum(ex.label == label for ex in pool)
        assert group["uids"] == [ex.uid for ex in slot]
        top = sorted(scores, key=lambda u: -scores[u])[:3]
        assert [ex.uid for ex in slot] == top[::-1]  # the top 3, best last
        chosen = [scores[ex.uid] for ex in slot]
        assert chosen == sorted(chosen) and group["score_chosen"] == pytest.approx(chosen, abs=1e-4)
        assert group["score_median"] <= chosen[0] and len(group["train_losses"]) == FAST.steps
        assert (tmp_path / "a" / "picle" / group["adapter"]).is_file()
    # another seed draws another LoRA init and other batches: other scores
    _, other = _select(lm, pool, seed=1)
    assert other["path"] is None  # nothing cached without a cache dir
    assert other["groups"][0]["score_chosen"] != record["groups"][0]["score_chosen"]


def test_cache_is_reused_and_keyed(lm, tmp_path: Path) -> None:
    pool = make_pool(12)
    calls: list[int] = []
    first, rec1 = _select(lm, pool, cache_dir=tmp_path, calls=calls)
    second, rec2 = _select(lm, pool, cache_dir=tmp_path, calls=calls)
    assert calls == [1]  # the second call trained nothing, loaded no model
    assert (rec1["reused"], rec2["reused"]) == (False, True)
    assert [[e.uid for e in s] for s in first] == [[e.uid for e in s] for s in second]
    assert rec2["groups"] == rec1["groups"] and "scores" not in rec2
    _select(lm, pool, cache_dir=tmp_path, spec=replace(FAST, steps=5), calls=calls)
    assert calls == [1, 1]  # a changed setting selects again


def test_planted_repeated_phrase_is_preferred(lm, tmp_path: Path) -> None:
    """A group whose texts mostly repeat one phrase: the LoRA learns the phrase, so every
    repeated-phrase text gains more likelihood than the odd ones, which are never chosen."""
    phrase = "the little cat sat on the warm mat and purred"
    odd = [
        "Quarterly revenue exceeded projections despite supply chain turbulence.",
        "Photosynthesis converts light energy into chemical energy in chloroplasts.",
    ]
    pool = [Example(text=f"{phrase} {i}", label=0, context="c", uid=f"r{i}") for i in range(8)]
    pool += [Example(text=t, label=0, context="c", uid=f"odd{i}") for i, t in enumerate(odd)]
    slots, record = _select(lm, pool, cache_dir=tmp_path, spec=replace(FAST, steps=8), match=())
    scores = load_scores(record, tmp_path)[0]
    assert max(scores["odd0"], scores["odd1"]) < min(scores[f"r{i}"] for i in range(8))
    assert {ex.uid for ex in slots[0]}.isdisjoint({"odd0", "odd1"})
    group = record["groups"][0]
    assert group["nll_per_token_lora"] < group["nll_per_token_base"]
    assert group["train_loss_last"] < group["train_loss_first"]


def test_run_model_is_left_untouched(lm) -> None:
    from mop_bench.lm.base import RawPrompt

    before = lm.score([RawPrompt("a review:")], [" great food"])[0].logprob
    params = {k: v.clone() for k, v in lm.model.state_dict().items()}
    _select(lm, make_pool(8))
    after = lm.score([RawPrompt("a review:")], [" great food"])[0].logprob
    assert np.array_equal(before, after)
    assert all(np.array_equal(v, lm.model.state_dict()[k]) for k, v in params.items())
    assert not any(n for n, _ in lm.model.named_modules() if "lora" in n)


def test_simulator_uses_picle_sets_and_reuses_them(lm, tmp_path: Path) -> None:
    sim = replace(resolve_simulator("picle"), picle=FAST)
    calls: list[int] = []
    record = MoPSimulator(make_inputs(sim, tmp_path, lm, calls=calls)).prepare()
    assert calls == [1]
    picked = [g["uids"] for g in record["picle"]["groups"]]
    assert record["fixed_exemplar_uids"] == picked
    assert not record["picle"]["reused"] and record["picle"]["target_modules"] == [
        "q_proj",
        "v_proj",
    ]
    again = MoPSimulator(make_inputs(sim, tmp_path, lm, calls=calls))
    assert again.prepare()["reused"] is True
    assert [[e.uid for e in s] for s in again._model.mixture.exemplar_slots] == picked
    assert calls == [1]  # no model loaded: the fit and the selection were both reused
    seeded = MoPSimulator(
        make_inputs(replace(sim, exemplar_selection="seeded"), tmp_path / "s", lm)
    ).prepare()
    assert "picle" not in seeded


def test_validation_refuses_picle_without_fixed_exemplars() -> None:
    with pytest.raises(
        ValueError, match="picle chooses the fixed exemplar sets; it needs exemplars: fixed"
    ):
        build_spec("yelp", "picle", overrides={"simulator.exemplars": "gated"})
    with pytest.raises(ValueError, match=re.escape("needs lm.backend")):
        build_spec("yelp", "picle", overrides={"lm.backend": "vllm"})
    with pytest.raises(ValueError, match=re.escape("simulator.picle.steps must be >= 1")):
        build_spec("yelp", "picle", overrides={"simulator.picle.steps": 0})
    assert build_spec("yelp", "picle").simulator.exemplar_selection == "picle"


def test_fingerprint_holds_picle_settings_only_when_used() -> None:
    picle = build_spec("yelp", "picle")
    assert (
        picle.fingerprint()
        != build_spec("yelp", "picle", overrides={"simulator.picle.steps": 17}).fingerprint()
    )
    seeded = build_spec("yelp", "fixed-few-shot")
    assert (
        seeded.fingerprint()
        == build_spec(
            "yelp", "fixed-few-shot", overrides={"simulator.picle.steps": 17}
        ).fingerprint()
    )
