"""Prompt styles render exact strings; generation, the fit's scoring and heldout_nll see
the same prompt and the same cut; exemplar sets (fixed per label, gated sets of L)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mop_bench.lm.base import RawPrompt
from mop_bench.mop import MoPSimulator
from mop_bench.mop.mixture import make_slots
from mop_bench.mop.prompts import (
    CardPrompt,
    cut_at_stop,
    persona_who,
    render_prompt,
    scored_text,
)
from mop_bench.prompt_spec import PromptSpec
from mop_bench.spec import FitSpec, SimulatorSpec
from mop_bench.types import Context, Example
from tests.fake_lm import FakeLM
from tests.test_mop import make_inputs, make_pool

CARD = CardPrompt("Please write {context}.", "Toy review ({label_name}, {category}):")
EX = [
    Example("Great  food,\nfriendly staff.", 1, "a positive review", {"label_name": "positive", "category": "Bars"}, "train:1"),
    Example("Cold soup and a long wait.", 0, "a negative review", {"label_name": "negative", "category": "Cafes"}, "train:2"),
]  # fmt: skip
TARGET = {"context": "a positive review", "fields": {"label_name": "positive", "category": "Pubs"}}
PERSONA = "You are a retired teacher who loves quiet pubs."


def test_completion_prompt_exact_strings() -> None:
    line = render_prompt(
        PromptSpec(persona_placement="line"), CARD, persona=PERSONA, exemplars=EX, **TARGET
    )
    assert line == RawPrompt(
        "Toy review (positive, Bars):\nGreat food, friendly staff.\n\n"
        "Toy review (negative, Cafes):\nCold soup and a long wait.\n\n"
        "Written by a retired teacher who loves quiet pubs.\n"
        "Toy review (positive, Pubs):\n"
    )
    pre = render_prompt(
        PromptSpec(persona_placement="preamble"), CARD, persona=PERSONA, exemplars=EX[:1], **TARGET
    )
    assert pre == RawPrompt(
        "The texts below were written by a retired teacher who loves quiet pubs.\n\n"
        "Toy review (positive, Bars):\nGreat food, friendly staff.\n\n"
        "Toy review (positive, Pubs):\n"
    )
    hidden = render_prompt(PromptSpec(), CARD, persona=PERSONA, exemplars=(), **TARGET)
    assert hidden == RawPrompt("Toy review (positive, Pubs):\n")


def test_completion_exemplars_are_cut_without_a_marker_and_derived_header() -> None:
    spec = PromptSpec(exemplar_words=2)
    card = CardPrompt("Please write {context}.")  # no completion_header: derived from context
    got = render_prompt(spec, card, persona=None, exemplars=EX[:1], **TARGET)
    assert got == RawPrompt("A positive review:\nGreat food,\n\nA positive review:\n")


def test_chat_tagged_is_the_papers_format() -> None:
    spec = PromptSpec(style="chat_tagged", stop=(), cut_marker=" ...", exemplar_words=3)
    got = render_prompt(spec, CARD, persona=PERSONA, exemplars=EX[1:], **TARGET)
    assert got == [
        {
            "role": "system",
            "content": "You embody the persona in the description to complete the task. "
            "Reply with the requested text only: no title, no preamble, no explanation.",
        },
        {
            "role": "user",
            "content": "<Persona> You are a retired teacher who loves quiet pubs.\n"
            "<Example> You have written a negative review: Cold soup and ...\n"
            "Please write a positive review.",
        },
    ]
    plain = render_prompt(spec, CARD, persona=None, exemplars=(), **TARGET)
    assert plain[0]["content"].startswith("Complete the task. Reply with")
    assert plain[1]["content"] == "Please write a positive review."


def test_chat_prefilled_starts_the_answer_with_the_header() -> None:
    spec = PromptSpec(style="chat_prefilled", persona_placement="line")
    got = render_prompt(spec, CARD, persona=PERSONA, exemplars=EX[:1], **TARGET)
    assert got[1] == {
        "role": "user",
        "content": "Examples of the texts to write:\n"
        "Toy review (positive, Bars):\nGreat food, friendly staff.\n"
        "Written by a retired teacher who loves quiet pubs.\n"
        "Please write a positive review.",
    }
    assert got[2] == {"role": "assistant", "content": "Toy review (positive, Pubs):\n"}


def test_cut_and_scored_text() -> None:
    assert cut_at_stop("one\n\ntwo\n\nthree", ("\n\n",)) == "one"
    assert cut_at_stop("a END b STOP", ("STOP", "END")) == "a "
    assert cut_at_stop("no stop here", ()) == "no stop here"
    assert scored_text("  first paragraph \n\nsecond", PromptSpec()) == "first paragraph"
    assert scored_text("kept\n\nwhole", PromptSpec(stop=())) == "kept\n\nwhole"
    assert persona_who("You're a night owl.") == "a night owl"
    assert persona_who("A critic.") == "A critic"


# ------------------------------------------------------------- one prompt, one cut


def _paragraph_pool(n: int = 24) -> list[Example]:
    """Pool texts with a second paragraph, which every scorer must cut away."""
    return [replace(ex, text=ex.text + "\n\nSECOND PARAGRAPH") for ex in make_pool(n)]


def test_generation_fit_and_heldout_see_the_same_prompt_and_cut(tmp_path: Path) -> None:
    sim = SimulatorSpec(
        name="mop", personas="keywords", n_personas=3, exemplars="gated",
        exemplars_per_prompt=2, gating="learned", temperature="per_persona",
        exemplar_match=("label",),
    )  # fmt: skip
    lm = FakeLM()
    inputs = make_inputs(sim, tmp_path, lm, prompt=PromptSpec(), fit=FitSpec(n_train=12, epochs=1))
    pool = _paragraph_pool()
    inputs.task.pool[:] = pool
    simulator = MoPSimulator(inputs)
    simulator.prepare()
    mixture = simulator._model.mixture
    by_uid = {ex.uid: ex for ex in pool}
    # the fit: every scored continuation is the cut text, under a rendered component
    renders = {
        (ex.uid, repr(mixture.render(ex.context, ex.fields, k, j, exclude_uid=ex.uid)[0]))
        for ex in pool
        for k in range(mixture.n_persona_slots)
        for j in range(mixture.n_exemplar_slots)
    }
    fit_calls = [pair for call in lm.score_calls for pair in call]
    assert fit_calls
    texts = {scored_text(ex.text, mixture.prompt): ex.uid for ex in pool}
    for prompt_text, cont in fit_calls:
        assert "SECOND" not in cont and cont in texts
        assert any(p == repr(RawPrompt(prompt_text)) for uid, p in renders if uid == texts[cont])
    # heldout_nll: the same renderer and cut on golden examples
    lm.score_calls.clear()
    golden = [replace(ex, uid=f"test:{i}") for i, ex in enumerate(pool[:6])]
    simulator.heldout(golden, tmp_path / "heldout")
    held = [pair for call in lm.score_calls for pair in call]
    assert held and all(cont in texts for _, cont in held)  # cut like the fit's
    golden_renders = {
        repr(mixture.render(ex.context, ex.fields, k, j)[0])
        for ex in golden
        for k in range(mixture.n_persona_slots)
        for j in range(mixture.n_exemplar_slots)
    }
    assert all(repr(RawPrompt(p)) in golden_renders for p, _ in held)
    # generation: the recorded prompt is the component's rendering, the text is cut
    ctxs = [
        Context(index=i, text=ex.context, label=ex.label, fields=ex.fields)
        for i, ex in enumerate(pool[:4])
    ]
    gens = next(simulator.simulate([ctxs]))
    for ctx, g in zip(ctxs, gens, strict=True):
        d = g.details
        j = next(
            j for j, slot in enumerate(mixture.exemplar_slots)
            if [ex.uid for ex in slot] == d["exemplar_uids"]
        )  # fmt: skip
        k = d["persona_index"]
        assert d["prompt"] == mixture.render(ctx.text, ctx.fields, k, j)[0].text
        assert "\n\n" not in g.text and "Next header" not in g.text  # the FakeLM wrote on
        assert d["ended"] == "stop"
        assert all(by_uid[u].label == ctx.label for u in d["exemplar_uids"])


# ------------------------------------------------------------- exemplar sets


def test_fixed_sets_are_drawn_per_label_and_served_by_label() -> None:
    pool = make_pool(20)
    slots = make_slots("fixed", pool, 3, seed=4, match=("label",))
    assert len(slots) == 2
    assert [{ex.label for ex in slot} for slot in slots] == [{0}, {1}]
    assert all(len(slot) == 3 for slot in slots)
    # label-agnostic: one set, the draw the label-agnostic baseline always made
    (one,) = make_slots("fixed", pool, 3, seed=4)
    picks = np.random.default_rng([4, 5]).choice(len(pool), size=3, replace=False)
    assert [ex.uid for ex in one] == [pool[i].uid for i in sorted(picks.tolist())]


def test_fixed_few_shot_per_label_shows_only_the_requested_label(tmp_path: Path) -> None:
    sim = SimulatorSpec(
        name="fs", personas="none", exemplars="fixed", exemplars_per_prompt=3,
        exemplar_match=("label",), gating="uniform", temperature="fixed",
    )  # fmt: skip
    simulator = MoPSimulator(make_inputs(sim, tmp_path, FakeLM()))
    record = simulator.prepare()
    assert len(record["fixed_exemplar_uids"]) == 2
    ctxs = [Context(index=i, text="a review", label=i % 2, fields={}) for i in range(8)]
    gens = next(simulator.simulate([ctxs]))
    for g in gens:
        assert len(g.details["exemplar_labels"]) == 3
        assert set(g.details["exemplar_labels"]) == {g.label}


def test_gated_sets_have_an_anchor_and_l_minus_1_of_its_group() -> None:
    pool = make_pool(20)
    slots = make_slots("gated", pool, 3, seed=0, match=("label",))
    assert len(slots) == len(pool)
    for anchor, slot in zip(pool, slots, strict=True):
        assert slot[-1] is anchor and len(slot) == 3
        assert len({ex.uid for ex in slot}) == 3
        assert {ex.label for ex in slot} == {anchor.label}
    assert make_slots("gated", pool, 3, seed=0, match=("label",)) == slots  # seeded
    assert make_slots("gated", pool, 3, seed=1, match=("label",)) != slots
    with pytest.raises(ValueError, match="exemplars_per_prompt=30"):
        make_slots("gated", pool, 30, seed=0)


def test_bad_prompt_templates_fail_when_the_spec_is_built() -> None:
    from mop_bench.runner import build_spec

    with pytest.raises(ValueError, match=r"prompt.persona_line .* uses \['name'\]"):
        build_spec("yelp", "mop", overrides={"prompt.persona_line": "By {name}."})
    with pytest.raises(ValueError, match=r"prompt\.exemplar_tag"):
        build_spec("yelp", "mop", overrides={"prompt.exemplar_tag": "{0}"})
    spec = build_spec("yelp", "mop", preset="paper")
    assert spec.prompt.style == "chat_tagged" and spec.prompt.stop == ()
    assert build_spec("yelp", "mop", overrides={"prompt.stop": ""}).prompt.stop == ()
