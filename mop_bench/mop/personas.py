"""Persona sources: synthesized (K-means + LM), keywords (TF-IDF), random, none.

Synthesized personas follow REFERENCE.md section 2: cluster the pool's responses in the
encoder's space, then have the LM summarise a sample of each cluster's texts into one
sentence beginning "You are". The synthesizer prompt is not published; ours, and the
statistics fallback, are in `persona_synth.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mop_bench.mop.persona_synth import (
    accept,
    clean_persona,
    cluster_stats,
    distinctive_words,
    persona_record,
    synthesizer_messages,
)
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
    synth_temperature: float = 0.0
    """Sampling temperature of the synthesizer (0: greedy; a summary, not a creative
    piece, and no dependence on a sampling seed)."""
    keyword_terms: int = 3
    """Distinctive terms per cluster in keyword and statistics personas."""
    keyword_min_df: float = 0.1
    """A distinctive term must appear in at least this share (and 2) of the cluster's
    texts (a name one review repeats is not what the group talks about)."""
    max_persona_words: int = 40
    """A synthesized persona sentence longer than this is cut."""
    synth_attempts: int = 3
    """Answers asked per cluster at most: greedy first, then seeded samples at
    `retry_temperature` for clusters whose answer was unusable or not distinct."""
    retry_temperature: float = 0.8
    similarity: float = 0.5
    """Content-word Jaccard similarity at which two personas count as the same."""
    shot_similarity: float = 0.25
    """A persona whose content-word Jaccard similarity with a worked example's answer
    reaches this is a paraphrase of it (0.46 passed the old 0.5 check: complaining
    gadget buyers asked to write AG News)..."""
    shot_shared_words: int = 3
    """...as is one sharing this many content words with a worked example's answer."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Persona:
    text: str
    source: str
    """synthesized | statistics_fallback (LM output unusable or a duplicate) | keywords |
    random"""
    cluster: int | None = None
    cluster_size: int | None = None
    example_texts: list[str] = field(default_factory=list)
    """The (truncated) texts the persona was derived from (shown to the synthesizer)."""
    raw: str | None = None
    """The synthesizer's raw output, kept for inspection."""
    stats: dict[str, Any] | None = None
    """The cluster's statistics (label mix, context fields, length, keywords)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Persona:
        return cls(**{k: row.get(k) for k in cls.__dataclass_fields__ if k in row})


def cluster_label(persona: Persona, card: Any) -> int | None:
    """The label index of the persona's cluster majority (from its recorded cluster
    statistics, against the task card's label names), or None where it has none
    (random and keyword personas): `simulator.persona_label_match` reads it."""
    shares = (persona.stats or {}).get("labels") or []
    names = [str(n) for n in (getattr(card, "label_names", None) or [])]
    if not shares or not names:
        return None
    top = str(max(shares, key=lambda item: item[1])[0])
    return names.index(top) if top in names else None


def cluster_responses(embeddings: np.ndarray, k: int, seed: int, n_init: int) -> np.ndarray:
    """K-means labels (0..k-1) of the pool's response embeddings."""
    from sklearn.cluster import KMeans

    n = len(embeddings)
    if k < 1:
        raise ValueError(f"n_personas must be at least 1, got {k}")
    if n < k:
        raise ValueError(f"cannot make {k} persona clusters from a pool of {n} examples")
    from threadpoolctl import threadpool_limits

    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
    # One thread: the clustering is small, and its partial sums then cannot depend on
    # the machine's thread count.
    with threadpool_limits(1):
        return km.fit_predict(np.asarray(embeddings, dtype=np.float64)).astype(int)


def _cluster_sample(
    texts: Sequence[str], members: np.ndarray, n: int, words: int, seed: int, cluster: int
) -> list[str]:
    rng = np.random.default_rng([seed, cluster])
    chosen = rng.choice(members, size=min(n, len(members)), replace=False)
    return [truncate_words(texts[i], words) for i in sorted(chosen.tolist())]


def _keyword_sentence(terms: list[str]) -> str:
    if not terms:
        return "You are a writer."
    listed = terms[0] if len(terms) == 1 else ", ".join(terms[:-1]) + f" and {terms[-1]}"
    return f"You are a writer who often mentions {listed}."


def _cluster_keywords(
    texts: Sequence[str], labels: np.ndarray, k: int, settings: PersonaSettings
) -> list[list[str]]:
    return distinctive_words(texts, labels, k, settings.keyword_terms, settings.keyword_min_df)


def synthesize(
    lm: Any,
    pool: Sequence[Example],
    labels: np.ndarray,
    k: int,
    fit: FitSpec,
    settings: PersonaSettings,
    seed: int,
) -> list[Persona]:
    """LM-written personas, one per cluster (greedy, pre-filled "You are a"), with a
    statistics persona where the answer is unusable or repeats an earlier persona."""
    texts = [ex.text for ex in pool]
    keywords = _cluster_keywords(texts, labels, k, settings)
    stats = [
        cluster_stats([pool[i] for i in np.flatnonzero(labels == c)], keywords[c]) for c in range(k)
    ]
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
    raws: list[list[str]] = [[] for _ in range(k)]
    accepted: dict[int, str] = {}
    for attempt in range(max(1, settings.synth_attempts)):
        todo = [c for c in range(k) if c not in accepted]
        if not todo:
            break
        temp = settings.synth_temperature if attempt == 0 else settings.retry_temperature
        completions = lm.generate(
            [synthesizer_messages(samples[c], stats[c]) for c in todo],
            temperatures=[temp] * len(todo),
            seeds=[persona_seed(seed, c, attempt) for c in todo],
            max_new_tokens=fit.persona_max_new_tokens,
        )
        for c, comp in zip(todo, completions, strict=True):
            raws[c].append(comp.text)
            cleaned = clean_persona(comp.text, settings.max_persona_words, prefilled=True)
            # Clusters are judged in order, so the result does not depend on batching.
            earlier = [accepted[o] for o in sorted(accepted)]
            ok = accept(
                cleaned,
                earlier,
                settings.similarity,
                shot_similarity=settings.shot_similarity,
                shot_shared_words=settings.shot_shared_words,
            )
            if ok is not None:
                accepted[c] = ok
    return [
        Persona(
            text=accepted.get(c) or stats[c].sentence(),
            source="synthesized" if c in accepted else "statistics_fallback",
            cluster=c,
            cluster_size=int((labels == c).sum()),
            example_texts=samples[c],
            raw=" || ".join(raws[c]),
            stats=persona_record(stats[c]),
        )
        for c in range(k)
    ]


def persona_seed(run_seed: int, cluster: int, attempt: int = 0) -> int:
    """Seed of the synthesizer's sample for a cluster (disjoint in form from sample seeds)."""
    digest = hashlib.sha256(f"persona:{run_seed}:{cluster}:{attempt}".encode()).digest()
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
        return synthesize(lm_factory(), pool, labels, k, fit, settings, seed)
    keywords = _cluster_keywords(texts, labels, k, settings)
    return [
        Persona(
            text=_keyword_sentence(keywords[c]),
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
