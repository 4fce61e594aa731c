"""The `format` metric on planted texts: each failure category found, clean real-looking
texts (including ones that use an assistant's words in passing) left alone, capped texts
reported but not counted, and the metric carried into a run report and a comparison's
summary exports."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_report import FAST, make_comparison, make_run

from mop_bench.cli import main
from mop_bench.metrics import BUILTIN_METRICS, METRICS, score_all
from mop_bench.metrics.format_failures import (
    ASSISTANT_PATTERNS,
    assistant_match,
    format_failures,
    is_empty,
)
from mop_bench.mop.prompts import CardPrompt, leak_patterns
from mop_bench.prompt_spec import PromptSpec
from mop_bench.report import build_leaderboard, render_comparison, render_run
from mop_bench.spec import MetricSpec

MIRRORS = Path(os.environ.get("MOP_BENCH_DATA_DIR", "/work/shared/data"))
YELP_CARD = CardPrompt(
    "Please write {context}.",
    "Yelp review of a business in the {category} category ({stars} out of 5 stars):",
)
YELP_PATTERNS = leak_patterns(PromptSpec(), YELP_CARD)

MARKUP = [
    "<Example> You have written: great tacos, friendly staff.",
    "Loved it.\nYelp review of a business in the Restaurants category (5 out of 5 stars):\nAlso good.",
    "Yelp review of a business in the Nightlife category (1 out of 5 stars): awful.",
    "Written by a retired teacher who loves brunch.\nThe eggs were perfect.",
    "Great pho.<|im_end|>",
]
ASSISTANT = [
    "Sure! Here's a review of a Mexican restaurant in the Restaurants category:",
    "Certainly, here is the article you asked for.",
    "Here is a 5-star review of a business in the Shopping category:\nThe store was tidy.",
    "As an AI language model, I have never eaten at a restaurant.",
    "I'm sorry, but I can't write a review of a business I know nothing about.",
    "I apologize, but I cannot help with that request.",
    "The staff were kind and the rooms clean. I hope this helps!",
    "Great coffee. Let me know if you'd like any changes to the tone.",
    "Below is your review: the burgers were juicy.",
    "Feel free to modify it to suit your needs.",
    "I'd be happy to write that review for you.",
    "Nice hotel. (Note: this review is fictional and was written as an example.)",
    "Based on your request, here is a short negative review.",
]
EMPTY = ["", "   \n\t ", "...", "a!"]
CLEAN = [
    "I'm sorry to say the food was cold and the waiter never came back.",
    "Sure, it's pricey, but the view makes up for it.",
    "Of course I ordered the lobster again. Worth every penny.",
    "Here's the thing: the pizza is great but the wait is long.",
    "Here's a review for people like me. This movie sucks from beginning to end.",
    "I can't help but love this place, the brisket is perfect.",
    "I'm sorry but I can't recommend the hotel to anyone.",
    "Feel free to ask for extra sauce, they never charge for it.",
    "I'd be happy to come back any time; the owner is lovely.",
    "I hope this helps someone decide. Five stars from me.",
    "(Note: they close at 9 on Sundays.) Great bagels though.",
    "The manager took my request for a quiet table seriously.",
    "I read a Yelp review of a business in the Bars category (4 out of 5 stars): it lied.",
    "This book was written by a friend of mine.",
    "Oil prices rose on Tuesday as traders weighed supply worries, analysts said.",
    "Stocks fell sharply in early trading after the Fed signalled higher rates",
    "ok",
]


def _positions(start: int, texts: list[str]) -> list[int]:
    return list(range(start, start + len(texts)))


def test_planted_texts_each_category_found_and_clean_texts_pass() -> None:
    texts = CLEAN + MARKUP + ASSISTANT + EMPTY
    result = format_failures(texts, markup_patterns=YELP_PATTERNS)
    d = result.details
    markup_at = _positions(len(CLEAN), MARKUP)
    assistant_at = _positions(len(CLEAN) + len(MARKUP), ASSISTANT)
    empty_at = _positions(len(CLEAN) + len(MARKUP) + len(ASSISTANT), EMPTY)
    assert d["failed_indices"] == markup_at + assistant_at + empty_at
    assert result.value == pytest.approx((len(texts) - len(CLEAN)) / len(texts))
    assert not result.higher_is_better and result.name == "format"
    assert d["markup"]["count"] == len(MARKUP) and d["assistant"]["count"] == len(ASSISTANT)
    assert d["empty"]["count"] == len(EMPTY)
    assert d["empty"]["share"] == pytest.approx(len(EMPTY) / len(texts))
    # At most 5 examples per category, each naming the text and what matched.
    assert [e["index"] for e in d["assistant"]["examples"]] == assistant_at[:5]
    assert d["markup"]["examples"][0]["match"] == "<Example>"
    assert "Yelp review of a business" in d["markup"]["examples"][1]["match"]
    # The patterns used are recorded with the result.
    assert result.settings["markup_patterns"] == list(YELP_PATTERNS)
    assert result.settings["assistant_patterns"] == [n for n, _ in ASSISTANT_PATTERNS]
    json.dumps(result.to_json(), allow_nan=False)  # survives metrics.json


@pytest.mark.skipif(not MIRRORS.is_dir(), reason="no data mirrors here")
@pytest.mark.parametrize("task", ["yelp", "ag_news"])
def test_real_test_split_scores_zero_with_its_cards_patterns(task: str) -> None:
    """The calibration: every real held-out text of the task passes (about 1 s each)."""
    from mop_bench.data import TASKS

    card = TASKS.get(task)
    patterns = leak_patterns(
        PromptSpec(), CardPrompt(card.request_template, card.completion_header)
    )
    texts = pd.read_parquet(MIRRORS / task / "test.parquet")["text"].astype(str).tolist()
    result = format_failures(texts, markup_patterns=patterns)
    assert len(texts) > 4000 and result.value == 0.0, result.details["failed_indices"][:5]


@pytest.mark.parametrize("text", CLEAN)
def test_clean_text_is_not_flagged(text: str) -> None:
    result = format_failures([text], markup_patterns=YELP_PATTERNS)
    assert result.value == 0.0, result.details


@pytest.mark.parametrize("text", ASSISTANT)
def test_assistant_text_is_flagged_by_assistant_check_only(text: str) -> None:
    assert assistant_match(text) is not None
    d = format_failures([text], markup_patterns=YELP_PATTERNS).details
    assert d["assistant"]["count"] == 1 and d["empty"]["count"] == 0


def test_empty_means_fewer_than_two_word_characters() -> None:
    assert [is_empty(t) for t in EMPTY] == [True] * len(EMPTY)
    assert not is_empty("ok") and not is_empty("  42  ")


def test_leak_patterns_of_a_yelp_card_find_the_header_only_at_a_line_start() -> None:
    header = "Yelp review of a business in the Food category (2 out of 5 stars):"
    at_start = format_failures([header + "\nmeh"], markup_patterns=YELP_PATTERNS)
    assert at_start.details["markup"]["count"] == 1
    inline = format_failures(["They quoted a " + header + " meh"], markup_patterns=YELP_PATTERNS)
    assert inline.details["markup"]["count"] == 0
    persona = format_failures(["Written by a nurse.\nok"], markup_patterns=YELP_PATTERNS)
    assert persona.value == 1.0
    # Without the prompt's patterns the header is not markup, and the settings say so.
    bare = format_failures([header + "\nmeh"])
    assert bare.value == 0.0 and "no prompt leak patterns" in bare.settings["markup_source"]
    # The tagged-chat tags are found whatever the prompt style.
    tagged = leak_patterns(PromptSpec(style="chat_tagged"), YELP_CARD)
    assert format_failures(["</Persona> hi there"], markup_patterns=tagged).value == 1.0


def test_capped_texts_are_reported_but_not_failures() -> None:
    texts = ["The ribs were tender and the sauce was", "Great.", "Lovely patio and", "Fine."]
    details: list[dict[str, Any]] = [
        {"ended": "cap", "n_tokens": 8},
        {"ended": "stop", "n_tokens": 2},
        {"ended": "cap", "n_tokens": 8},
        {"ended": "eos", "n_tokens": 2},
    ]
    result = format_failures(texts, details=details, max_new_tokens=8)
    assert result.value == 0.0
    capped = result.details["capped"]
    assert capped["count"] == 2 and capped["share"] == 0.5 and capped["unknown"] == 0
    assert [e["index"] for e in capped["examples"]] == [0, 2]
    assert result.settings["max_new_tokens"] == 8
    # The real calibration's length-matched texts record `truncated` instead.
    real = format_failures(texts[:2], details=[{"truncated": True}, {"tokens": 3}])
    assert real.details["capped"] == {
        "share": 1.0,
        "count": 1,
        "unknown": 1,
        "examples": [{"index": 0}],
    }
    assert format_failures(texts).details["capped"]["share"] is None


def test_bad_inputs_raise_instead_of_scoring() -> None:
    with pytest.raises(ValueError, match="no synthetic texts"):
        format_failures([])
    with pytest.raises(ValueError, match="1 generation details for 2 texts"):
        format_failures(["a b", "c d"], details=[{}])
    with pytest.raises(ValueError, match="does not compile"):
        format_failures(["a b"], markup_patterns=["(unclosed"])


def test_score_all_runs_format_with_the_prompt_patterns(capsys: pytest.CaptureFixture) -> None:
    assert "format" in BUILTIN_METRICS and "format" in METRICS.names()
    assert main(["ls", "metrics"]) == 0 and "format" in capsys.readouterr().out.split()
    rng = np.random.default_rng(3)
    texts = ["<Persona> a chef", "The soup was hot and fresh."] * 10
    kwargs: dict[str, Any] = {
        "real": rng.normal(size=(30, 8)),
        "synth": rng.normal(size=(20, 8)),
        "real_labels": None,
        "synth_labels": None,
        "pool": rng.normal(size=(10, 8)),
        "pool_labels": None,
        "pool_texts": [f"pool {i}" for i in range(10)],
        "synth_texts": texts,
        "label_names": (),
        "spec": MetricSpec(),
        "seed": 0,
        "names": ["format"],
    }
    results, errors = score_all(
        **kwargs, leak_patterns=YELP_PATTERNS, synth_details=[{"ended": "cap"}] * 20
    )
    assert errors == {} and results["format"].value == 0.5
    assert results["format"].settings["markup_patterns"] == list(YELP_PATTERNS)
    assert results["format"].details["capped"]["share"] == 1.0
    with pytest.raises(ValueError, match="synth_details has 3 entries"):
        score_all(**kwargs, synth_details=[{}] * 3)


def _write_format(run: Path, texts: list[str]) -> None:
    """Give a fake run these generations and the `format` result computed from them."""
    gens = [
        {"index": i, "context": "ctx", "label": i % 4, "text": t, "details": {"ended": "stop"}}
        for i, t in enumerate(texts)
    ]
    (run / "generations.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens))
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["format"] = format_failures(
        texts, markup_patterns=YELP_PATTERNS, details=[g["details"] for g in gens]
    ).to_json()
    (run / "metrics.json").write_text(json.dumps(metrics))


def test_format_reaches_the_comparison_exports_and_the_run_report(tmp_path: Path) -> None:
    comp = make_comparison(tmp_path, odd_one=False)
    clean = [f"The soup was hot and the bread fresh, visit {i}." for i in range(20)]
    for run in sorted((comp / "ag_news").iterdir()):
        spec = json.loads((run / "config.json").read_text())["spec"]
        # assistant replies per 20 texts: mop 2-4, fixed-few-shot 10-12, real none
        bad = {"mop": 2, "fixed-few-shot": 10, "real": 0}[spec["simulator"]["name"]]
        bad += spec["seed"] if bad else 0
        _write_format(run, ASSISTANT[:bad] + clean[bad:])
    render_comparison(comp, bootstrap=FAST)

    df = pd.read_csv(comp / "summary.csv")
    rows = df[df.metric == "format"].set_index("simulator")
    assert set(rows.index) == {"mop", "fixed-few-shot", "real"}
    assert not rows["higher_is_better"].any()
    assert rows.loc["mop", "mean"] == pytest.approx(0.15)  # 2, 3, 4 of 20
    assert rows.loc["fixed-few-shot", "mean"] == pytest.approx(0.55)  # 10, 11, 12 of 20
    assert rows.loc["mop", "rank"] == 1 and rows.loc["fixed-few-shot", "rank"] == 2
    assert rows.loc["real", "mean"] == 0.0 and bool(rows.loc["real", "calibration"])
    records = json.loads((comp / "summary.json").read_text())
    assert any(r["metric"] == "format" and r["simulator"] == "mop" for r in records)
    md = (comp / "summary.md").read_text()
    assert "format failures ↓" in md
    html = (comp / "comparison.html").read_text()
    assert "format failures" in html
    board = build_leaderboard(comp, render_runs=False)
    lb = pd.read_csv(board.with_suffix(".csv"))
    assert lb[(lb.metric == "format") & (lb.simulator == "mop")]["mean"].iloc[0] == pytest.approx(
        0.15
    )

    mop_run = next(r for r in (comp / "ag_news").iterdir() if r.name.startswith("mop-"))
    page = render_run(mop_run).read_text()
    assert "Format failures (" in page and "reads as an assistant&#39;s reply" in page
    assert "Sure! Here&#39;s a review of a Mexican restaurant" in page
    assert "assistant 0." in page and "markup 0.000" in page


def test_fake_run_helper_still_lacks_format_so_the_test_above_adds_it(tmp_path: Path) -> None:
    # Guards the export test: it must not pass on a `format` entry make_run wrote itself.
    run = make_run(tmp_path)
    assert "format" not in json.loads((run / "metrics.json").read_text())


def test_score_stage_scores_format_on_a_real_run_and_adds_it_to_old_metrics(
    tmp_path: Path,
) -> None:
    """A `real` calibration run (fake encoder): its texts score 0, its patterns and
    capped share are recorded, and a metrics.json written before `format` existed is
    scored again instead of being reused without it."""
    from test_runner import WORDS, _spec, _workspace

    from mop_bench import store
    from mop_bench.runner import RunOptions, run

    rng = np.random.default_rng(0)
    rows = ["text,label"]
    for i in range(400):
        words = rng.choice(WORDS[i % 2].split(), size=12).tolist()
        rows.append(f"{' '.join(words)} w{i},{'pos' if i % 2 else 'neg'}")
    csv = tmp_path / "weather.csv"
    csv.write_text("\n".join(rows) + "\n")
    ws = _workspace()
    opts = RunOptions(results_dir=tmp_path / "res", progress=False, report=False)
    spec = _spec(csv)
    run_dir = run(spec, opts, ws)
    metrics = store.read_json(run_dir / "metrics.json")
    fmt = metrics["format"]
    assert fmt["value"] == 0.0 and fmt["higher_is_better"] is False
    assert "<\\s*/?\\s*(Persona|Example|Instruction)\\s*>" in fmt["settings"]["markup_patterns"]
    assert fmt["settings"]["max_new_tokens"] == spec.budget.max_new_tokens
    assert fmt["details"]["capped"]["unknown"] == 0  # real rows record `truncated`

    del metrics["format"]  # as a run scored before the metric existed
    store.write_json(run_dir / "metrics.json", metrics)
    run(spec, opts, ws)
    assert store.read_json(run_dir / "metrics.json")["format"]["value"] == 0.0
