"""Task cards: the declarative description of one population (which files, which
columns, how an example's context is rendered) and their validation."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from mop_bench.registry import suggest
from mop_bench.yaml_load import load_yaml

#: The derived context field holding an example's label name.
LABEL_NAME = "label_name"


@dataclass(frozen=True)
class TaskCard:
    """One population: where its data lives and how an example's context is phrased."""

    name: str
    """Short identifier used on the command line and in results (e.g. `yelp`)."""
    version: str
    """Card version; bump it whenever a change alters loaded texts or contexts."""
    description: str
    """One paragraph on what the population is and how it was sampled."""
    citation: str
    """How to cite the data source."""
    hub_id: str | None
    """Hugging Face Hub dataset id used when no mirror directory is configured."""
    hub_revision: str | None
    """Hub revision (branch, tag or commit) to load; None means the Hub's default."""
    hub_config: str | None
    """Hub dataset configuration name, if the dataset has several."""
    mirror_dir: str | None
    """Folder under the data directory holding this task's files (e.g. `yelp`); None for
    a user card, whose split files are resolved relative to the card file."""
    splits: dict[str, str]
    """Split name -> file name (in the mirror folder, or relative to the card file)."""
    text_column: str
    """Column holding the response texts (y)."""
    label_column: str | None
    """Column holding labels (an index into `label_names` or a label name); None when
    the data is unlabelled."""
    label_names: tuple[str, ...]
    """Human-readable label names, in label-index order."""
    context_fields: tuple[str, ...]
    """Columns (plus the derived `label_name`) that `context_template` uses."""
    context_template: str
    """`str.format` template rendering an example's context x from its context fields."""
    request_template: str
    """The task sentence shown to the LM; `{context}` is replaced by the context x."""
    pool_split: str = "train"
    """Split the pool (what a simulator may see) and the held-out calibration rows come from."""
    golden_split: str = "test"
    """Split the golden (scoring) set comes from."""
    text_cleanup: tuple[str, ...] = ()
    """Named cleanups applied to every text at load (see `CLEANUPS`), in order."""
    source: str = ""
    """Path of the card file (for error messages); empty for built-in ad-hoc cards."""
    hub_context_template: str | None = None
    """Context template used when the data comes from the Hub, whose copy may lack the
    mirror's extra columns (IMDB's rating, Yelp's stars and category); None = the same."""
    completion_header: str | None = None
    """Template over the context fields heading one document in completion-style prompts
    (`mop_bench.prompt_spec`), e.g. "Yelp review ({stars} out of 5 stars):". None: the
    rendered context, capitalised, followed by ":"."""
    hub_completion_header: str | None = None
    """`completion_header` for Hub data (its fields); None there: the derived header."""
    holdout_fraction: float = 0.5
    """When the pool and golden splits name the same file, the fraction of its rows
    (label-stratified) that forms the golden split."""
    partition_seed: int = 0
    """Seed of that partition. Fixed per card, not the run seed, so the golden rows of a
    single-file task stay the same across runs, like a real test split."""

    @property
    def labelled(self) -> bool:
        return self.label_column is not None

    def for_hub(self) -> TaskCard:
        """The card as used with Hub data: its Hub template and the fields that uses."""
        if self.hub_context_template is None:
            return self
        return replace(
            self,
            context_template=self.hub_context_template,
            context_fields=_used_fields(self.hub_context_template, self.hub_completion_header),
            hub_context_template=None,
            completion_header=self.hub_completion_header,
            hub_completion_header=None,
        )

    def prompt_strings(self) -> dict[str, str | None]:
        """The card's share of every prompt (recorded and fingerprinted with a run)."""
        return {
            "request_template": self.request_template,
            "completion_header": self.completion_header,
        }

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


# ----------------------------------------------------------------------- text cleanups


_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _html_breaks(text: str) -> str:
    # IMDB keeps the site's <br /> tags; a simulator should not be scored on HTML.
    text = text.replace("<br />", "\n")  # the common spelling, without regex cost
    return _BR.sub("\n", text) if "<" in text else text


_AG_ENTITIES = {"#39;": "'", "quot;": '"', "#36;": "$", "amp;": "&", "lt;": "<", "gt;": ">"}
_AG_ENTITY_RE = re.compile(r"\s?(" + "|".join(re.escape(k) for k in _AG_ENTITIES) + ")")


def _agnews_entities(text: str) -> str:
    # AG News lost the '&' of its HTML entities (" #39;s", " quot;x quot;") and uses a
    # backslash for line breaks; restore the characters the writers typed.
    text = _AG_ENTITY_RE.sub(lambda m: _AG_ENTITIES[m.group(1)], text)
    return text.replace("\\", " ")


_HSPACE_RUN = re.compile(r"[ \t]{2,}|\t")
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")


def _whitespace(text: str) -> str:
    # Collapse runs of spaces/tabs and trim, keeping line breaks.
    # Python's re scans slowly for these patterns; `in` checks skip most texts.
    if "  " in text or "\t" in text:
        text = _HSPACE_RUN.sub(" ", text)
    if " \n" in text or "\n " in text:
        text = _SPACE_AROUND_NEWLINE.sub("\n", text)
    return text.strip()


#: Named cleanups a card may list in `text_cleanup`, each documented by its docstring.
CLEANUPS: dict[str, Callable[[str], str]] = {
    "html_breaks": _html_breaks,
    "agnews_entities": _agnews_entities,
    "whitespace": _whitespace,
}


def clean_text(card: TaskCard, text: str) -> str:
    for name in card.text_cleanup:
        text = CLEANUPS[name](text)
    return text


# ----------------------------------------------------------------------- templates


def template_fields(template: str) -> tuple[str, ...]:
    """Placeholder names of a `str.format` template, in order of first use.

    Only plain field names are allowed: `str.format` also evaluates attribute access
    and indexing (`{label_name.__class__.__mro__}` prints class internals), and a
    card is untrusted input, so `.`, `[` and nested `{}` in a format spec are refused."""
    names: list[str] = []
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is None:
            continue
        if not name or name.isdigit():
            raise ValueError(f"positional placeholder '{{{name}}}' in template {template!r}")
        if re.search(r"[.\[\]]", name) or (spec and "{" in spec):
            raise ValueError(
                f"placeholder '{{{name}}}' in template {template!r}: only plain field names "
                "are allowed (no attribute access, indexing or nested fields)"
            )
        if name not in names:
            names.append(name)
    return tuple(names)


def _used_fields(context_template: str, header: str | None) -> tuple[str, ...]:
    """Fields the context template uses, then those only the header uses."""
    used = template_fields(context_template)
    if header is None:
        return used
    return used + tuple(f for f in template_fields(header) if f not in used)


def render_context(card: TaskCard, fields_: dict[str, Any]) -> str:
    return card.context_template.format(**fields_)


def render_request(card: TaskCard, context: str) -> str:
    """The task sentence for one context, e.g. 'Please write a positive movie review ...'."""
    return card.request_template.format(context=context)


# ----------------------------------------------------------------------- loading cards

_FIELDS = {f.name: f for f in fields(TaskCard)}
_OPTIONAL_NONE = {"hub_id", "hub_revision", "hub_config", "mirror_dir", "label_column"}
_DEFAULTS: dict[str, Any] = {
    "version": "1",
    "description": "",
    "citation": "",
    "label_names": (),
    **dict.fromkeys(_OPTIONAL_NONE),
}


def load_card(path: Path) -> TaskCard:
    """Read and validate one task card (YAML); every error names the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read task card: {exc}") from exc
    raw = load_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a task card must be a YAML mapping of keys to values")
    raw.setdefault("name", path.stem)
    return card_from_dict(raw, source=str(path))


def card_from_dict(raw: dict[str, Any], *, source: str) -> TaskCard:
    """Build and validate a card from a mapping (a parsed YAML file or code)."""
    where = source or "task card"
    allowed = sorted(k for k in _FIELDS if k != "source")
    for key in raw:
        if key not in _FIELDS or key == "source":
            raise ValueError(
                f"{where}: unknown key {key!r}{suggest(str(key), allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )
    values = {**_DEFAULTS, **raw}
    missing = [
        k for k in ("name", "splits", "text_column", "context_template") if not values.get(k)
    ]
    if missing:
        raise ValueError(f"{where}: missing required key(s): {', '.join(missing)}")
    values.setdefault("request_template", "Please write {context}.")
    values.setdefault("context_fields", None)
    try:
        card = TaskCard(
            name=_str(values, "name", where),
            version=str(values["version"]),
            description=str(values["description"]).strip(),
            citation=str(values["citation"]).strip(),
            hub_id=_opt_str(values, "hub_id", where),
            hub_revision=_opt_str(values, "hub_revision", where),
            hub_config=_opt_str(values, "hub_config", where),
            mirror_dir=_opt_str(values, "mirror_dir", where),
            splits=_splits(values["splits"], where),
            text_column=_str(values, "text_column", where),
            label_column=_opt_str(values, "label_column", where),
            label_names=_str_tuple(values["label_names"], "label_names", where),
            context_fields=(),
            context_template=_str(values, "context_template", where),
            request_template=_str(values, "request_template", where),
            pool_split=str(values.get("pool_split", "train")),
            golden_split=str(values.get("golden_split", "test")),
            text_cleanup=_str_tuple(values.get("text_cleanup", ()), "text_cleanup", where),
            source=source,
            hub_context_template=_opt_str(values, "hub_context_template", where),
            completion_header=_opt_str(values, "completion_header", where),
            hub_completion_header=_opt_str(values, "hub_completion_header", where),
            holdout_fraction=float(values.get("holdout_fraction", 0.5)),
            partition_seed=int(values.get("partition_seed", 0)),
        )
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith(where) else f"{where}: {msg}") from exc
    declared = values["context_fields"]
    for key in ("context_template", "completion_header"):
        try:
            template_fields(getattr(card, key) or "")
        except ValueError as exc:  # malformed braces or a positional {}
            raise ValueError(f"{where}: {key}: {exc}") from exc
    used = _used_fields(card.context_template, card.completion_header)
    if declared is not None:
        declared_t = _str_tuple(declared, "context_fields", where)
        for key in ("context_template", "completion_header"):
            extra = [f for f in template_fields(getattr(card, key) or "") if f not in declared_t]
            if extra:
                raise ValueError(
                    f"{where}: {key} uses {', '.join(map(repr, extra))}, which "
                    f"context_fields does not list ({', '.join(declared_t) or 'empty'})"
                )
        used = declared_t
    card = replace(card, context_fields=used)
    validate_card(card)
    return card


def validate_card(card: TaskCard) -> None:
    """Checks that do not need the data; column checks happen when files are read."""
    where = card.source or f"task card {card.name!r}"
    for split in (card.pool_split, card.golden_split):
        if split not in card.splits:
            raise ValueError(
                f"{where}: split {split!r} is not in splits ({', '.join(card.splits)})"
            )
    for name in card.text_cleanup:
        if name not in CLEANUPS:
            raise ValueError(
                f"{where}: unknown text_cleanup {name!r}{suggest(name, list(CLEANUPS))}; "
                f"known: {', '.join(CLEANUPS)}"
            )
    if card.label_column and not card.label_names:
        raise ValueError(f"{where}: label_column is set, so label_names must list the labels")
    if len(set(card.label_names)) != len(card.label_names):
        raise ValueError(f"{where}: label_names has duplicates: {list(card.label_names)}")
    templates = {"context_template": card.context_template}
    for key in ("hub_context_template", "completion_header", "hub_completion_header"):
        if getattr(card, key) is not None:
            templates[key] = getattr(card, key)
    for key, template in templates.items():
        try:
            names = template_fields(template)
        except ValueError as exc:
            raise ValueError(f"{where}: {key}: {exc}") from exc
        if LABEL_NAME in names and not card.label_column:
            raise ValueError(f"{where}: {key} uses {{label_name}} but the card has no label_column")
    try:
        req_fields = template_fields(card.request_template)
    except ValueError as exc:
        raise ValueError(f"{where}: request_template: {exc}") from exc
    if req_fields != ("context",):
        raise ValueError(
            f"{where}: request_template must use exactly one placeholder, {{context}}; "
            f"got {list(req_fields)} in {card.request_template!r}"
        )
    if not 0.0 < card.holdout_fraction < 1.0:
        raise ValueError(
            f"{where}: holdout_fraction must be between 0 and 1, got {card.holdout_fraction}"
        )


def _str(values: dict[str, Any], key: str, where: str) -> str:
    value = values[key]
    if not isinstance(value, str | int | float) or isinstance(value, bool) or str(value) == "":
        raise ValueError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return str(value)


def _opt_str(values: dict[str, Any], key: str, where: str) -> str | None:
    return None if values.get(key) is None else _str(values, key, where)


def _str_tuple(value: Any, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}: {key} must be a list of strings, got {value!r}")
    return tuple(str(v) for v in value)


def _splits(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{where}: splits must map split names to file names, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}
