"""Persona synthesis: the few-shot prompt with a pre-filled answer, greedy first then
seeded retries, rejection of copies and near duplicates, and the statistics fallback."""

from __future__ import annotations

import numpy as np

from mop_bench.lm.base import Completion, LMStats
from mop_bench.mop.persona_synth import (
    SHOTS,
    clean_persona,
    cluster_stats,
    distinctive_words,
    synthesizer_messages,
)
from mop_bench.mop.personas import PersonaSettings, synthesize
from mop_bench.spec import FitSpec
from tests.test_mop import make_pool


class ScriptedLM:
    """Answers the synthesizer by cluster (read from the prompt's texts) and attempt."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script
        self.calls: list[tuple[list[float], list]] = []
        self.stats = LMStats()
        self.name = "scripted"

    def generate(self, prompts, *, temperatures, seeds, max_new_tokens, top_p=1.0):
        self.calls.append((list(temperatures), prompts))
        out = []
        for msgs in prompts:
            assert msgs[-1] == {"role": "assistant", "content": "You are a"}
            asked = msgs[-2]["content"]
            key = next(k for k in self.script if k in asked)
            attempt = sum(1 for _, ps in self.calls for m in ps if key in m[-2]["content"]) - 1
            answers = self.script[key]
            out.append(Completion(answers[min(attempt, len(answers) - 1)], 5))
        return out


def test_synthesizer_retries_rejects_copies_and_falls_back_to_statistics() -> None:
    pool = make_pool(24)
    labels = np.array([i % 4 for i in range(24)])  # 4 clusters
    keys = {c: pool[c].text.split()[0] for c in range(4)}  # a word unique to each sample
    copy_of_shot = SHOTS[-1][1].removeprefix("You are a")
    script = {
        "visit 0": [copy_of_shot, " night owl who reviews cocktail bars with dry humour."],
        "visit 1": [" careful parent who judges diners by their kids' menus and prices."],
        "visit 2": [" careful parent who judges diners by their kids menus and the prices."],
        "visit 3": [" customer who is a customer who is a customer who is"],
    }
    del keys
    lm = ScriptedLM(script)
    fit = FitSpec(persona_cluster_samples=24)  # every text of a cluster is shown
    personas = synthesize(lm, pool, labels, 4, fit, PersonaSettings(), seed=0)
    assert [p.source for p in personas] == [
        "synthesized", "synthesized", "statistics_fallback", "statistics_fallback",
    ]  # fmt: skip
    assert personas[0].text == "You are a night owl who reviews cocktail bars with dry humour."
    # Greedy first, then seeded retries at the retry temperature, only for what failed.
    assert [temps[0] for temps, _ in lm.calls] == [0.0, 0.8, 0.8]
    assert [len(temps) for temps, _ in lm.calls] == [4, 3, 2]
    fallback = personas[3].text
    assert fallback.startswith("You are a writer of") and "%" not in fallback
    assert "words long" in fallback and personas[3].stats["median_words"] > 0


def test_statistics_line_and_prompt_shape() -> None:
    pool = make_pool(12)
    members = [ex for ex in pool if ex.label == 1]
    stats = cluster_stats(members, ["tasty", "fresh"])
    assert stats.summary().startswith("all positive")
    assert "Bars" in stats.summary() or "Cafes" in stats.summary()
    msgs = synthesizer_messages([ex.text for ex in members[:2]], stats)
    assert msgs[0]["role"] == "system" and msgs[-1] == {"role": "assistant", "content": "You are a"}
    assert len(msgs) == 3 + 2 * len(SHOTS)
    # The statistics go with the request only, not with the worked examples.
    assert "all positive" in msgs[-2]["content"]
    assert all("positive" not in m["content"] for m in msgs[1:-2] if m["role"] == "user")
    sentence = stats.sentence()
    assert "mostly" not in sentence and "positive texts" in sentence
    assert sentence.endswith("who often mentions tasty and fresh.")


def test_clean_persona_and_keywords() -> None:
    assert clean_persona("Sure! You are a night owl who loves bars. Also...", 40) == (
        "You are a night owl who loves bars."
    )
    assert clean_persona("A thrifty parent who reviews diners", 40) == (
        "You are a thrifty parent who reviews diners."
    )
    assert clean_persona(
        "You are Emily Carter, a stylist who loves shoes: they are my love.", 40
    ) == ("You are a stylist who loves shoes.")
    assert clean_persona("You are.", 40) is None
    assert clean_persona("", 40) is None
    # Pre-filled answers continue "You are a"; a small model's loop is cut.
    assert clean_persona(" loyal diner who praises fresh pasta. More", 40, prefilled=True) == (
        "You are a loyal diner who praises fresh pasta."
    )
    looped = " customer who loves spicy food and who loves spicy food and who loves"
    assert clean_persona(looped, 40, prefilled=True) == "You are a customer who loves spicy food."
    looped = " customer who writes about a customer who is a customer who is a customer"
    assert clean_persona(looped, 40, prefilled=True) is None  # "a customer who writes"
    texts = [
        "pizza pizza cheese kaitlynn kaitlynn kaitlynn",
        "pizza crust cheese",
        "pizza oven crust",
        "coffee latte beans",
        "latte coffee cup",
        "coffee espresso latte",
    ]
    words = distinctive_words(texts, np.array([0, 0, 0, 1, 1, 1]), 2, 3, 0.1)
    assert words[0][:2] == ["pizza", "cheese"] or words[0][:2] == ["pizza", "crust"]
    assert "kaitlynn" not in words[0]  # one review's name: below the document floor
    assert set(words[1][:2]) == {"coffee", "latte"}


def test_paraphrases_of_the_worked_examples_are_refused() -> None:
    from mop_bench.mop.persona_synth import accept, paraphrases_shot

    # the AG News leak of the published runs: Jaccard 0.46 with the first shot's answer
    leak = (
        "You are a disappointed buyer who writes blunt complaints about broken appliances "
        "and slow customer support."
    )
    assert paraphrases_shot(leak, 0.25, 3)
    assert accept(leak, [], 0.5) is None
    assert accept(leak, [], 0.5, shot_similarity=0.9, shot_shared_words=99) == leak  # old rule
    # three shared content words are enough, whatever the Jaccard similarity
    assert paraphrases_shot("You are a retired gardener who writes about roses.", 0.9, 3)
    news = "You are a political correspondent who files terse reports on elections abroad."
    assert not paraphrases_shot(news, 0.25, 3)
    assert accept(news, [], 0.5) == news
