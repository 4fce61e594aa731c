"""The template generator (ZeroGen, ProGen, AttrPrompt): prompts filled from settings,
filters with redraws, the generated context pool, ProGen's rounds and its resume.
A scripted LM stands in for SmolLM2, so the file runs in seconds."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from mop_bench.literature.settings import TemplateSettings
from mop_bench.literature.simulator import TemplateSimulator
from mop_bench.lm.base import Completion, RawPrompt
from mop_bench.simulators import SimulationInputs
from mop_bench.spec import BudgetSpec, RunSpec, SimulatorSpec
from mop_bench.types import Context, Example

WORDS = [
    "the",
    "film",
    "was",
    "a",
    "quiet",
    "and",
    "moving",
    "story",
    "about",
    "two",
    "old",
    "friends",
    "on",
    "a",
    "long",
    "trip",
]


class ScriptedLM:
    """Titles for `Movie: "`; reviews otherwise. A review draw whose seed is divisible
    by 3 has no closing quote, line break or period (ZeroGen's cut rejects it)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[int], int, int]] = []

    def generate(self, prompts, *, temperatures, seeds, max_new_tokens, top_p=1.0,
                 stop=(), min_new_tokens=0):  # fmt: skip
        texts = [p.text if isinstance(p, RawPrompt) else p[-1]["content"] for p in prompts]
        self.calls.append((texts, list(seeds), max_new_tokens, min_new_tokens))
        out = []
        for text, seed in zip(texts, seeds, strict=True):
            h = int(hashlib.sha256(f"{text}|{seed}".encode()).hexdigest(), 16)
            if text.endswith('Movie: "'):
                out.append(Completion(f'Title {h % 97}" (1999) and', 10))
                continue
            words = [WORDS[(h >> (4 * i)) % len(WORDS)] for i in range(12)]
            body = " ".join(words)
            out.append(Completion(body if seed % 3 == 0 else body + '." More text', 40))
        return out


def settings(**over) -> dict:
    base = {
        "source": "test",
        "contexts": "generated",
        "samples_per_context": 2,
        "context_tokens": 10,
        "exact_tokens": 40,
        "top_p": 0.9,
        "cut": "quote",
        "min_words": 10,
        "drop_context_copies": True,
        "dedupe": True,
        "prompts": {
            "toy": {
                "prompt": 'The movie review in {label_word} sentiment for movie "{context}" is: "',
                "label_words": ["negative", "positive"],
                "context_prompt": 'Movie: "',
                "source": "test",
            }
        },
    }
    return base | over


def golden(n: int = 8) -> list[Example]:
    return [
        Example(text=f"text {i}", label=i % 2, context=f"ctx {i % 2}", fields={}, uid=f"g:{i}")
        for i in range(n)
    ]


def make(tmp: Path, template: dict, n: int = 8, chunk: int = 4, lm=None) -> TemplateSimulator:
    sim = SimulatorSpec(name="zg", kind="template", label_prior="balanced", template=template)
    spec = RunSpec(task="toy", simulator=sim, budget=BudgetSpec(n_samples=n, max_new_tokens=64,
                                                                 chunk_size=chunk))  # fmt: skip
    card = SimpleNamespace(name="toy", label_names=["negative", "positive"])
    task = SimpleNamespace(card=card, pool=[], golden=golden(), heldout=[])
    lm = lm or ScriptedLM()
    inputs = SimulationInputs(
        spec=spec, task=task, encoder=None, lm_factory=lambda: lm, artifacts_dir=tmp
    )
    return TemplateSimulator(inputs)


def contexts(n: int) -> list[Context]:
    return [Context(index=i, text=f"ctx {i % 2}", label=i % 2) for i in range(n)]


def test_zerogen_like_prompts_lengths_and_filters(tmp_path: Path) -> None:
    sim = make(tmp_path, settings())
    record = sim.prepare()
    lm = sim.lm
    # 8 balanced requests, 2 per context and label: 2 titles of exactly 10 tokens
    assert record["contexts"]["n"] == 2
    titles, _, max_new, min_new = lm.calls[0]
    assert titles == ['Movie: "', 'Movie: "'] and (max_new, min_new) == (10, 10)
    assert all(t.startswith("Title ") for t in sim._contexts)
    gens = [g for chunk in sim.simulate([contexts(4), contexts(8)[4:]]) for g in chunk]
    first = lm.calls[1]
    assert first[2:] == (40, 40)  # exactly 40 tokens, as ZeroGen
    title = sim._contexts[0]
    assert first[0][1] == f'The movie review in positive sentiment for movie "{title}" is: "'
    for g in gens:
        assert g.text.endswith(".") or g.details["rejected"]
        assert len(g.text.split()) >= 10
        assert g.details["attempts"] >= 1
        # a draw that needed more than one attempt records why the earlier ones failed
        assert len(g.details["rejections"]) == g.details["attempts"] - 1
    assert any(g.details["attempts"] > 1 for g in gens)  # seed % 3 == 0 draws redrawn


def test_same_seed_same_texts_and_context_pool_reused(tmp_path: Path) -> None:
    a = make(tmp_path / "a", settings())
    ta = [g.text for c in a.simulate([contexts(8)]) for g in c]
    b = make(tmp_path / "a", settings())  # same artifacts dir: the pool is reused
    assert b.prepare()["contexts"]["reused"] is True
    assert [g.text for c in b.simulate([contexts(8)]) for g in c] == ta


def test_unknown_task_and_label_word_mismatch_refused(tmp_path: Path) -> None:
    other = settings(prompts={"imdb": settings()["prompts"]["toy"]})
    with pytest.raises(ValueError, match=r"no prompts for task 'toy'.*imdb"):
        make(tmp_path, other)
    bad = settings()
    bad["prompts"]["toy"] = bad["prompts"]["toy"] | {"label_words": ["only one"]}
    with pytest.raises(ValueError, match="label_words has 1 words for the task's 2 labels"):
        make(tmp_path, bad)
    with pytest.raises(ValueError, match="unknown template key 'temprature'"):
        TemplateSettings.from_mapping(settings(temprature=1), "x")


def progen(**over) -> dict:
    out = settings(demos="own", demos_per_prompt=2, demo_prob=1.0, rounds=[4, 8], exact_tokens=0)
    out["prompts"]["toy"] |= {
        "prompt": '{demos}The movie review in {label_word} sentiment for movie "{context}" is: "',
        "demo": 'The movie review for movie "{context}" is: "{text}"',
    }
    return out | over


def test_progen_demos_after_first_round_and_resume_is_byte_identical(tmp_path: Path) -> None:
    ctx = contexts(16)
    chunks = [ctx[i : i + 4] for i in range(0, 16, 4)]
    full = make(tmp_path / "full", progen(), n=16)
    gens = [g for c in full.simulate(chunks) for g in c]
    # no demos before 4 accepted texts; demos of the same label after
    assert all(not g.details["demo_indices"] for g in gens[:4])
    later = [g for g in gens[8:] if g.details["demo_indices"]]
    assert later
    by_index = {g.index: g for g in gens}
    for g in later:
        assert all(by_index[i].label == g.label and i < g.index for i in g.details["demo_indices"])
        assert g.details["prompt"].startswith('The movie review for movie "')
    # killed after two chunks: a new simulator resumes from what is on disk
    part = make(tmp_path / "part", progen(), n=16)
    first = [g for c in part.simulate(chunks[:2]) for g in c]
    again = make(tmp_path / "part", progen(), n=16)
    again.resume(first)
    rest = [g for c in again.simulate(chunks[2:]) for g in c]
    assert [g.to_json() for g in first + rest] == [g.to_json() for g in gens]


def test_progen_resume_refuses_generations_that_disagree_with_recorded_rounds(
    tmp_path: Path,
) -> None:
    ctx = contexts(16)
    chunks = [ctx[i : i + 4] for i in range(0, 16, 4)]
    sim = make(tmp_path, progen(), n=16)
    gens = [g for c in sim.simulate(chunks[:3]) for g in c]
    tampered = [g for g in gens if g.index != 5]  # a row lost: fewer accepted texts
    again = make(tmp_path, progen(), n=16)
    with pytest.raises(ValueError, match="do not match"):
        again.resume(tampered)


# -------------------------------------------------------------- the bundled generators
IMDB_PROMPT = 'The movie review in {} sentiment for movie "{}" is: "'


def bundled(name: str) -> SimulatorSpec:
    from mop_bench.registry import cards_dir
    from mop_bench.simulators import load_simulator_file

    return load_simulator_file(cards_dir("baselines") / f"{name}.yaml")


@pytest.mark.parametrize("name", ["zerogen", "progen"])
def test_bundled_generator_on_a_tiny_model_prompts_verbatim(name: str, tmp_path: Path) -> None:
    """The bundled file through the real transformers backend (a tiny random Llama):
    the imdb prompts are ZeroGen's/ProGen's strings with labels mapped by meaning
    (ZeroGen's key "0" is *positive*; our label 1 is), EOS forbidden before the exact
    length, every kept text through the quote cut."""
    from tiny_llama import tiny_lm

    spec = bundled(name)
    run = RunSpec(task="imdb", simulator=spec,
                  budget=BudgetSpec(n_samples=6, max_new_tokens=12, chunk_size=3))  # fmt: skip
    card = SimpleNamespace(name="imdb", label_names=["negative", "positive"])
    task = SimpleNamespace(card=card, pool=[], golden=golden(), heldout=[])
    lm = tiny_lm(seed=0)
    sim = TemplateSimulator(
        SimulationInputs(
            spec=run, task=task, encoder=None, lm_factory=lambda: lm, artifacts_dir=tmp_path
        )
    )
    record = sim.prepare()
    assert record["new_tokens"] == {"max": 12, "min": 12}  # 40/100 exact, capped by the budget
    ctx = [Context(index=i, text="x", label=i % 2) for i in range(6)]
    gens = [g for c in sim.simulate([ctx[:3], ctx[3:]]) for g in c]
    for g in gens:
        word = "positive" if g.label == 1 else "negative"
        title = g.details["context_value"]
        assert title in sim._contexts
        assert g.details["prompt"].endswith(IMDB_PROMPT.format(word, title))
        assert g.details["n_tokens"] == 12
        if not g.details["rejected"]:
            assert '"' not in g.text and len(g.text.split(" ")) >= 10


def test_bundled_attrprompt_renders_the_original_message(tmp_path: Path) -> None:
    import os

    data = os.environ.get("MOP_BENCH_DATA_DIR")
    if not data or not (Path(data) / "attrprompt").is_dir():
        pytest.skip("AttrPrompt's attribute files: set MOP_BENCH_DATA_DIR to ../shared/data")
    spec = bundled("attrprompt")
    run = RunSpec(task="yelp", simulator=spec,
                  budget=BudgetSpec(n_samples=4, max_new_tokens=8, chunk_size=4))  # fmt: skip
    card = SimpleNamespace(name="yelp", label_names=["negative", "positive"])
    task = SimpleNamespace(card=card, pool=[], golden=golden(), heldout=[])
    lm = ScriptedLM()
    sim = TemplateSimulator(
        SimulationInputs(
            spec=run, task=task, encoder=None, lm_factory=lambda: lm, artifacts_dir=tmp_path
        )
    )
    gens = [g for c in sim.simulate([[Context(index=0, text="x", label=1)]]) for g in c]
    prompt, attrs = gens[0].details["prompt"], gens[0].details["attributes"]
    gap = "\n" + " " * 29
    assert prompt == (
        "Write a positive review for a restaurant, following the requirements below: "
        f"{gap}1. the overall review should be positive';"
        f"{gap}2. should be a '{attrs['cuisine']}' restaurant';  "
        f"{gap}3. should focus on '{attrs['subtopic']}'; "
        f"{gap}4. should be in length between {attrs['length']} words and "
        f"{int(attrs['length']) + 50} words;"
        f"{gap}5. the style of the review should be '{attrs['style']}'."
    )
    assert lm.calls[0][0] == [prompt]  # one user message (chat), nothing added
