"""Post-processing filters of ZeroGen, ProGen and AttrPrompt, as pure functions.

Each copies the semantics of the authors' code (file@commit in its docstring):
ZeroGen jiacheng-ye/ZeroGen@0581de7, ProGen HKUNLP/ProGen@43b7d25, AttrPrompt
yueyu1030/AttrPrompt@3a05ffd.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

_NO_PUNCT = str.maketrans("", "", string.punctuation)


def zerogen_cut(text: str) -> str | None:
    """The generated text up to its end marker, or None (rejected).

    ZeroGen `cls_generator.py:process_output`@0581de7 (identical in ProGen
    `cls_generator.py:process_output`@43b7d25): the text before the first `"`; without
    one, the text before the first `\\n`; without one, everything up to and including
    the last `.` (`'.'.join(text.split('.')[:-1]) + '.'`); without any, None. Nothing is
    stripped (the word count strips; the kept text does not)."""
    if '"' in text:
        return text.split('"')[0]
    if "\n" in text:
        return text.split("\n")[0]
    if "." in text:
        return ".".join(text.split(".")[:-1]) + "."
    return None


def word_count(text: str) -> int:
    """Words as ZeroGen and ProGen count them for `min_length`:
    `len(text.strip().split(' '))` (ZeroGen `cls_generator.py:process_output`@0581de7,
    ProGen `cls_generator.py:process_output`@43b7d25). Split on single spaces, so runs of
    spaces inside the text add empty "words", and an empty text counts 1."""
    return len(text.strip().split(" "))


def contains_refusal(text: str, phrases: Iterable[str]) -> bool:
    """Whether `text` contains any of `phrases` (case-sensitive substring), AttrPrompt's
    reject rule: `"I apologize" in msg or "sorry" in msg or "Sorry" in msg or
    "an AI language model" in msg or "I cannot perform" in msg`
    (`gen_train_data/gpt_gen_attrprompt.py:main`@3a05ffd)."""
    return any(p in text for p in phrases)


def clean_str(text: str) -> str:
    """AttrPrompt's `clean_str` (`gen_train_data/gpt_gen_attrprompt.py`@3a05ffd), applied
    to every kept reply: each character outside `[A-Za-z0-9(),.!?"']` becomes a space,
    then every run of 2+ whitespace characters becomes one space, then the ends are
    stripped."""
    text = re.sub(r"[^A-Za-z0-9(),.!?\"\']", " ", text)
    text = re.sub(r"\s{2,}", " ", text)
    return text.strip()


def _vocab(text: str) -> set[str]:
    return {w.strip() for w in text.lower().translate(_NO_PUNCT).strip().split()}


def demo_overlap(text: str, demo: str) -> float:
    """The share of `demo`'s word set found in `text`'s word set.

    ProGen `cls_generator.py:process_output`@43b7d25: both texts are lower-cased,
    stripped of `string.punctuation`, split on whitespace into sets; the output is
    dropped when `len(vocabs & x_vocabs) / len(x_vocabs) >= 0.9` for any shown demo
    (`text` is the output after the cut). A demo with no words gives 0.0 (the original
    would divide by zero)."""
    demo_words = _vocab(demo)
    if not demo_words:
        return 0.0
    return len(_vocab(text) & demo_words) / len(demo_words)


__all__ = ["clean_str", "contains_refusal", "demo_overlap", "word_count", "zerogen_cut"]
