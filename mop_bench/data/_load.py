"""From a task card and a run's data settings to the pool, golden and held-out sets."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mop_bench.data._card import LABEL_NAME, TaskCard, clean_text, render_context
from mop_bench.data._read import DataError, RawSplit, read_split, split_location
from mop_bench.data._sample import (
    balanced_draw_with_cycles,
    rng_for,
    stratified_draw_with_cycles,
    stratified_sample,
)
from mop_bench.data._textfile import row_place
from mop_bench.paths import data_dir as resolve_data_dir
from mop_bench.spec import DataSpec
from mop_bench.types import Context, Example

log = logging.getLogger(__name__)


@dataclass
class TaskData:
    """One run's view of a task: what the simulator sees, what it is scored against."""

    card: TaskCard
    """The card as used (for Hub data, with its Hub context template)."""
    pool: list[Example]
    """Label-stratified sample of the pool split: all a simulator may see."""
    golden: list[Example]
    """Label-stratified sample of the golden split: the real set synthetic text is scored against."""
    heldout: list[Example]
    """Pool-split rows not in the pool (the `real` calibration draws these); disjoint
    from the golden set."""
    data_hash: str
    """Short content hash of every example above and the card settings that shaped them."""
    source_hash: str = ""
    """Short hash of the source splits themselves (file bytes, or hub id@revision) and the
    card settings: the same for every seed, so replicate runs are comparable while runs
    on different data are not."""
    sources: dict[str, str] = field(default_factory=dict)
    """Split -> where it was read from (file path, or `hub:<id>@<revision>`)."""


def load_task(card: TaskCard, spec: DataSpec, seed: int, *, progress: bool = True) -> TaskData:
    """Read the card's splits and draw this run's pool and golden sets (seeded)."""
    ddir = resolve_data_dir(spec.data_dir)
    pool_split, golden_split = card.pool_split, card.golden_split
    if any(split_location(card, s, ddir) is None for s in (pool_split, golden_split)):
        card = card.for_hub()
    if spec.pool_size < 1 or spec.golden_size < 1:
        raise ValueError(
            f"pool_size and golden_size must be positive, got {spec.pool_size} and {spec.golden_size}"
        )

    pool_raw = read_split(card, pool_split, ddir, progress=progress)
    if same_file(card):
        # One file holds both: a fixed stratified partition makes the golden rows.
        everything = np.arange(len(pool_raw), dtype=np.int64)
        n_golden = round(len(pool_raw) * card.holdout_fraction)
        golden_cand = stratified_sample(
            pool_raw.labels, n_golden, rng_for(card.partition_seed, "partition")
        )
        pool_cand = np.setdiff1d(everything, golden_cand)
        golden_raw = pool_raw
    else:
        golden_raw = read_split(card, golden_split, ddir, progress=progress)
        pool_cand = np.arange(len(pool_raw), dtype=np.int64)
        golden_cand = np.arange(len(golden_raw), dtype=np.int64)

    pool_rows = _draw(pool_raw, pool_cand, spec.pool_size, rng_for(seed, "pool"), "pool", card)
    golden_rows = _draw(
        golden_raw, golden_cand, spec.golden_size, rng_for(seed, "golden"), "golden", card
    )
    heldout_rows = np.setdiff1d(pool_cand, pool_rows)

    pool = make_examples(card, pool_raw, pool_split, pool_rows)
    golden = make_examples(card, golden_raw, golden_split, golden_rows)
    heldout = make_examples(card, pool_raw, pool_split, heldout_rows)
    data = TaskData(
        card=card,
        pool=pool,
        golden=golden,
        heldout=heldout,
        data_hash=data_hash(card, pool, golden, heldout),
        source_hash=source_hash(card, [pool_raw.source, golden_raw.source]),
        sources={pool_split: pool_raw.source, golden_split: golden_raw.source},
    )
    if progress:
        log.info(
            "task %s: pool %d, golden %d, held-out %d examples (data %s)",
            card.name, len(pool), len(golden), len(heldout), data.data_hash,
        )  # fmt: skip
    return data


def same_file(card: TaskCard) -> bool:
    """Whether pool and golden come from one file (and so from a fixed partition)."""
    return card.splits[card.pool_split] == card.splits[card.golden_split]


def _draw(
    raw: RawSplit,
    candidates: np.ndarray,
    size: int,
    rng: np.random.Generator,
    what: str,
    card: TaskCard,
) -> np.ndarray:
    if size > len(candidates):
        log.warning(
            "task %s: %s size %d exceeds the %d available rows of %s; using all of them",
            card.name, what, size, len(candidates), raw.source,
        )  # fmt: skip
    labels = [raw.labels[i] for i in candidates]
    return candidates[stratified_sample(labels, size, rng)]


def make_examples(card: TaskCard, raw: RawSplit, split: str, rows: np.ndarray) -> list[Example]:
    """Examples for `rows` of a split: cleaned text, context fields, rendered context."""
    rows_list = [int(r) for r in rows]
    texts = raw.take_texts(rows_list)
    out: list[Example] = []
    for row, text in zip(rows_list, texts, strict=True):
        cleaned = clean_text(card, text)
        if not cleaned.strip():
            raise DataError(
                f"{raw.source}: {row_place(raw.source, row)}: field {card.text_column!r} is "
                "empty after the "
                f"cleanups {list(card.text_cleanup)}"
            )
        label = raw.labels[row]
        fields: dict[str, Any] = {}
        if label is not None:
            fields[LABEL_NAME] = card.label_names[label]
        for name in card.context_fields:
            if name != LABEL_NAME:
                fields[name] = raw.fields[name][row]
        try:
            context = render_context(card, fields)
        except (KeyError, ValueError, IndexError, AttributeError) as exc:
            raise DataError(
                f"{raw.source}: {row_place(raw.source, row)}: cannot render the context template "
                f"{card.context_template!r} with fields {fields}: {type(exc).__name__}: {exc}"
            ) from exc
        out.append(
            Example(text=cleaned, label=label, context=context, fields=fields, uid=f"{split}:{row}")
        )
    return out


def _shaping(card: TaskCard) -> bytes:
    keys = ("name", "version", "label_names", "context_template", "text_cleanup")
    return json.dumps({k: card.to_json()[k] for k in keys}, sort_keys=True).encode()


def source_hash(card: TaskCard, sources: list[str]) -> str:
    h = hashlib.sha256(_shaping(card))
    for source in sources:
        h.update(b"\x1d")
        path = Path(source)
        if not path.is_file():  # a Hub id@revision names its content
            h.update(source.encode())
            continue
        with open(path, "rb") as fh:  # a file is named by its bytes, not its location
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:12]


def data_hash(card: TaskCard, *sets: list[Example]) -> str:
    h = hashlib.sha256()
    h.update(_shaping(card))
    for examples in sets:
        h.update(b"\x1d")
        for ex in examples:
            h.update(f"{ex.uid}\x1f{ex.label}\x1f{ex.context}\x1f{ex.text}\x1e".encode())
    return h.hexdigest()[:12]


def draw_contexts(
    task: TaskData, n: int, seed: int, label_prior: str = "population"
) -> list[Context]:
    """n contexts (index 0..n-1) drawn from the golden set's context distribution.

    Label mix matches the golden set's (`population`) or is equal across labels
    (`balanced`, each context still a golden example's); the list depends only on
    (task data, n, seed, label_prior), so every simulator of a prior in a comparison
    gets the same one."""
    if n < 1:
        raise ValueError(f"the number of contexts must be positive, got {n}")
    if not task.golden:
        raise ValueError(f"task {task.card.name!r}: the golden set is empty; cannot draw contexts")
    labels = [ex.label for ex in task.golden]
    draw = balanced_draw_with_cycles if label_prior == "balanced" else stratified_draw_with_cycles
    picks = draw(labels, n, rng_for(seed, "contexts"))
    return [
        Context(index=i, text=task.golden[j].context, label=task.golden[j].label,
                fields=dict(task.golden[j].fields))
        for i, j in enumerate(picks)
    ]  # fmt: skip
