"""Plain records that flow between the pipeline stages (load -> simulate -> embed -> score).

They are deliberately small, frozen and JSON-friendly: every one of them ends up in a
run directory, and a stage should never need to know which other stage produced it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """One member of a real population: a response and the context it answered."""

    text: str
    """The response a real person wrote (y)."""
    label: int | None
    """Index into the task card's label names, or None for unlabelled data."""
    context: str
    """The rendered context x (the task card's template applied to `fields`)."""
    fields: dict[str, Any] = field(default_factory=dict)
    """The raw context fields (label name, category, stars...) the template used."""
    uid: str = ""
    """Stable identifier: `<split>:<row>` in the source file, for error messages and joins."""


@dataclass(frozen=True)
class Context:
    """A request for one synthetic response; `index` is the sample index in the run."""

    index: int
    text: str
    """The rendered context x shown to the simulator."""
    label: int | None
    """The label the synthetic response is meant to have (None if the task has no labels)."""
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Generation:
    """One synthetic response and a record of how it was made."""

    index: int
    context: str
    label: int | None
    text: str
    details: dict[str, Any] = field(default_factory=dict)
    """Simulator-specific provenance: persona, exemplar, temperature, seed, prompt..."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Generation:
        return cls(
            index=int(row["index"]),
            context=str(row["context"]),
            label=None if row.get("label") is None else int(row["label"]),
            text=str(row["text"]),
            details=dict(row.get("details") or {}),
        )


@dataclass(frozen=True)
class MetricResult:
    """A metric's value together with every setting that produced it."""

    name: str
    value: float
    settings: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    """Extra numbers (spread across seeds, per-label breakdown, histograms...)."""
    higher_is_better: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
