"""One generation pass with the literature's filters: draw, check, draw again.

A rejected sample is drawn again with its attempt number in the seed, up to
`max_attempts` times, in one `lm.generate` call per attempt round, so a chunk's texts
are a function of the chunk alone (the batches of each round are too). After the last
attempt the text is kept and marked `rejected`: every simulator returns one text per
request (the budget), and the reason stays in the record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mop_bench.lm.base import Prompt

#: A filter: (raw generated text, row) -> (kept text, None) or (text, reason rejected).
Check = Callable[[str, int], tuple[str, str | None]]


def attempt_seed(seed: int, attempt: int) -> int:
    """Attempt 0 keeps the sample's own seed (as every simulator's first draw does)."""
    return seed if attempt == 0 else (seed * 1_000_003 + attempt * 104_729) % (2**31 - 1)


@dataclass
class Drawn:
    """What one row ended with."""

    text: str
    raw: str
    n_tokens: int
    attempts: int
    rejected: str | None = None
    """Why the last attempt was rejected too (None: accepted)."""
    reasons: list[str] = field(default_factory=list)
    """Why each earlier attempt was rejected."""


def draw_with_filters(
    lm: Any,
    prompts: Sequence[Prompt],
    seeds: Sequence[int],
    *,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    min_new_tokens: int,
    max_attempts: int,
    check: Check,
) -> list[Drawn]:
    """Generate one accepted text per prompt where `max_attempts` draws allow."""
    n = len(prompts)
    done: list[Drawn | None] = [None] * n
    reasons: list[list[str]] = [[] for _ in range(n)]
    todo = list(range(n))
    for attempt in range(max_attempts):
        if not todo:
            break
        comps = lm.generate(
            [prompts[i] for i in todo],
            temperatures=[temperature] * len(todo),
            seeds=[attempt_seed(seeds[i], attempt) for i in todo],
            max_new_tokens=max_new_tokens,
            top_p=top_p,
            **({"min_new_tokens": min_new_tokens} if min_new_tokens else {}),
        )
        if len(comps) != len(todo):
            raise ValueError(f"LM returned {len(comps)} completions for {len(todo)} prompts")
        again = []
        for i, comp in zip(todo, comps, strict=True):
            text, why = check(comp.text, i)
            last = attempt == max_attempts - 1
            if why is None or last:
                done[i] = Drawn(text, comp.text, comp.n_tokens, attempt + 1, why, reasons[i])
            else:
                reasons[i].append(why)
                again.append(i)
        todo = again
    return [d for d in done if d is not None]
