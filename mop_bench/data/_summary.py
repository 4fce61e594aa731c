"""`mop-bench ls tasks`: what each card holds and whether its data is found, fast
(only label columns or row counts are read; the Hub is never contacted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mop_bench.data._card import TaskCard
from mop_bench.data._load import same_file
from mop_bench.data._read import DataError, _label_indices, read_columns, split_location
from mop_bench.paths import data_dir as resolve_data_dir


def task_summary(card: TaskCard, data_dir: str | None = None) -> dict[str, Any]:
    """Rows and label counts per split, and whether the data is found (for `ls tasks`).

    Reads only the label column (or the row count) of each file; never contacts the Hub."""
    ddir = resolve_data_dir(data_dir)
    summary: dict[str, Any] = {
        "name": card.name,
        "version": card.version,
        "description": card.description,
        "labels": list(card.label_names),
        "pool_split": card.pool_split,
        "golden_split": card.golden_split,
        "hub_id": card.hub_id,
        "data_dir": str(ddir) if ddir else None,
        "found": True,
        "splits": {},
    }
    for split in dict.fromkeys([card.pool_split, card.golden_split, *card.splits]):
        summary["splits"][split] = entry = _split_summary(card, split, ddir)
        if split in (card.pool_split, card.golden_split) and not entry["found"]:
            summary["found"] = False
    if same_file(card) and summary["splits"][card.pool_split].get("rows"):
        entry = summary["splits"][card.pool_split]
        n_golden = round(entry["rows"] * card.holdout_fraction)
        summary["partition"] = {"golden_rows": n_golden, "pool_rows": entry["rows"] - n_golden}
    return summary


def _split_summary(card: TaskCard, split: str, ddir: Path | None) -> dict[str, Any]:
    path = split_location(card, split, ddir)
    if path is None:
        where = f"hub:{card.hub_id}@{card.hub_revision or 'default'}" if card.hub_id else None
        return {"source": where, "found": False, "note": "no data directory; Hub not checked"}
    if not path.is_file():
        return {"source": str(path), "found": False}
    column = card.label_column or card.text_column
    try:
        columns, _ = read_columns(path, [column])
        values = columns[column]
        values = values if isinstance(values, list) else values.to_pylist()
        entry: dict[str, Any] = {"source": str(path), "found": True, "rows": len(values)}
        if card.label_column:
            counts = np.bincount(
                np.asarray(_label_indices(card, str(path), values), dtype=np.int64),
                minlength=len(card.label_names),
            )
            entry["label_counts"] = dict(zip(card.label_names, counts.tolist(), strict=True))
        return entry
    except DataError as exc:
        return {"source": str(path), "found": False, "error": str(exc)}


def format_summary(summary: dict[str, Any]) -> str:
    """One human-readable line per split, under a heading line with the task's labels."""
    labels = ", ".join(summary["labels"]) or "unlabelled"
    lines = [f"{summary['name']} (v{summary['version']}; labels: {labels})"]
    for split, entry in summary["splits"].items():
        role = {summary["pool_split"]: "pool", summary["golden_split"]: "golden"}.get(split, "")
        head = f"  {split:<8} {role:<6}"
        if not entry["found"]:
            why = entry.get("error") or entry.get("note") or "missing"
            lines.append(f"{head} not found: {entry['source']} ({why})")
            continue
        counts = entry.get("label_counts")
        mix = " (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")" if counts else ""
        lines.append(f"{head} {entry['rows']:>7,} rows{mix}  {entry['source']}")
    if "partition" in summary:
        part = summary["partition"]
        lines.append(
            f"  one file, partitioned: pool {part['pool_rows']:,} / golden {part['golden_rows']:,}"
        )
    return "\n".join(lines)
