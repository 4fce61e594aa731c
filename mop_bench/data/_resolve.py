"""Finding a task: a bundled card by name, a user's card file, or a user's data file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mop_bench.data._card import LABEL_NAME, TaskCard, card_from_dict, load_card
from mop_bench.data._read import FORMATS, DataError, read_columns
from mop_bench.data._textfile import row_place
from mop_bench.registry import Registry, cards_dir

TASKS: Registry[TaskCard] = Registry("task")


def _load_bundled(reg: Registry[TaskCard]) -> None:
    for path in sorted(cards_dir("tasks").glob("*.yaml")):
        card = load_card(path)
        reg.register(card.name, card, replace=True)


TASKS.add_loader(_load_bundled)

#: Context of an unlabelled user file: every synthetic text answers the same request.
GENERIC_CONTEXT = "a text"


def resolve_task(
    name_or_path: str,
    *,
    data_file: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
) -> TaskCard:
    """A registered task name, a card path (.yaml/.yml), or a data file.

    With `data_file` (or when `name_or_path` itself is a .csv/.tsv/.jsonl/.parquet file)
    an ad-hoc card is built for that file: label names are its sorted distinct label
    values, the context is the label name (or "a text" when unlabelled), and the single
    file is split into pool and golden rows by the card's fixed stratified partition.
    If `name_or_path` names a card as well, that card's templates and labels are kept
    and only its data is replaced by the file.
    """
    for option, value in (("--data", data_file), ("--task", name_or_path)):
        if value and _is_url(value):
            raise DataError(hub_hint(option, value))
    if data_file is None and name_or_path.lower().endswith(FORMATS):
        data_file, name_or_path = name_or_path, ""
    base = _card_or_none(name_or_path) if name_or_path else None
    if data_file is None:
        # An unknown name reaches the registry, whose error suggests close names.
        return base if base is not None else TASKS.get(name_or_path)
    return adhoc_card(
        Path(data_file),
        text_column=text_column,
        label_column=label_column,
        # Named by --task; else (no --task, or the data path itself) by the file's stem.
        name=None if name_or_path.lower().endswith(FORMATS) else name_or_path or None,
        base=base,
    )


def _is_url(value: str) -> bool:
    return "://" in value or value.startswith("hf:")


def hub_hint(option: str, value: str) -> str:
    """Why a URL is refused as data, and what to do instead. A Hub dataset is named by
    a task card (`hub_id`), so its splits, columns, labels and prompt templates are
    recorded with every run, which a bare URL could not say."""
    takes = "a local file" if option == "--data" else "a task name or a local card/data file"
    start = f"{option} {value}: {option} takes {takes} ({', '.join(FORMATS)}), not a URL"
    scheme, _, rest = value.partition("://")
    if scheme != "hf" and "huggingface.co" not in rest and not value.startswith("hf:"):
        return f"{start}; download the file and pass its path"
    parts = [p for p in rest.removeprefix("huggingface.co/").split("/") if p]
    if value.startswith("hf:") and not rest:
        parts = [p for p in value[3:].split("/") if p]
    if parts and parts[0] == "datasets":
        parts = parts[1:]
    repo = "/".join(parts[:2]) if len(parts) >= 2 else "OWNER/NAME"
    return (
        f"{start}. To use a Hugging Face Hub dataset, write a task card with "
        f"`hub_id: {repo}` and a `mirror_dir` (copy tasks/yelp.yaml; docs/data.md, 'Where "
        "data comes from') and run with --task CARD.yaml and no data directory set: the "
        "splits are then loaded with datasets.load_dataset"
    )


def _card_or_none(name_or_path: str) -> TaskCard | None:
    if name_or_path.lower().endswith((".yaml", ".yml")):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"task card {path} does not exist")
        return load_card(path)
    if name_or_path in TASKS:
        return TASKS.get(name_or_path)
    return None


def adhoc_card(
    path: Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    name: str | None = None,
    base: TaskCard | None = None,
) -> TaskCard:
    """A card for a user's data file (see `resolve_task`)."""
    path = path.expanduser().resolve()
    if path.is_dir():
        raise DataError(
            f"data file {path} is a directory; --data takes one file ({', '.join(FORMATS)})"
        )
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    text_column = text_column or (base.text_column if base else "text")
    if base is not None:
        label_column = label_column or base.label_column
    raw: dict[str, Any] = {
        "name": name or path.stem,
        "version": "user",
        "description": f"user data from {path}",
        "splits": {"train": str(path), "test": str(path)},
        "text_column": text_column,
    }
    if base is not None:
        raw.update(
            name=base.name if name is None else name,
            description=f"{base.name} card applied to user data from {path}",
            citation=base.citation,
            label_column=label_column,
            label_names=list(base.label_names),
            context_fields=list(base.context_fields),
            context_template=base.context_template,
            request_template=base.request_template,
            text_cleanup=list(base.text_cleanup),
        )
        return card_from_dict(raw, source=str(path))
    if label_column is None:
        # Use a column literally named "label" when present; otherwise unlabelled.
        _, present = read_columns(path, [text_column])
        label_column = "label" if "label" in present and text_column != "label" else None
    if label_column is None:
        raw.update(context_template=GENERIC_CONTEXT, context_fields=[])
    else:
        columns, _ = read_columns(path, [text_column, label_column])
        raw.update(
            label_column=label_column,
            label_names=_sorted_label_names(path, label_column, columns[label_column]),
            context_template=f'a text labelled "{{{LABEL_NAME}}}"',
            context_fields=[LABEL_NAME],
        )
    return card_from_dict(raw, source=str(path))


def _sorted_label_names(path: Path, column: str, values: Any) -> list[str]:
    values = values if isinstance(values, list) else values.to_pylist()
    distinct: set[Any] = set()
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataError(
                f"{path}: {row_place(str(path), row)}: field {column!r} (label) is missing"
            )
        if hasattr(value, "item") and not isinstance(value, str):
            value = value.item()
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        distinct.add(value)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in distinct):
        return [str(v) for v in sorted(distinct)]
    return sorted(str(v) for v in distinct)
