"""The slots of one MoP configuration: which personas and exemplar sets exist.

Every simulator is the same two-level mixture; what differs is the slots. No personas
is one empty persona slot; no exemplars is one empty exemplar slot; fixed few-shot is
one slot holding the L fixed exemplars (one per label with `exemplar_match: [label]`);
gated exemplars are one slot per pool example: that example (the slot's *anchor*,
shown last, nearest the request) and L-1 others of its match group drawn with the seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mop_bench.lm.base import Prompt
from mop_bench.mop.prompts import CardPrompt, exemplar_feature_text, render_prompt
from mop_bench.prompt_spec import PromptSpec
from mop_bench.types import Example


@dataclass
class Mixture:
    personas: list[str]
    """Persona texts; empty when the simulator has no personas."""
    exemplar_slots: list[tuple[Example, ...]]
    exemplar_mode: str
    """gated | fixed | none"""
    card: CardPrompt
    prompt: PromptSpec
    exemplar_match: tuple[str, ...] = ()
    """Context fields a gated exemplar must share with the request (SimulatorSpec)."""
    persona_labels: list[int | None] = field(default_factory=list)
    """Each persona's cluster majority label (None: no cluster label)."""
    persona_match: bool = False
    """`persona_label_match`: a persona serves only requests of its label."""

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

    def render(
        self,
        context: str,
        fields: dict[str, Any],
        k: int,
        j: int,
        exclude_uid: str | None = None,
    ) -> tuple[Prompt, list[str]]:
        """The prompt of component (k, j) for one request (context text and fields),
        and the uids of the exemplars it shows. Generation, the fit's scoring and
        `heldout_nll` all call this."""
        exemplars = self.slot_exemplars(j, exclude_uid)
        prompt = render_prompt(
            self.prompt,
            self.card,
            context=context,
            fields=fields,
            persona=self.persona_text(k),
            exemplars=exemplars,
        )
        return prompt, [ex.uid for ex in exemplars]

    @property
    def masked(self) -> bool:
        """Whether some rows may not use some exemplar slots (`allowed` is not None)."""
        return self.exemplar_mode == "gated" or (
            self.exemplar_mode == "fixed" and self.n_exemplar_slots > 1
        )

    def allowed(self, rows: Sequence[Any]) -> np.ndarray | None:
        """(B, J) True where exemplar slot j may serve row b: never a gated slot
        anchored on the row's own example (rows with a `uid`; a fixed or gated set that
        merely contains it shows the others), and with `exemplar_match` only slots whose
        match fields equal the row's. A row that no slot matches may use any slot but its
        own (counted by `match_fallbacks`). None with a single slot and no gate."""
        if not self.masked:
            return None
        anchors = np.array([slot[-1].uid for slot in self.exemplar_slots], dtype=object)
        out = np.ones((len(rows), len(anchors)), dtype=bool)
        if self.exemplar_match:
            keys = [match_key(slot[-1], self.exemplar_match) for slot in self.exemplar_slots]
            for r, row in enumerate(rows):
                want = match_key(row, self.exemplar_match)
                out[r] = [k == want for k in keys]
        gated = self.exemplar_mode == "gated"
        for r, row in enumerate(rows):
            uid = getattr(row, "uid", None)
            own = anchors == uid if uid and gated else np.zeros(len(anchors), dtype=bool)
            out[r] &= ~own
            if not out[r].any():
                out[r] = ~own
        return out

    def persona_allowed(self, rows: Sequence[Any]) -> np.ndarray | None:
        """(B, K) True where persona k may serve row b (`persona_label_match`): its
        cluster label is the row's, or it has none; a row no persona matches may use
        any. None without the option (or without personas)."""
        if not self.persona_match or not self.personas:
            return None
        labels = self.persona_labels or [None] * len(self.personas)
        out = np.ones((len(rows), len(self.personas)), dtype=bool)
        for r, row in enumerate(rows):
            want = getattr(row, "label", None)
            if want is None:
                continue
            ok = np.array([lab is None or lab == want for lab in labels], dtype=bool)
            out[r] = ok if ok.any() else True
        return out

    def match_fallbacks(self, rows: Sequence[Any]) -> int:
        """Rows for which no exemplar slot shares the match fields (they use any)."""
        if not self.masked or not self.exemplar_match:
            return 0
        keys = {match_key(slot[-1], self.exemplar_match) for slot in self.exemplar_slots}
        return sum(match_key(row, self.exemplar_match) not in keys for row in rows)

    def features(self, encode) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Encoder features of the persona slots and of the gated exemplar slots (a
        set's feature is the mean of its exemplars' features)."""
        g = np.asarray(encode(self.personas), dtype=np.float32) if self.personas else None
        e = None
        if self.exemplar_mode == "gated":
            uids = sorted({ex.uid for slot in self.exemplar_slots for ex in slot})
            by_uid = {ex.uid: ex for slot in self.exemplar_slots for ex in slot}
            texts = [exemplar_feature_text(by_uid[u], self.prompt) for u in uids]
            vecs = np.asarray(encode(texts), dtype=np.float32)
            row = {u: i for i, u in enumerate(uids)}
            e = np.stack(
                [vecs[[row[ex.uid] for ex in slot]].mean(axis=0) for slot in self.exemplar_slots]
            ).astype(np.float32)
        return g, e


def match_key(row: Any, fields: Sequence[str]) -> tuple[Any, ...]:
    """The values of `fields` for an example or a context: `label` is the label index,
    any other name a context field (missing fields compare as None)."""
    return tuple(
        getattr(row, "label", None) if f == "label" else (getattr(row, "fields", None) or {}).get(f)
        for f in fields
    )


def match_groups(pool: Sequence[Example], match: Sequence[str]) -> list[list[int]]:
    """Pool positions by match key (one group without matching), in a stable order."""
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(pool):
        groups.setdefault(repr(match_key(ex, match)) if match else "", []).append(i)
    return [groups[k] for k in sorted(groups)]


def make_slots(
    mode: str,
    pool: Sequence[Example],
    per_prompt: int,
    seed: int,
    match: Sequence[str] = (),
) -> list[tuple[Example, ...]]:
    """Exemplar slots for a mode, drawn once with the run seed (module docstring)."""
    if mode == "none":
        return [()]
    if not 1 <= per_prompt <= len(pool):
        raise ValueError(f"exemplars_per_prompt={per_prompt} must be in 1..{len(pool)} (pool size)")
    if mode == "gated":
        if len(pool) < 2:
            raise ValueError("gated exemplars need a pool of at least 2 examples")
        if per_prompt == 1:
            return [(ex,) for ex in pool]
        group_of = {i: g for g in match_groups(pool, match) for i in g}
        rng = np.random.default_rng([seed, 6])
        slots = []
        for i, anchor in enumerate(pool):
            others = [m for m in group_of[i] if m != i]
            take = min(per_prompt - 1, len(others))
            picks = rng.choice(len(others), size=take, replace=False) if take else []
            slots.append((*(pool[others[p]] for p in sorted(picks)), anchor))
        return slots
    if mode == "fixed":
        if not match:  # one set for every request (the seeds' draw as before matching)
            picks = np.random.default_rng([seed, 5]).choice(len(pool), per_prompt, replace=False)
            return [tuple(pool[i] for i in sorted(picks.tolist()))]
        slots = []
        for g, members in enumerate(match_groups(pool, match)):
            take = min(per_prompt, len(members))
            picks = np.random.default_rng([seed, 5, g]).choice(len(members), take, replace=False)
            slots.append(tuple(pool[members[p]] for p in sorted(picks.tolist())))
        return slots
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
