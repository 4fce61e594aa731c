"""Persona sources: synthesized (K-means + LM), keywords (TF-IDF), random, none.

Synthesized personas follow REFERENCE.md section 2: cluster the pool's responses in the
encoder's space, then have the LM summarise a sample of each cluster's texts into one
sentence beginning "You are". The synthesizer prompt is not published; ours is below.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mop_bench.mop.prompts import truncate_words
from mop_bench.mop.random_personas import GENERIC_PERSONAS
from mop_bench.spec import FitSpec
from mop_bench.types import Example


@dataclass(frozen=True)
class PersonaSettings:
    """Persona-synthesis choices the paper leaves open; recorded in personas.json."""

    kmeans_n_init: int = 4
    """K-means restarts (fixed, so that clustering depends only on data and seed)."""
    sample_words: int = 60
    """Each cluster text shown to the synthesizer is cut to this many words."""
    synth_temperature: float = 0.7
    """Sampling temperature of the synthesizer (low: a summary, not a creative piece)."""
    keyword_terms: int = 3
    """Distinctive terms per cluster in keyword personas."""
    max_persona_words: int = 40
    """A synthesized persona sentence longer than this is cut."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Persona:
    text: str
    source: str
    """synthesized | keywords | keywords_fallback (LM output unusable) | random"""
    cluster: int | None = None
    cluster_size: int | None = None
    example_texts: list[str] = field(default_factory=list)
    """The (truncated) texts the persona was derived from (shown to the synthesizer)."""
    raw: str | None = None
    """The synthesizer's raw output, kept for inspection."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Persona:
        return cls(**{k: row.get(k) for k in cls.__dataclass_fields__ if k in row})


def cluster_responses(embeddings: np.ndarray, k: int, seed: int, n_init: int) -> np.ndarray:
    """K-means labels (0..k-1) of the pool's response embeddings."""
    from sklearn.cluster import KMeans

    n = len(embeddings)
    if k < 1:
        raise ValueError(f"n_personas must be at least 1, got {k}")
    if n < k:
        raise ValueError(f"cannot make {k} persona clusters from a pool of {n} examples")
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
    return km.fit_predict(np.asarray(embeddings, dtype=np.float64)).astype(int)


def _cluster_sample(
    texts: Sequence[str], members: np.ndarray, n: int, words: int, seed: int, cluster: int
) -> list[str]:
    rng = np.random.default_rng([seed, cluster])
    chosen = rng.choice(members, size=min(n, len(members)), replace=False)
    return [truncate_words(texts[i], words) for i in sorted(chosen.tolist())]


def keyword_phrases(texts: Sequence[str], labels: np.ndarray, k: int, n_terms: int) -> list[str]:
    """Per cluster, the terms most over-represented relative to the other clusters."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [" ".join(texts[i] for i in np.flatnonzero(labels == c)) for c in range(k)]
    vec = TfidfVectorizer(
        stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]{2,}\b",  # words of 3+ letters: drops "br", ids
        sublinear_tf=True,
    )
    try:
        mat = vec.fit_transform(docs).toarray()
    except ValueError:  # every cluster empty of usable words
        return ["You are a writer." for _ in range(k)]
    vocab = np.array(vec.get_feature_names_out())
    out = []
    for c in range(k):
        rest = np.delete(mat, c, axis=0)
        # Distinctive = weight here minus the mean weight elsewhere, among words used here.
        score = mat[c] - (rest.mean(axis=0) if len(rest) else 0.0)
        score[mat[c] <= 0] = -np.inf
        order = [i for i in np.argsort(-score, kind="stable") if np.isfinite(score[i])]
        terms = vocab[order[:n_terms]].tolist()
        out.append(_keyword_sentence(terms))
    return out


def _keyword_sentence(terms: list[str]) -> str:
    if not terms:
        return "You are a writer."
    listed = terms[0] if len(terms) == 1 else ", ".join(terms[:-1]) + f" and {terms[-1]}"
    return f"You are a writer who often mentions {listed}."


def synthesizer_messages(samples: Sequence[str]) -> list[dict[str, str]]:
    numbered = "\n".join(f"{i + 1}. {t}" for i, t in enumerate(samples))
    return [
        {
            "role": "system",
            "content": "You describe the kind of person who wrote a set of texts, in one sentence.",
        },
        {
            "role": "user",
            "content": (
                f"These texts were written by people from one group:\n{numbered}\n\n"
                "In ONE sentence, describe the kind of person who writes texts like these: "
                "who they are, what they care about and how they write. Start with "
                '"You are", describe a kind of person (no name), and reply with that '
                "sentence only."
            ),
        },
    ]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def clean_persona(raw: str, max_words: int) -> str | None:
    """One "You are ..." sentence from the synthesizer's output, or None if unusable."""
    text = re.sub(r"[*#`\"“”]", "", raw).replace("\n", " ").strip()
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
    words = text.split()
    if len(words) > max_words:
        words = words[:max_words]
    text = " ".join(words).rstrip(",;:- ")
    # "You are." or "You are a" carry no persona; demand a few real words after "You are".
    if len(re.findall(r"[A-Za-z]{2,}", text)) < 4:
        return None
    return text if text.endswith((".", "!", "?")) else text + "."


def synthesize(
    lm: Any,
    texts: Sequence[str],
    labels: np.ndarray,
    k: int,
    fit: FitSpec,
    settings: PersonaSettings,
    seed: int,
) -> list[Persona]:
    """LM-summarised personas, one per cluster, with keyword fallbacks where unusable."""
    samples = [
        _cluster_sample(
            texts,
            np.flatnonzero(labels == c),
            fit.persona_cluster_samples,
            settings.sample_words,
            seed,
            c,
        )
        for c in range(k)
    ]
    completions = lm.generate(
        [synthesizer_messages(s) for s in samples],
        temperatures=[settings.synth_temperature] * k,
        seeds=[persona_seed(seed, c) for c in range(k)],
        max_new_tokens=fit.persona_max_new_tokens,
    )
    keywords = keyword_phrases(texts, labels, k, settings.keyword_terms)
    out = []
    for c, comp in enumerate(completions):
        cleaned = clean_persona(comp.text, settings.max_persona_words)
        out.append(
            Persona(
                text=cleaned or keywords[c],
                source="synthesized" if cleaned else "keywords_fallback",
                cluster=c,
                cluster_size=int((labels == c).sum()),
                example_texts=samples[c],
                raw=comp.text,
            )
        )
    return out


def persona_seed(run_seed: int, cluster: int) -> int:
    """Seed of the synthesizer's sample for a cluster (disjoint in form from sample seeds)."""
    digest = hashlib.sha256(f"persona:{run_seed}:{cluster}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1)


def build_personas(
    source: str,
    k: int,
    pool: Sequence[Example],
    embed_pool: Callable[[], np.ndarray],
    lm_factory: Callable[[], Any],
    fit: FitSpec,
    settings: PersonaSettings,
    seed: int,
) -> list[Persona]:
    """The personas of a simulator: [] for `none`. `embed_pool` and `lm_factory` are
    only called by the sources that need them."""
    if source == "none":
        return []
    if source == "random":
        if k > len(GENERIC_PERSONAS):
            raise ValueError(f"n_personas={k} exceeds the {len(GENERIC_PERSONAS)} random personas")
        rng = np.random.default_rng([seed, 7])
        picks = rng.choice(len(GENERIC_PERSONAS), size=k, replace=False)
        return [Persona(text=GENERIC_PERSONAS[i], source="random") for i in picks.tolist()]
    if source not in ("synthesized", "keywords"):
        raise ValueError(f"unknown persona source {source!r}")
    texts = [ex.text for ex in pool]
    labels = cluster_responses(embed_pool(), k, seed, settings.kmeans_n_init)
    if source == "synthesized":
        return synthesize(lm_factory(), texts, labels, k, fit, settings, seed)
    phrases = keyword_phrases(texts, labels, k, settings.keyword_terms)
    return [
        Persona(
            text=phrases[c],
            source="keywords",
            cluster=c,
            cluster_size=int((labels == c).sum()),
            example_texts=_cluster_sample(
                texts,
                np.flatnonzero(labels == c),
                fit.persona_cluster_samples,
                settings.sample_words,
                seed,
                c,
            ),
        )
        for c in range(k)
    ]
