"""ProGen's in-context feedback (Ye et al., 2022b; HKUNLP/ProGen@43b7d25), below 10k.

At MoP's sample sizes ProGen's influence step never runs (it needs more than 10,000
training samples), so its feedback is: once the generator has accepted 100, 400, 1,200,
... texts, the demonstration pool becomes every accepted text so far; a batch's
requests of one label are shown (with one coin flip per batch and label) 8 random
same-label demonstrations. ../shared/BASELINES.md section 2.

The state is a function of the run's earlier accepted generations alone, so a resumed
run rebuilds it from `generations.jsonl` and checks it against the recorded rounds
(`progen_rounds.json`) before trusting either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mop_bench.types import Generation


@dataclass(frozen=True)
class Demo:
    index: int
    """The generation the demo is (its sample index)."""
    context: str
    text: str


def accepted(gen: Generation) -> bool:
    return not gen.details.get("rejected")


class DemoPool:
    """The demonstration pool at one point of a run: the accepted texts known when the
    last round threshold was crossed, by label."""

    def __init__(self, rounds: Sequence[int]) -> None:
        self.rounds = tuple(sorted(rounds))
        self.kept: list[Generation] = []
        """Every accepted generation added so far, in order."""
        self.by_label: dict[int | None, list[Demo]] = {}
        self.round_log: list[dict[str, int]] = []
        """One entry per refresh: accepted count reached and the last index included."""

    def add(self, gens: Iterable[Generation]) -> None:
        """Add a chunk's generations (in index order), refreshing at thresholds crossed
        by the chunk's end: ProGen refreshes between batches, never inside one."""
        self.kept.extend(g for g in gens if accepted(g))
        kept = self.kept
        crossed = [r for r in self.rounds if r <= len(kept)]
        if crossed and (not self.round_log or self.round_log[-1]["threshold"] < crossed[-1]):
            self.by_label = {}
            for g in kept:
                demo = Demo(g.index, str(g.details.get("context_value", "")), g.text)
                self.by_label.setdefault(g.label, []).append(demo)
            self.round_log.append(
                {"threshold": crossed[-1], "accepted": len(kept), "last_index": kept[-1].index}
            )

    def demos_for(self, label: int | None, k: int, rng: np.random.Generator) -> list[Demo]:
        pool = self.by_label.get(label, [])
        if not pool:
            return []
        picks = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
        return [pool[i] for i in picks.tolist()]
