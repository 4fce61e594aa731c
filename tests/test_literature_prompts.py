"""The literature generators' recorded strings (baselines/zerogen.yaml, progen.yaml,
attrprompt.yaml), and AttrPrompt's attribute loader (the filters: test_literature_filters.py), checked
against literals copied from the authors' code:

- ZeroGen jiacheng-ye/ZeroGen@0581de7 (tasks/imdb/imdb-x{1,2}.json, cls_generator.py);
- ProGen HKUNLP/ProGen@43b7d25 (tasks/{mv_cls2,yelp}/p3.json, utils.py, cls_generator.py);
- AttrPrompt yueyu1030/AttrPrompt@3a05ffd (gen_train_data/gpt_gen_attrprompt.py, utils.py).

Tests reading AttrPrompt's attribute files use $MOP_BENCH_DATA_DIR (default: the shared
data folder beside the repository) and are skipped when <data dir>/attrprompt is missing.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mop_bench.data import load_card
from mop_bench.literature.attributes import (
    AttributeSet,
    clean_subtopic,
    load_attributes,
)
from mop_bench.literature.settings import TaskPrompts, TemplateSettings
from mop_bench.registry import cards_dir
from mop_bench.simulators import load_simulator_file

DATA = Path(
    os.environ.get("MOP_BENCH_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
SP29 = " " * 29
SP28 = " " * 28


def settings(name: str) -> TemplateSettings:
    path = cards_dir("baselines") / f"{name}.yaml"
    spec = load_simulator_file(path)
    assert spec.kind == "template" and spec.label_prior == "balanced" and spec.description
    return TemplateSettings.from_mapping(spec.template, str(path))


def label_names(task: str) -> list[str]:
    return list(load_card(cards_dir("tasks") / f"{task}.yaml").label_names)


def render(p: TaskPrompts, label: int, **fields: str) -> str:
    return p.prompt.format(label_word=p.label_words[label], **fields)


@pytest.fixture(scope="module")
def data_dir() -> Path:
    if not (DATA / "attrprompt").is_dir():
        pytest.skip(
            f"AttrPrompt's attribute files not found under {DATA / 'attrprompt'}; "
            "set MOP_BENCH_DATA_DIR to the data folder holding attrprompt/"
        )
    return DATA


# --------------------------------------------------------------------------- the files


@pytest.mark.parametrize("name", ["zerogen", "progen", "attrprompt"])
def test_each_file_covers_the_three_tasks_with_matching_labels(name: str) -> None:
    s = settings(name)
    assert set(s.prompts) == {"imdb", "yelp", "ag_news"}
    for task, p in s.prompts.items():
        assert len(p.label_words) == len(label_names(task)), task
        assert p.source


def test_label_words_map_by_meaning() -> None:
    # ZeroGen's imdb-x2.json key "0" is *positive*; our label 1 is positive.
    assert label_names("imdb") == ["negative", "positive"]
    for name in ("zerogen", "progen", "attrprompt"):
        for task in ("imdb", "yelp"):
            assert settings(name).for_task(task).label_words == ("negative", "positive")
        # AttrPrompt's class names (label.txt lower-cased, "_" -> " ") in our id order.
        assert settings(name).for_task("ag_news").label_words == (
            "world", "sports", "business", "sci tech",
        )  # fmt: skip


def test_zerogen_strings_and_recipe() -> None:
    s = settings("zerogen")
    imdb = s.for_task("imdb")
    assert imdb.context_prompt == 'Movie: "'
    assert render(imdb, 1, context="Titanic") == (
        'The movie review in positive sentiment for movie "Titanic" is: "'
    )
    assert render(imdb, 0, context="Titanic") == (
        'The movie review in negative sentiment for movie "Titanic" is: "'
    )
    yelp = s.for_task("yelp")
    assert yelp.context_prompt == 'Restaurant name: "'
    assert render(yelp, 0, context="Nobu") == (
        'The restaurant review in negative sentiment for restaurant "Nobu" is: "'
    )
    assert s.for_task("ag_news").source.startswith("ours")
    assert (s.chat, s.contexts, s.cut, s.demos) == (False, "generated", "quote", "none")
    assert (s.exact_tokens, s.top_p, s.context_tokens, s.samples_per_context) == (40, 0.9, 10, 32)
    assert (s.min_words, s.context_min_words, s.drop_context_copies, s.dedupe) == (
        10,
        1,
        True,
        True,
    )


def test_progen_strings_and_demo_format() -> None:
    s = settings("progen")
    imdb = s.for_task("imdb")
    assert imdb.context_prompt == 'Movie: "'
    assert imdb.demo == 'The movie review for movie "{context}" is: "{text}"'
    demos = [
        imdb.demo.format(context="Alien", text="A tense classic."),
        imdb.demo.format(context="Heat", text="Too long by an hour."),
    ]
    # utils.py build_instruction: '\n\n'.join(e) + '\n\n' in place of <E>.
    shown = "".join(d + s.demo_separator for d in demos)
    assert render(imdb, 1, context="Titanic", demos=shown) == (
        'The movie review for movie "Alien" is: "A tense classic."\n\n'
        'The movie review for movie "Heat" is: "Too long by an hour."\n\n'
        'The movie review in positive sentiment for movie "Titanic" is: "'
    )
    # Without demos, <E> is replaced by "": ZeroGen's prompt.
    assert render(imdb, 0, context="Titanic", demos="") == (
        'The movie review in negative sentiment for movie "Titanic" is: "'
    )
    yelp = s.for_task("yelp")
    assert yelp.context_prompt == 'Restaurant name: "'
    assert yelp.demo.format(context="Nobu", text="Fine.") == (
        'The restaurant review for restaurant "Nobu" is: "Fine."'
    )
    assert render(yelp, 1, context="Nobu", demos="") == (
        'The restaurant review in positive sentiment for restaurant "Nobu" is: "'
    )
    assert s.for_task("ag_news").source.startswith("ours")
    assert (s.demos, s.demos_per_prompt, s.demo_prob, s.demo_overlap) == ("own", 8, 0.5, 0.9)
    assert (s.exact_tokens, s.top_p, s.min_words, s.demo_separator) == (100, 0.9, 10, "\n\n")
    assert s.rounds == (100, 400, 1200, 3200, 8000, 19200)


def test_attrprompt_settings() -> None:
    s = settings("attrprompt")
    assert (s.chat, s.contexts, s.top_p, s.exact_tokens, s.clean_str) == (
        True, "attributes", 1.0, 0, True,
    )  # fmt: skip
    assert s.refusals == (
        "I apologize",
        "sorry",
        "Sorry",
        "an AI language model",
        "I cannot perform",
    )
    assert {t: p.attributes for t, p in s.prompts.items()} == {
        "imdb": "sst-2", "yelp": "yelp", "ag_news": "agnews",
    }  # fmt: skip


YELP_STYLE_4 = (
    "Comparative Style: Compares the restaurant to similar establishments in terms of "
    "cuisine, price range, service quality, or other relevant factors. "
)


def test_attrprompt_yelp_prompt_is_byte_exact() -> None:
    p = settings("attrprompt").for_task("yelp")
    fields = {
        "cuisine": "Turkish",
        "subtopic": "Service: Attentive, friendly, and prompt service from the restaurant staff.",
        "length": "30",
        "length_max": "80",
        "style": YELP_STYLE_4,
    }
    assert render(p, 1, **fields) == (
        "Write a positive review for a restaurant, following the requirements below: \n"
        + SP29 + "1. the overall review should be positive';\n"
        + SP29 + "2. should be a 'Turkish' restaurant';  \n"
        + SP29 + "3. should focus on 'Service: Attentive, friendly, and prompt service from the restaurant staff.'; \n"
        + SP29 + "4. should be in length between 30 words and 80 words;\n"
        + SP29 + "5. the style of the review should be 'Comparative Style: Compares the restaurant "
        "to similar establishments in terms of cuisine, price range, service quality, or other "
        "relevant factors. '."
    )  # fmt: skip


def test_attrprompt_agnews_and_sst2_prompts_are_byte_exact() -> None:
    s = settings("attrprompt")
    news = render(
        s.for_task("ag_news"), 3,
        subtopic="D printing", length="100", length_max="150",
        style="Op-Eds: x", location="New Zealand",
    )  # fmt: skip
    assert news == (
        "Give a synthetic sample of news on sci tech following the requirements below: \n"
        + SP28 + "1. should focus on 'D printing';\n"
        + SP29 + "2. should be in length between 100 words and 150 words;\n"
        + SP29 + "3. The writing style of the news should be 'Op-Eds: x';\n"
        + SP29 + "4. The location of the news should be in New Zealand. \n"
    )  # fmt: skip
    movie = render(
        s.for_task("imdb"), 0,
        genre="Drama", subtopic="Weak Plot: dull.", length="30", length_max="80", style="Analytical: a.",
    )  # fmt: skip
    assert movie == (
        "Write a negative review for a movie, following the requirements below: \n"
        + SP29 + "1. the overall rating should be negative;\n"
        + SP29 + "2. the review should discuss about a Drama movie;  \n"
        + SP29 + "3. the review should focus on 'Weak Plot: dull.'; \n"
        + SP29 + "4. should be in length between 30 words and 80 words;\n"
        + SP29 + "5. the style of the review should be 'Analytical: a.'."
    )  # fmt: skip


def original_prompt_input(dataset: str, class_name: str, prompt_tmp: dict[str, str]) -> str:
    """The three `prompt_input` f-strings of yueyu1030/AttrPrompt@3a05ffd
    gen_train_data/gpt_gen_attrprompt.py, copied verbatim (continuation lines included)."""
    if dataset == "sst2":
        return f"Write a {re.sub('_', ' ', class_name)} review for a movie, following the requirements below: \n \
                            1. the overall rating should be {re.sub('_', ' ', class_name)};\n \
                            2. the review should discuss about a {prompt_tmp['genre']} movie;  \n \
                            3. the review should focus on '{prompt_tmp['subtopics']}'; \n \
                            4. should be in length between {prompt_tmp['length']} words and {int(prompt_tmp['length']) + 50} words;\n \
                            5. the style of the review should be '{prompt_tmp['style']}'."
    if dataset == "yelp":
        return f"Write a {re.sub('_', ' ', class_name)} review for a restaurant, following the requirements below: \n \
                            1. the overall review should be {re.sub('_', ' ', class_name)}';\n \
                            2. should be a '{prompt_tmp['cuisine']}' restaurant';  \n \
                            3. should focus on '{prompt_tmp['subtopics']}'; \n \
                            4. should be in length between {prompt_tmp['length']} words and {int(prompt_tmp['length']) + 50} words;\n \
                            5. the style of the review should be '{prompt_tmp['style']}'."
    if dataset == "agnews":
        return f"Give a synthetic sample of news on {re.sub('_', ' ', class_name)} following the requirements below: \n\
                            1. should focus on '{prompt_tmp['subtopics']}';\n \
                            2. should be in length between {prompt_tmp['length']} words and {int(prompt_tmp['length']) + 50} words;\n \
                            3. The writing style of the news should be '{prompt_tmp['style']}';\n \
                            4. The location of the news should be in {prompt_tmp['location']}. \n"
    raise ValueError(dataset)


@pytest.mark.parametrize(
    ("task", "dataset"), [("imdb", "sst2"), ("yelp", "yelp"), ("ag_news", "agnews")]
)
def test_attrprompt_prompts_equal_the_original_fstrings_on_drawn_tuples(
    data_dir: Path, task: str, dataset: str
) -> None:
    p = settings("attrprompt").for_task(task)
    attrs = load_attributes(data_dir, p.attributes, label_names(task))
    rng = np.random.default_rng(7)
    for label, class_name in enumerate(attrs.classes):
        for _ in range(20):
            fields = attrs.draw(label, rng)
            prompt_tmp = {("subtopics" if k == "subtopic" else k): v for k, v in fields.items()}
            assert render(p, label, **fields) == original_prompt_input(
                dataset, class_name, prompt_tmp
            )


# --------------------------------------------------------------------------- attributes


def test_attribute_counts_match_the_shipped_files(data_dir: Path) -> None:
    yelp = load_attributes(data_dir, "yelp", label_names("yelp"))
    assert yelp.classes == ("negative", "positive")
    for name in yelp.classes:
        assert yelp.attribute_counts()[name] == {
            "length": 2, "cuisine": 30, "subtopic": 11, "style": 5, "combinations": 3300,
        }  # fmt: skip
    news = load_attributes(data_dir, "agnews", label_names("ag_news"))
    assert news.classes == ("world", "sports", "business", "sci_tech")
    counts = news.attribute_counts()
    assert {c: counts[c]["subtopic"] for c in news.classes} == {
        "world": 16, "sports": 21, "business": 18, "sci_tech": 20,
    }  # fmt: skip
    assert all(
        (counts[c]["location"], counts[c]["style"], counts[c]["length"]) == (30, 5, 2)
        for c in news.classes
    )
    assert [counts[c]["combinations"] for c in news.classes] == [4800, 6300, 5400, 6000]
    movie = load_attributes(data_dir, "sst-2", label_names("imdb"))
    for name in movie.classes:
        assert movie.attribute_counts()[name] == {
            "length": 2, "genre": 10, "subtopic": 11, "style": 4, "combinations": 880,
        }  # fmt: skip


def test_attribute_values_are_read_as_the_original_reads_them(data_dir: Path) -> None:
    news = load_attributes(data_dir, "agnews", label_names("ag_news"))
    sci = news.subtopics[3]
    assert "D printing" in sci and "3D printing" not in sci
    assert (
        sci[0] == "Artificial intelligence" and sci[-1] == "Others subtopics_filter for sci_tech."
    )
    assert news.subtopics[0][-1] == "Others subtopics_filter for world."
    assert news.generic["length"] == ("30", "100")
    assert news.generic["location"][:2] == ("Germany", "France")
    yelp = load_attributes(data_dir, "yelp", label_names("yelp"))
    assert yelp.generic["style"][3] == YELP_STYLE_4  # trailing space kept
    assert yelp.generic["style"][4].endswith("restaurant. ")
    assert yelp.subtopics[0][-1] == "Others subtopics_filter for negative."
    assert (
        yelp.subtopics[1][0]
        == "Quality of Food: The taste, flavor, and presentation of the dishes."
    )


def test_draws_are_seeded_uniform_and_class_conditional(data_dir: Path) -> None:
    yelp = load_attributes(data_dir, "yelp", label_names("yelp"))
    a = [yelp.draw(1, np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng1, rng2 = np.random.default_rng(11), np.random.default_rng(11)
    seq1 = [yelp.draw(i % 2, rng1) for i in range(50)]
    assert seq1 == [yelp.draw(i % 2, rng2) for i in range(50)]
    first = seq1[0]
    assert set(first) == {"length", "cuisine", "subtopic", "style", "length_max"}
    assert first["length_max"] == str(int(first["length"]) + 50)
    rng = np.random.default_rng(0)
    draws = [yelp.draw(0, rng) for _ in range(3000)]
    subtopics = Counter(d["subtopic"] for d in draws)
    assert set(subtopics) == set(yelp.subtopics[0])  # negative's, "Others" included
    assert max(subtopics.values()) < 2 * min(subtopics.values())
    assert set(Counter(d["cuisine"] for d in draws)) == set(yelp.generic["cuisine"])
    assert {d["length_max"] for d in draws} == {"80", "150"}


def _plant(root: Path, label_txt: str, subtopic_lines: str) -> Path:
    base = root / "attrprompt" / "yelp"
    attr = base / "attrprompt" / "gpt-3.5-turbo"
    for name, text in {
        "length/length.txt": "30\n100",
        "cuisine/cuisine.txt": "Thai \nKorean\n",
        "style/style.txt": "Plain",
        "subtopics/negative.jsonl": "Slow",
        "subtopics/positive.jsonl": subtopic_lines,
    }.items():
        (attr / name).parent.mkdir(parents=True, exist_ok=True)
        (attr / name).write_text(text, encoding="utf-8")
    (base / "label.txt").write_text(label_txt, encoding="utf-8")
    return root


def test_subtopic_cleaning_reproduces_the_original(tmp_path: Path) -> None:
    lines = "1. Fresh food\n3D printing\n\"3D printing\"\n- (Decor)\n\n2.  12. Twice numbered\n'Quiet' \n"
    root = _plant(tmp_path, "Negative\nPositive", lines)
    attrs = load_attributes(root, "yelp", ["negative", "positive"])
    assert attrs.subtopics[1] == (
        "Fresh food", "D printing", "3D printing", "(Decor)", "Twice numbered", "Quiet'",
        "Others subtopics_filter for positive.",
    )  # fmt: skip
    assert attrs.generic["cuisine"] == ("Thai ", "Korean")  # only the newline stripped
    assert clean_subtopic("3D printing\n") == "D printing"
    assert clean_subtopic("10. Topic") == "Topic"


def test_loader_errors_name_the_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load_attributes(tmp_path / "nowhere", "yelp", ["negative", "positive"])
    msg = str(err.value)
    assert "attrprompt" in msg and "MOP_BENCH_DATA_DIR" in msg and "--data-dir" in msg
    assert str(tmp_path / "nowhere") in msg
    root = _plant(tmp_path, "negative\npositive", "Good")
    (root / "attrprompt/yelp/attrprompt/gpt-3.5-turbo/cuisine/cuisine.txt").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("cuisine/cuisine.txt")) as err:
        load_attributes(root, "yelp", ["negative", "positive"])
    assert str(root) in str(err.value)
    with pytest.raises(ValueError, match="do not match"):
        load_attributes(root, "yelp", ["bad", "good"])
    with pytest.raises(ValueError, match="unknown AttrPrompt attribute folder"):
        load_attributes(root, "imdb", ["negative", "positive"])


def test_attribute_set_rejects_an_unknown_label() -> None:
    attrs = AttributeSet("yelp", ("negative",), ("style",), {"style": ("a",)}, ((),))
    with pytest.raises(ValueError, match="out of range"):
        attrs.draw(1, np.random.default_rng(0))
