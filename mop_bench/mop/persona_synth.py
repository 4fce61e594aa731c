"""Writing a persona for a cluster of real texts: the LM synthesizer and its fallback.

The paper does not publish its synthesizer prompt. A 135M chat model asked plainly for
"one sentence that starts with You are" mostly answers in the first person, in the
third person, or not at all (issue 9: 9 of 16 personas were fallbacks). What works at
that size, and costs nothing at any other:
- a few-shot prompt: two worked examples from other domains (news, products), so the
  model sees the form without being pulled toward any task's vocabulary;
- the cluster's own statistics in the request (label mix, dominant context fields),
  which ground the persona in what the cluster is;
- the assistant turn pre-filled with "You are a", and greedy decoding, so the answer is
  a persona sentence by construction and does not depend on a sampling seed;
- a cleaner that keeps the first sentence and cuts a small model's repetition loops
  ("a customer who is a customer who is ...").
A cluster whose answer is still unusable gets a persona written from its statistics
(label mix, context fields, typical length, distinctive words used by several of its
texts), recorded as `statistics_fallback`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mop_bench.types import Example

PREFILL = "You are a"

SYSTEM = "You describe, in one sentence, the kind of person who wrote a group of texts."

#: Worked examples (texts, answer) from domains no bundled task covers. The request
#: carries the cluster's statistics line; the examples do not (with it, a 135M model
#: copied the example whose statistics looked most alike). The model still tends to
#: copy the last answer, which `accept` rejects.
SHOTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        (
            "Battery died after two weeks and support never answered my emails.",
            "Cheap plastic, the hinge snapped on day one. Returned it.",
        ),
        "You are a disappointed buyer who writes short, blunt complaints about broken "
        "gadgets and bad customer support.",
    ),
    (
        (
            "The ramen broth was rich and the noodles chewy, best bowl in town.",
            "Great pho, huge portions, cheap. The staff remembered my order.",
        ),
        "You are a budget-minded noodle lover who praises big portions, rich broth and "
        "friendly staff in short, upbeat reviews.",
    ),
    (
        (
            "Mulch the roses before the first frost and they will thank you in May.",
            "My tomatoes split again after the heavy rain; next year I water less.",
        ),
        "You are a retired gardener who shares patient, practical tips about roses and "
        "vegetable beds.",
    ),
)


@dataclass(frozen=True)
class ClusterStats:
    """What a cluster of pool examples is, in numbers and words."""

    size: int
    labels: list[tuple[str, float]]
    """Label names with their share, most common first."""
    fields: dict[str, list[tuple[str, float]]]
    """Other context fields (category, stars...) with their value shares."""
    median_words: int
    keywords: list[str]
    """Distinctive words used by several of the cluster's texts."""

    def summary(self) -> str:
        """A short statistics line for the synthesizer prompt."""
        parts = []
        if self.labels:
            name, share = self.labels[0]
            parts.append(f"{'all' if share >= 0.99 else 'mostly'} {name}")
        for field, values in self.fields.items():
            top = [v for v, s in values[:2] if s >= 0.2] or [values[0][0]]
            parts.append(f"{' or '.join(top)} {field}" if field == "stars" else ", ".join(top))
        return "; ".join(parts)

    def sentence(self) -> str:
        """The statistics fallback persona, in words (the numbers stay in the record)."""
        text = "You are a writer of"
        if self.labels:
            name, share = self.labels[0]
            text += f" {'' if share >= 0.99 else 'mostly '}{name} texts"
        else:
            text += " texts"
        for field, values in self.fields.items():
            top = [v for v, s in values[:2] if s >= 0.2] or [values[0][0]]
            text += f", {field} {' or '.join(top)}" if field in ("stars", "rating") else ""
            text += f" about {' and '.join(top)}" if field not in ("stars", "rating") else ""
        text += f", usually about {self.median_words} words long"
        if self.keywords:
            listed = ", ".join(self.keywords[:-1]) + f" and {self.keywords[-1]}"
            text += f", who often mentions {listed if len(self.keywords) > 1 else self.keywords[0]}"
        return text + "."


def cluster_stats(
    members: Sequence[Example],
    keywords: list[str],
    label_names: Sequence[str] | None = None,
) -> ClusterStats:
    n = len(members)
    labels = Counter(
        ex.fields.get("label_name", ex.label) for ex in members if ex.label is not None
    )
    fields: dict[str, list[tuple[str, float]]] = {}
    for name in sorted({f for ex in members for f in ex.fields} - {"label_name"}):
        counts = Counter(str(ex.fields.get(name)) for ex in members if name in ex.fields)
        fields[name] = [(v, c / n) for v, c in counts.most_common(3)]
    words = sorted(len(ex.text.split()) for ex in members)
    return ClusterStats(
        size=n,
        labels=[(str(k), c / n) for k, c in labels.most_common()],
        fields=fields,
        median_words=int(words[len(words) // 2]) if words else 0,
        keywords=keywords,
    )


def distinctive_words(
    texts: Sequence[str], labels: np.ndarray, k: int, n_terms: int, min_df: float
) -> list[list[str]]:
    """Per cluster, the words most over-represented against the other clusters among
    those that appear in at least `min_df` (a share, and at least 2) of the cluster's
    texts: a name that one review repeats is not what a group of writers talks about."""
    from sklearn.feature_extraction.text import CountVectorizer

    vec = CountVectorizer(
        stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]{2,}\b",  # words of 3+ letters: drops "br", ids
        binary=True,
        lowercase=True,
    )
    try:
        mat = vec.fit_transform(texts).tocsc()
    except ValueError:  # no usable words at all
        return [[] for _ in range(k)]
    vocab = np.array(vec.get_feature_names_out())
    out = []
    for c in range(k):
        inside = labels == c
        if not inside.any():
            out.append([])
            continue
        df_in = np.asarray(mat[inside].mean(axis=0)).ravel()
        df_out = np.asarray(mat[~inside].mean(axis=0)).ravel() if (~inside).any() else 0.0
        floor = max(min_df, 2 / inside.sum())
        score = np.where(df_in >= floor, df_in - df_out, -np.inf)
        order = [i for i in np.argsort(-score, kind="stable")[:n_terms] if np.isfinite(score[i])]
        out.append(vocab[order].tolist())
    return out


def synthesizer_messages(samples: Sequence[str], stats: ClusterStats) -> list[dict[str, str]]:
    """The few-shot synthesizer prompt, ending in the pre-filled answer."""

    def ask(texts: Sequence[str], summary: str | None) -> str:
        listed = "\n".join(f"- {t}" for t in texts)
        head = f"Texts ({summary}):" if summary else "Texts:"
        return f"{head}\n{listed}\nDescribe the writer in one sentence."

    msgs = [{"role": "system", "content": SYSTEM}]
    for texts, answer in SHOTS:
        msgs += [
            {"role": "user", "content": ask(texts, None)},
            {"role": "assistant", "content": answer},
        ]
    msgs += [
        {"role": "user", "content": ask(samples, stats.summary() or None)},
        {"role": "assistant", "content": PREFILL},
    ]
    return msgs


def _content_words(text: str) -> set[str]:
    stop = {"you", "are", "a", "an", "the", "who", "and", "or", "of", "in", "about", "with",
            "to", "your", "their", "is", "that", "for", "on", "writes", "person"}  # fmt: skip
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in stop}


def too_similar(a: str, b: str, threshold: float) -> bool:
    """Content-word Jaccard similarity of two persona sentences at or above `threshold`."""
    wa, wb = _content_words(a), _content_words(b)
    return bool(wa and wb) and len(wa & wb) / len(wa | wb) >= threshold


def paraphrases_shot(persona: str, jaccard: float, shared_words: int) -> bool:
    """Whether `persona` borrows from a worked example's answer: content-word Jaccard
    similarity at or above `jaccard`, or `shared_words` content words in common."""
    mine = _content_words(persona)
    for _, answer in SHOTS:
        theirs = _content_words(answer)
        if too_similar(persona, answer, jaccard) or len(mine & theirs) >= shared_words:
            return True
    return False


def accept(
    persona: str | None,
    earlier: Sequence[str],
    threshold: float,
    *,
    shot_similarity: float = 0.25,
    shot_shared_words: int = 3,
) -> str | None:
    """`persona` unless it is unusable, a paraphrase of a worked example's answer (a
    stricter test than between personas: the model copies the last answer it saw), or
    a near duplicate of an earlier persona (then None: not a distinct component)."""
    if persona is None:
        return None
    if paraphrases_shot(persona, shot_similarity, shot_shared_words):
        return None
    if any(too_similar(persona, other, threshold) for other in earlier):
        return None
    return persona


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_FUNCTION_WORDS = {"you", "are", "a", "an", "the", "and", "or", "of", "who", "to", "in", "with"}


def _cut_repetition(words: list[str], n: int = 3) -> list[str]:
    """Words up to the first repeat of an n-gram (a small model's loop)."""
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - n + 1):
        gram = tuple(w.lower().strip(".,;:!?") for w in words[i : i + n])
        if gram in seen:
            return words[:i]
        seen.add(gram)
    return words


def clean_persona(raw: str, max_words: int, *, prefilled: bool = False) -> str | None:
    """One "You are a ..." sentence from the synthesizer's output, or None if unusable.
    With `prefilled`, `raw` continues "You are a"."""
    text = re.sub(r"[*#`\"“”]", "", raw).replace("\n", " ").strip()
    if prefilled:
        text = f"{PREFILL} {text}" if not text.startswith(("n ", "n\n")) else f"{PREFILL}{text}"
    text = re.sub(r"^(persona|description)\s*:\s*", "", text, flags=re.I)
    m = re.search(r"\byou are\b", text, flags=re.I)
    if m:
        text = "You are" + text[m.end() :]
    elif re.match(r"(i am|i'm)\b", text, flags=re.I):
        text = "You are" + re.sub(r"^(i am|i'm)", "", text, flags=re.I)
    elif re.match(r"(a|an)\s", text, flags=re.I):
        text = "You are " + text[0].lower() + text[1:]
    else:
        return None
    text = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
    # Small synthesizers name the persona ("You are Sarah, a stylist") and trail off into
    # "...: <quote>"; a persona is a kind of person, so drop the name and the tail.
    text = re.sub(r"^You are (?:[A-Z][a-z]+ ){0,2}?[A-Z][a-z]+, (an?) ", r"You are \1 ", text)
    text = re.split(r"[:;]", text, maxsplit=1)[0].strip()
    words = _cut_repetition(text.split())[:max_words]
    text = " ".join(words).rstrip(",;:- ")
    text = re.sub(r"\s+(and|or|but|who|with|of|a|an|the|to|in|about)$", "", text, flags=re.I)
    # "You are." or "You are a customer" carry no persona; demand a few real words, and
    # no word said three times ("a wealthy, generous, wealthy, happy, generous ...").
    words = re.findall(r"[A-Za-z]{2,}", text)
    if len(words) < 6:
        return None
    counts = Counter(w.lower() for w in words if w.lower() not in _FUNCTION_WORDS)
    if counts and max(counts.values()) >= 3:
        return None
    return text if text.endswith((".", "!", "?")) else text + "."


def persona_record(stats: ClusterStats) -> dict[str, Any]:
    """The statistics kept with a persona (shown in the report's persona table)."""
    return {
        "labels": [[k, round(v, 3)] for k, v in stats.labels],
        "fields": {k: [[a, round(b, 3)] for a, b in v] for k, v in stats.fields.items()},
        "median_words": stats.median_words,
        "keywords": stats.keywords,
    }
