"""The leaderboard's groups: runs that can be ranked against each other on equal terms.

A comparable key (same budget, data sizes, LM, encoder, metric settings) is necessary
but not enough. Within one key the leaderboard used to pool a 3-seed comparison with
1-seed ablation runs, so a simulator's mean over 3 seeds was ranked against another's
single value, and one simulator name could stand for several configurations (a sweep's
`mop` with 4 and with 8 personas) whose values were averaged as if they were seeds. A
group here is one comparable key, one seed set, and one configuration per simulator
name; each extra group says what sets it apart from the task's first group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mop_bench.report.aggregate import group_by_key
from mop_bench.report.load import RunData, key_diff

#: Spec sections that configure a simulator beyond its comparable key: two runs with the
#: same name and seed but different values here are different simulators.
CONFIG_SECTIONS = ("simulator", "fit")


@dataclass(frozen=True)
class BoardGroup:
    """Runs ranked together: one comparable key, one seed set, one config per name."""

    key: dict[str, Any]
    runs: tuple[RunData, ...]
    seeds: tuple[int, ...]
    why: str
    """What sets this group apart from the task's first group ("" for the first)."""


def configuration(run: RunData) -> dict[str, Any]:
    return {s: run.spec.get(s) for s in CONFIG_SECTIONS}


def _config_id(run: RunData) -> str:
    return json.dumps(configuration(run), sort_keys=True, default=str)


def board_groups(runs: list[RunData]) -> list[BoardGroup]:
    """The runs of one task split into rankable groups, the largest first.

    Each simulator configuration goes to the group of its exact seed set, so every
    simulator in a group has a run for every seed of the group and none for another. A
    second configuration with the same name and seed set gets a group of its own.
    """
    found: list[tuple[dict[str, Any], tuple[int, ...], int, list[RunData], list[str]]] = []
    for key, members in group_by_key(runs):
        configs: dict[tuple[str, str], list[RunData]] = {}
        for run in members:
            configs.setdefault((run.sim, _config_id(run)), []).append(run)
        buckets: dict[tuple[tuple[int, ...], int], list[RunData]] = {}
        notes: dict[tuple[tuple[int, ...], int], list[str]] = {}
        # The configuration with most runs keeps variant 0 (its name's main group).
        for (sim, _), cruns in sorted(configs.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            seeds = tuple(sorted({r.seed for r in cruns}))
            variant = 0
            while any(r.sim == sim for r in buckets.get((seeds, variant), [])):
                variant += 1
            buckets.setdefault((seeds, variant), []).extend(cruns)
            if variant:
                main = next(r for r in buckets[(seeds, 0)] if r.sim == sim)
                diff = "; ".join(key_diff(configuration(cruns[0]), configuration(main)))
                notes.setdefault((seeds, variant), []).append(
                    f"another configuration of {sim}: {diff or 'settings differ'}"
                )
        for (seeds, variant), bruns in buckets.items():
            found.append((key, seeds, variant, bruns, notes.get((seeds, variant), [])))
    # Largest first; a name's main configuration before its others; more seeds first.
    found.sort(key=lambda g: (-len(g[3]), g[2], -len(g[1]), g[1]))
    if not found:
        return []
    ref_key, ref_seeds = found[0][0], found[0][1]
    groups = []
    for n, (key, seeds, _, members, notes_) in enumerate(found):
        reasons = [*key_diff(key, ref_key)] if n else []
        if n and seeds != ref_seeds:
            reasons.append(f"seeds {_seeds(seeds)} (vs {_seeds(ref_seeds)})")
        reasons += notes_
        # Group 1 is what the others are told apart from: it needs no reason.
        why = "" if n == 0 else "; ".join(reasons) or "comparable key differs"
        groups.append(BoardGroup(key, tuple(members), seeds, why))
    return groups


def _seeds(seeds: tuple[int, ...]) -> str:
    return ", ".join(map(str, seeds))
