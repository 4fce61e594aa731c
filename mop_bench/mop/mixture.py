"""The slots of one MoP configuration: which personas and exemplar sets exist.

Every simulator is the same two-level mixture; what differs is the slots. No personas
is one empty persona slot; no exemplars is one empty exemplar slot; fixed few-shot is
one slot holding the F fixed exemplars; gated exemplars are one slot per pool example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mop_bench.mop.prompts import (
    PromptSettings,
    build_messages,
    exemplar_feature_text,
    render_request,
)
from mop_bench.types import Example


@dataclass
class Mixture:
    personas: list[str]
    """Persona texts; empty when the simulator has no personas."""
    exemplar_slots: list[tuple[Example, ...]]
    exemplar_mode: str
    """gated | fixed | none"""
    request_template: str
    prompt: PromptSettings
    exemplar_match: tuple[str, ...] = ()
    """Context fields a gated exemplar must share with the request (SimulatorSpec)."""

    @property
    def n_persona_slots(self) -> int:
        return max(1, len(self.personas))

    @property
    def n_exemplar_slots(self) -> int:
        return len(self.exemplar_slots)

    def persona_text(self, k: int) -> str | None:
        return self.personas[k] if self.personas else None

    def slot_exemplars(self, j: int, exclude_uid: str | None = None) -> tuple[Example, ...]:
        """The exemplars of slot j, without the example being scored (never its own
        exemplar: for a fixed set that contains it, the other F-1 are shown)."""
        return tuple(ex for ex in self.exemplar_slots[j] if ex.uid != exclude_uid)

    def messages(
        self, context: str, k: int, j: int, exclude_uid: str | None = None
    ) -> tuple[list[dict[str, str]], list[str]]:
        exemplars = self.slot_exemplars(j, exclude_uid)
        msgs = build_messages(
            render_request(self.request_template, context),
            self.persona_text(k),
            exemplars,
            self.prompt,
        )
        return msgs, [ex.uid for ex in exemplars]

    def allowed(self, rows: Sequence[Any]) -> np.ndarray | None:
        """(B, J) True where gated exemplar slot j may serve row b: never the row's own
        example (rows with a `uid`), and with `exemplar_match` only exemplars whose match
        fields equal the row's. A row that no exemplar matches may use any exemplar but
        its own (counted by `match_fallbacks`). None when exemplars are not gated."""
        if self.exemplar_mode != "gated":
            return None
        slot_uid = np.array([slot[0].uid for slot in self.exemplar_slots], dtype=object)
        out = np.ones((len(rows), len(slot_uid)), dtype=bool)
        if self.exemplar_match:
            keys = [match_key(slot[0], self.exemplar_match) for slot in self.exemplar_slots]
            for r, row in enumerate(rows):
                want = match_key(row, self.exemplar_match)
                out[r] = [k == want for k in keys]
        for r, row in enumerate(rows):
            uid = getattr(row, "uid", None)
            own = slot_uid == uid if uid else np.zeros(len(slot_uid), dtype=bool)
            out[r] &= ~own
            if not out[r].any():
                out[r] = ~own
        return out

    def match_fallbacks(self, rows: Sequence[Any]) -> int:
        """Rows for which no exemplar shares the match fields (they use any exemplar)."""
        if self.exemplar_mode != "gated" or not self.exemplar_match:
            return 0
        keys = {match_key(slot[0], self.exemplar_match) for slot in self.exemplar_slots}
        return sum(match_key(row, self.exemplar_match) not in keys for row in rows)

    def features(self, encode) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Encoder features of the persona slots and the gated exemplar slots."""
        g = np.asarray(encode(self.personas), dtype=np.float32) if self.personas else None
        e = None
        if self.exemplar_mode == "gated":
            texts = [exemplar_feature_text(slot[0], self.prompt) for slot in self.exemplar_slots]
            e = np.asarray(encode(texts), dtype=np.float32)
        return g, e


def match_key(row: Any, fields: Sequence[str]) -> tuple[Any, ...]:
    """The values of `fields` for an example or a context: `label` is the label index,
    any other name a context field (missing fields compare as None)."""
    return tuple(
        getattr(row, "label", None) if f == "label" else (getattr(row, "fields", None) or {}).get(f)
        for f in fields
    )


def make_slots(
    mode: str, pool: Sequence[Example], n_fixed: int, seed: int
) -> list[tuple[Example, ...]]:
    """Exemplar slots for a mode; fixed exemplars are drawn once with the run seed."""
    if mode == "none":
        return [()]
    if mode == "gated":
        if len(pool) < 2:
            raise ValueError("gated exemplars need a pool of at least 2 examples")
        return [(ex,) for ex in pool]
    if mode == "fixed":
        if not 1 <= n_fixed <= len(pool):
            raise ValueError(f"n_fixed_exemplars={n_fixed} must be in 1..{len(pool)} (pool size)")
        picks = np.random.default_rng([seed, 5]).choice(len(pool), size=n_fixed, replace=False)
        return [tuple(pool[i] for i in sorted(picks.tolist()))]
    raise ValueError(f"unknown exemplar mode {mode!r}")


def check_uids(pool: Sequence[Example]) -> None:
    """Own-exemplar exclusion and the score cache key on uids: they must be unique."""
    seen: dict[str, int] = {}
    for i, ex in enumerate(pool):
        if not ex.uid:
            raise ValueError(f"pool example at position {i} has an empty uid")
        if ex.uid in seen:
            raise ValueError(
                f"pool examples at positions {seen[ex.uid]} and {i} share the uid {ex.uid!r}"
            )
        seen[ex.uid] = i
