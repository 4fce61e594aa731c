"""The literature generators' filters on planted outputs, against the authors' code:
ZeroGen jiacheng-ye/ZeroGen@0581de7 `cls_generator.py:process_output` (the cut and the
word count, identical in ProGen@43b7d25), AttrPrompt yueyu1030/AttrPrompt@3a05ffd
(`clean_str`, the refusal phrases), ProGen `utils.py` (demo overlap)."""

from __future__ import annotations

from mop_bench.literature.filters import (
    clean_str,
    contains_refusal,
    demo_overlap,
    word_count,
    zerogen_cut,
)
from tests.test_literature_prompts import settings


def test_zerogen_cut() -> None:
    assert zerogen_cut('A fine film with heart." Next review') == "A fine film with heart."
    assert zerogen_cut('line one\nline "two') == "line one\nline "  # the quote wins
    assert zerogen_cut("A fine film\nThe next") == "A fine film"
    assert zerogen_cut("One. Two. Three") == "One. Two."
    assert zerogen_cut("ends on a period.") == "ends on a period."
    assert zerogen_cut("no marker at all") is None
    assert zerogen_cut('"') == ""


def test_word_count_is_zerogens_split_on_spaces() -> None:
    assert word_count("  one two three ") == 3
    assert word_count("one  two") == 3  # split(' ') counts the empty piece
    assert word_count("") == 1


def test_contains_refusal() -> None:
    phrases = settings("attrprompt").refusals
    assert contains_refusal("I'm sorry, but I can't.", phrases)
    assert contains_refusal("As an AI language model, ...", phrases)
    assert not contains_refusal("SORRY for the wait, the food was great.", phrases)


def test_clean_str_exact() -> None:
    planted = 'Great food!!  Café — 5★ rating; "yum" (really)\n\tOK – Tex-Mex_bar 100% :)'
    assert clean_str(planted) == 'Great food!! Caf 5 rating "yum" (really) OK Tex Mex bar 100 )'
    assert clean_str("  It's ok, right?  ") == "It's ok, right?"


def test_demo_overlap() -> None:
    text = "The film was great, truly GREAT fun!"
    assert demo_overlap(text, "great fun film") == 1.0
    assert demo_overlap(text, "Great, fun film -- awful") == 0.75
    assert demo_overlap("don't", "Don't!") == 1.0
    assert demo_overlap(text, "...") == 0.0
