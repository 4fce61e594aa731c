"""Reading one split of a task: a mirror file, a user file (parquet, csv, tsv, jsonl) or
the Hugging Face Hub, with per-row validation whose errors name file, row and field."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mop_bench.data._card import LABEL_NAME, TaskCard
from mop_bench.data._textfile import csv_separator, row_place, text_encoding

ENV_HINT = "set the environment variable MOP_BENCH_DATA_DIR or pass --data-dir DIR"
FORMATS = (".parquet", ".csv", ".tsv", ".jsonl")


class DataError(ValueError):
    """A data file that cannot be used: the message names the file, row and field."""


@dataclass
class RawSplit:
    """The columns of one split that a task needs, validated, before sampling."""

    source: str
    """Where the rows were read from (a file path, or `hub:<id>@<revision>`)."""
    texts: Any
    """Text column: a list of str, or a pyarrow ChunkedArray (so unsampled rows of a
    large golden split are never converted to Python strings)."""
    labels: list[int | None]
    """Label index per row (None for unlabelled data)."""
    fields: dict[str, list[Any]]
    """Context-field columns (not `label_name`, which is derived from the label)."""

    def __len__(self) -> int:
        return len(self.labels)

    def take_texts(self, rows: Sequence[int]) -> list[str]:
        if isinstance(self.texts, list):
            return [self.texts[i] for i in rows]
        import pyarrow as pa

        return self.texts.take(pa.array(rows, type=pa.int64())).to_pylist()


def split_location(card: TaskCard, split: str, data_dir: Path | None) -> Path | None:
    """The file a split is read from, or None when it must come from the Hub.

    A card file is untrusted input: its split paths (and `mirror_dir`) must be relative
    and stay inside the card's folder (or the data directory). The one absolute path
    allowed is the data file the user named on the command line (`--data`), which is
    the source of the ad-hoc card built for it."""
    name = card.splits[split]
    if card.mirror_dir is None:
        if not card.source:  # a card built in code: its paths are the caller's own
            return Path(name).expanduser()
        if Path(name) == Path(card.source):
            return Path(name)  # the --data file itself
        return _inside(Path(card.source).resolve().parent, name, f"{split} split", card)
    if data_dir is None:
        return None
    folder = _inside(data_dir, card.mirror_dir, "mirror_dir", card)
    return _inside(folder, name, f"{split} split", card)


def _inside(base: Path, rel: str, what: str, card: TaskCard) -> Path:
    """`base / rel`, refusing a `rel` that is absolute, starts with `~` or climbs `..`."""
    path = Path(rel)
    if path.is_absolute() or rel.startswith("~") or ".." in path.parts:
        raise DataError(
            f"{card.source or f'task {card.name!r}'}: {what} path {rel!r} leaves {base}; "
            "paths in a task card must be relative and stay inside the card's folder (or "
            "the data directory). To use a file elsewhere, name it yourself with --data FILE"
        )
    return base / path


def needed_columns(card: TaskCard) -> list[str]:
    cols = [card.text_column]
    if card.label_column:
        cols.append(card.label_column)
    cols += [f for f in card.context_fields if f != LABEL_NAME and f not in cols]
    return cols


def read_split(
    card: TaskCard, split: str, data_dir: Path | None, *, progress: bool = True
) -> RawSplit:
    """Read and validate one split (all rows of the needed columns)."""
    path = split_location(card, split, data_dir)
    if path is None:
        source, columns, present = _read_hub(card, split, progress=progress)
    else:
        if path.is_dir():
            raise DataError(
                f"task {card.name!r}: {split} split {path} is a directory, not a data file "
                f"({', '.join(FORMATS)})"
            )
        if not path.is_file():
            raise FileNotFoundError(missing_file_message(card, split, path))
        source = str(path)
        columns, present = read_columns(path, needed_columns(card))
    return _validate(card, source, columns, present)


def missing_file_message(card: TaskCard, split: str, path: Path) -> str:
    if card.mirror_dir is None:
        return f"task {card.name!r}: {split} file {path} does not exist (named by {card.source or 'the task'})"
    return (
        f"task {card.name!r}: {split} split not found: looked for {path}. The data directory "
        f"must contain {card.mirror_dir}/{card.splits[split]}; to point elsewhere {ENV_HINT}"
    )


def read_columns(path: Path, columns: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Read only `columns` of a data file; returns them and the file's column names.

    The text column of a parquet file stays an Arrow array; others become lists."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataError(
            f"{path}: unsupported data file type {suffix!r}; use one of {', '.join(FORMATS)}"
        )
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            pfile = pq.ParquetFile(path)
            present = list(pfile.schema_arrow.names)
            _check_columns(path, columns, present)
            table = pfile.read(columns=columns)
            data: dict[str, Any] = {columns[0]: table.column(columns[0])}
            data.update({c: table.column(c).to_pylist() for c in columns[1:]})
            return data, present
        if suffix == ".jsonl":
            return _read_jsonl(path, columns)
        import pandas as pd

        encoding = text_encoding(path)
        sep = csv_separator(path, encoding)
        present = list(pd.read_csv(path, sep=sep, nrows=0, encoding=encoding).columns)
        _check_columns(path, columns, present)
        # Only empty cells are missing: a review reading "NA" or "null" is still text.
        frame = pd.read_csv(
            path, sep=sep, usecols=columns, keep_default_na=False, na_values=[""],
            dtype={columns[0]: str}, encoding=encoding,
        )  # fmt: skip
        return {c: frame[c].tolist() for c in columns}, present
    except (DataError, FileNotFoundError):
        raise
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from exc
    except Exception as exc:  # any parser failure: say which file could not be read
        raise DataError(
            f"{path}: cannot read {suffix[1:]} file: {type(exc).__name__}: {exc}"
        ) from exc


def not_utf8(path: Path, exc: UnicodeDecodeError) -> DataError:
    """Where a file stops being UTF-8 (line and byte offset) and what to do about it."""
    codec = text_encoding(path)
    if codec not in ("utf-8", "utf-8-sig"):  # its byte-order mark named another codec
        return DataError(
            f"{path}: starts with a {codec.upper()} byte-order mark but does not decode as "
            f"{codec.upper()} ({exc.reason}); convert it to UTF-8"
        )
    offset = 0
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                guess = _guess_encoding(path)
                return DataError(
                    f"{path}: not UTF-8 text: byte 0x{line[err.start]:02x} at byte offset "
                    f"{offset + err.start} (line {lineno}) cannot be decoded. The file looks "
                    f"like {guess}; convert it to UTF-8, e.g. `iconv -f {guess} -t UTF-8 "
                    f"{path.name} > {path.stem}.utf8{path.suffix}`"
                )
            offset += len(line)
    return DataError(f"{path}: not UTF-8 text ({exc}); convert it to UTF-8")


def _guess_encoding(path: Path) -> str:
    try:
        from charset_normalizer import from_path

        best = from_path(path).best()
    except Exception:  # the guess is only a hint; any failure falls back to the usual one
        best = None
    enc = getattr(best, "encoding", None)
    return enc if enc and enc.lower().replace("-", "_") not in ("utf_8", "ascii") else "cp1252"


def _read_jsonl(path: Path, columns: list[str]) -> tuple[dict[str, Any], list[str]]:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []  # the line each row is on, for the messages below
    with path.open(encoding=text_encoding(path)) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {lineno} is not valid JSON: {exc}") from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {lineno} is not a JSON object")
            rows.append(row)
            lines.append(lineno)
    present = list(dict.fromkeys(k for row in rows[:1000] for k in row))
    _check_columns(path, [c for c in columns if not any(c in r for r in rows)], present)
    for i, row in enumerate(rows):
        for c in columns:
            if c not in row:
                raise DataError(f"{path}: line {lines[i]}: field {c!r} is missing")
    return {c: [row[c] for row in rows] for c in columns}, present


def _check_columns(path: Path | str, wanted: list[str], present: list[str]) -> None:
    missing = [c for c in wanted if c not in present]
    if missing:
        from mop_bench.registry import suggest

        raise DataError(
            f"{path}: column {missing[0]!r} not found{suggest(missing[0], present)}; "
            f"columns present: {', '.join(present) or '(none)'}"
        )


def _read_hub(
    card: TaskCard, split: str, *, progress: bool
) -> tuple[str, dict[str, Any], list[str]]:
    call = (
        f"datasets.load_dataset({card.hub_id!r}, {card.hub_config!r}, "
        f"revision={card.hub_revision!r}, split={split!r})"
    )
    hint = (
        f"to use a local mirror instead, {ENV_HINT} (a directory containing "
        f"{card.mirror_dir}/{card.splits[split]})"
    )
    if not card.hub_id:
        raise FileNotFoundError(
            f"task {card.name!r} has no Hub id and no data directory is configured; {hint}"
        )
    try:
        import datasets

        if not progress:
            datasets.disable_progress_bars()
        ds = datasets.load_dataset(
            card.hub_id, card.hub_config, revision=card.hub_revision, split=split
        )
    except Exception as exc:  # offline, unknown id, auth...: all mean "not available"
        raise FileNotFoundError(
            f"task {card.name!r}: no data directory is configured, so the {split} split was "
            f"requested from the Hugging Face Hub with {call}, which failed "
            f"({type(exc).__name__}: {str(exc)[:300]}); {hint}"
        ) from exc
    source = f"hub:{card.hub_id}@{card.hub_revision or 'default'}"
    present = list(ds.column_names)
    columns = needed_columns(card)
    _check_columns(source, columns, present)
    data = ds.select_columns(columns).to_dict()
    return source, data, present


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _validate(card: TaskCard, source: str, columns: dict[str, Any], present: list[str]) -> RawSplit:
    texts = columns[card.text_column]
    bad = _first_bad_text(texts)
    if bad is not None:
        row, why = bad
        raise DataError(f"{source}: {row_place(source, row)}: field {card.text_column!r} {why}")
    labels: list[int | None]
    if card.label_column:
        labels = _label_indices(card, source, columns[card.label_column])
    else:
        labels = [None] * len(texts)
    fields: dict[str, list[Any]] = {}
    for name in card.context_fields:
        if name == LABEL_NAME:
            continue
        values = columns[name]
        for i, value in enumerate(values):
            if _is_missing(value) or (isinstance(value, str) and not value.strip()):
                raise DataError(
                    f"{source}: {row_place(source, i)}: context field {name!r} is empty or missing"
                )
        fields[name] = [_native(v) for v in values]
    return RawSplit(source=source, texts=texts, labels=labels, fields=fields)


def _first_bad_text(texts: Any) -> tuple[int, str] | None:
    """(row, what is wrong) for the first text that is missing, empty or not a string."""
    if isinstance(texts, list):
        for i, t in enumerate(texts):
            if _is_missing(t):
                return i, "is empty or missing"
            if not isinstance(t, str):
                shown = repr(t) if len(repr(t)) <= 40 else repr(t)[:37] + "..."
                kind = type(t).__name__
                article = "an" if kind[:1] in tuple("aeiou") else "a"  # "an int", "a list"
                return i, f"holds {article} {kind} ({shown}), not text"
            if not t.strip():
                return i, "is empty"
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(texts.type) and not pa.types.is_large_string(texts.type):
        return (0, f"holds {texts.type} values, not text") if len(texts) else None
    empty = pc.or_kleene(
        pc.is_null(texts), pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0)
    )
    idx = pc.index(empty.fill_null(True), True).as_py()
    return None if idx < 0 else (idx, "is empty or missing")


def _native(value: Any) -> Any:
    # numpy scalars (from pandas) -> plain Python, so fields stay JSON-friendly.
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _label_indices(card: TaskCard, source: str, values: list[Any]) -> list[int | None]:
    by_name = {name: i for i, name in enumerate(card.label_names)}
    n = len(card.label_names)
    cache: dict[Any, int] = {}
    out: list[int | None] = []
    for row, raw in enumerate(values):
        key = (type(raw), raw)
        idx = cache.get(key) if not _is_missing(raw) else None
        if idx is None:
            idx = _label_index(raw, by_name, n)
            if idx is None:
                allowed = ", ".join(f"{i}={name!r}" for i, name in enumerate(card.label_names))
                what = "is missing" if _is_missing(raw) else f"has value {raw!r}"
                raise DataError(
                    f"{source}: {row_place(source, row)}: field {card.label_column!r} {what}, "
                    f"which is not one of the task's labels (index or name): {allowed}"
                )
            cache[key] = idx
        out.append(idx)
    return out


def _label_index(raw: Any, by_name: dict[str, int], n: int) -> int | None:
    """A label value is a label name, or an integer index into the label names.

    Names are tried first, so a file whose labels are the strings "1", "2", "4" keeps
    them as names even though they look like indices."""
    if _is_missing(raw) or isinstance(raw, bool):
        return None
    value = _native(raw)
    if str(value) in by_name:
        return by_name[str(value)]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value < n:
        return value
    return None
