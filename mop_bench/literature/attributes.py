"""AttrPrompt's attribute values, read as the authors' generation script reads them.

Source: Yu et al. 2023, "Large Language Model as Attributed Training Data Generator"
(AttrPrompt), repository yueyu1030/AttrPrompt@3a05ffd: `gen_train_data/utils.py`
(`load_attributes`) and `gen_train_data/gpt_gen_attrprompt.py` (`main`, `gen_example`).
The files are the repository's `datasets/<name>/` folders, copied byte-identically to
`<data dir>/attrprompt/<name>/` (see that folder's README.md).

Faithful to the original:
- label names come from `label.txt`: `x.lower().replace(" ", "_").strip("\\n")`;
- `.jsonl` files are plain text, one value per line (not JSON);
- class-specific subtopics: each line cleaned by
  `remove_numbered_lists(line.lstrip('0123456789.').lstrip('-()').strip("\\"'\\n").strip())`,
  empty results skipped (so "3D printing" becomes "D printing"), then
  `Others subtopics_filter for <class>.` appended;
- other files: `line.strip("\\n")` only (trailing spaces stay; empty lines would stay);
- each prompt draws one index per attribute, uniformly and independently, in the
  script's attribute order (`gen_example`); `{length_max}` is `int(length) + 50`.

Differences, forced by the shipped data: subtopics are read from `subtopics/` (the
script reads an unshipped `subtopics_filter/` folder; the appended value keeps the
script's `subtopics_filter` wording), the model-type folder is `attrprompt/` (the
script's default is `completion/`), and sst-2 omits the script's `location` attribute
(not shipped for sst-2 and not used by its prompt).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL = "gpt-3.5-turbo"
"""The generator model folder (the script's `--model_name` default)."""
METHOD = "attrprompt"
"""The model-type folder shipped in the repository (`datasets/<name>/attrprompt/`)."""
SUBTOPIC_NAME = "subtopics_filter"
"""The name the script gives the subtopic attribute (`attr_name`); it appears in the
appended `Others subtopics_filter for <class>.` value."""

PROMPT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "yelp": ("length", "cuisine", "subtopics", "style"),
    "agnews": ("length", "location", "subtopics", "style"),
    "sst-2": ("length", "genre", "subtopics", "style"),
}
"""Per AttrPrompt folder: the attributes its prompt uses, in the script's `args.attributes`
order (the order `gen_example` draws them). sst2's trailing `location` is left out."""

FIELD_NAMES = {"subtopics": "subtopic"}
"""Prompt field name of an attribute where it differs from the folder name."""

ENV_HINT = "set MOP_BENCH_DATA_DIR or pass --data-dir"


def label_file_names(lines: Sequence[str]) -> list[str]:
    """The script's class names from `label.txt`'s lines (newlines kept):
    `[x.lower().replace(" ", "_").strip('\\n') for x in f.readlines()]`."""
    return [x.lower().replace(" ", "_").strip("\n") for x in lines]


def remove_numbered_lists(text: str) -> str:
    """`gen_train_data/utils.py:remove_numbered_lists`@3a05ffd: drop `^\\d+\\.\\s+`
    (multiline)."""
    return re.compile(r"^\d+\.\s+", re.MULTILINE).sub("", text)


def clean_subtopic(line: str) -> str:
    """One subtopic line as `gen_train_data/utils.py:load_attributes`@3a05ffd cleans it
    ("" means skipped)."""
    return remove_numbered_lists(line.lstrip("0123456789.").lstrip("-()").strip("\"'\n").strip())


def _lines(path: Path) -> list[str]:
    """The file's lines with their newlines, as Python's text-mode iteration gives them."""
    with open(path, encoding="utf-8") as f:
        return list(f)


@dataclass(frozen=True)
class AttributeSet:
    """One task's AttrPrompt attributes: generic values shared by all labels and
    class-specific subtopics per label id."""

    folder: str
    classes: tuple[str, ...]
    """The script's class names (label.txt, lower-cased, spaces to `_`), by label id."""
    order: tuple[str, ...]
    """Attribute folder names in draw order (e.g. length, cuisine, subtopics, style)."""
    generic: dict[str, tuple[str, ...]]
    """Values of each attribute shared by all classes."""
    subtopics: tuple[tuple[str, ...], ...]
    """Class-specific subtopics by label id, the appended `Others ...` value included."""

    def values(self, attr: str, label: int) -> tuple[str, ...]:
        """The values `attr` (a folder name) can take for `label`."""
        return self.subtopics[label] if attr == "subtopics" else self.generic[attr]

    def draw(self, label: int, rng: np.random.Generator) -> dict[str, str]:
        """One attribute tuple for `label`: each attribute uniformly and independently
        (the script's `gen_example`, seeded here), as prompt fields: `{subtopic}`,
        `{cuisine}`, `{genre}`, `{location}`, `{style}`, `{length}` and `{length_max}`
        (`int(length) + 50`)."""
        if not 0 <= label < len(self.classes):
            raise ValueError(
                f"label {label} out of range for {self.folder} ({len(self.classes)} classes)"
            )
        out: dict[str, str] = {}
        for attr in self.order:
            values = self.values(attr, label)
            out[FIELD_NAMES.get(attr, attr)] = values[int(rng.integers(0, len(values)))]
        if "length" in out:
            out["length_max"] = str(int(out["length"]) + 50)
        return out

    def attribute_counts(self) -> dict[str, dict[str, int]]:
        """For the record: per class name, the number of values of each prompt field and
        `combinations`, the size of the class-conditional product drawn from."""
        out: dict[str, dict[str, int]] = {}
        for label, name in enumerate(self.classes):
            counts = {FIELD_NAMES.get(a, a): len(self.values(a, label)) for a in self.order}
            counts["combinations"] = math.prod(counts.values())
            out[name] = counts
        return out


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def load_attributes(data_dir: Path, folder: str, label_names: Sequence[str]) -> AttributeSet:
    """The attributes of AttrPrompt folder `folder` (yelp, agnews, sst-2) under
    `<data_dir>/attrprompt/`, for a task whose labels are `label_names` (by id; checked
    against the folder's label.txt, ignoring case and punctuation: `Sci/Tech` = `Sci_Tech`)."""
    if folder not in PROMPT_ATTRIBUTES:
        raise ValueError(
            f"unknown AttrPrompt attribute folder {folder!r}; known: {', '.join(sorted(PROMPT_ATTRIBUTES))}"
        )
    root = Path(data_dir) / "attrprompt"
    if not root.is_dir():
        raise FileNotFoundError(
            f"AttrPrompt's attribute files are looked for under <data dir>/attrprompt, and "
            f"{root} does not exist (data dir: {data_dir}); {ENV_HINT}"
        )
    base = root / folder
    label_path = base / "label.txt"
    attr_dir = base / METHOD / MODEL
    for need in (label_path, attr_dir):
        if not need.exists():
            raise FileNotFoundError(
                f"AttrPrompt file or folder missing: {need} (AttrPrompt's files are looked "
                f"for under <data dir>/attrprompt; data dir: {data_dir}); {ENV_HINT}"
            )
    classes = label_file_names(_lines(label_path))
    if [_normal(c) for c in classes] != [_normal(n) for n in label_names]:
        raise ValueError(
            f"{label_path} lists classes {classes}, which do not match the task's labels "
            f"{list(label_names)} (same order, ignoring case and punctuation)"
        )

    def need_file(path: Path) -> Path:
        if not path.is_file():
            raise FileNotFoundError(
                f"AttrPrompt attribute file missing: {path} (AttrPrompt's files are looked "
                f"for under <data dir>/attrprompt; data dir: {data_dir}); {ENV_HINT}"
            )
        return path

    order = PROMPT_ATTRIBUTES[folder]
    generic: dict[str, tuple[str, ...]] = {}
    subtopics: list[tuple[str, ...]] = []
    for attr in order:
        if attr == "subtopics":
            for c in classes:
                path = need_file(attr_dir / "subtopics" / f"{c}.jsonl")
                values = [v for v in (clean_subtopic(line) for line in _lines(path)) if v != ""]
                values.append(f"Others {SUBTOPIC_NAME} for {c}.")
                subtopics.append(tuple(values))
        else:
            path = need_file(attr_dir / attr / f"{attr}.txt")
            generic[attr] = tuple(line.strip("\n") for line in _lines(path))
            if not generic[attr]:
                raise ValueError(f"{path} has no values")
    return AttributeSet(folder, tuple(classes), order, generic, tuple(subtopics))


__all__ = ["PROMPT_ATTRIBUTES", "AttributeSet", "clean_subtopic", "load_attributes"]
