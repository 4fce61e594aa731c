"""Machine-readable and paste-ready exports of summarised groups (CSV, JSON, Markdown).

The HTML pages are for reading; these files are for the people who put the numbers in
a paper or a notebook, so they carry the same intervals and ranks, never fewer digits
than the pages.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mop_bench.report.aggregate import COST_FIELDS, Group, metric_label
from mop_bench.report.load import key_id
from mop_bench.report.normalised import Normalised, norm_fields
from mop_bench.report.render import fmt_interval, fmt_num
from mop_bench.safe_csv import write_csv

COLUMNS = [
    "task",
    "group",
    "group_key",
    "simulator",
    "calibration",
    "metric",
    "higher_is_better",
    "n_seeds",
    "seeds",
    "mean",
    "ci_low",
    "ci_high",
    "half_width",
    "internal_spread",
    "rank",
    "missing_runs",
    *COST_FIELDS,
]


def group_records(
    task: str, n: int, group: Group, norm: Normalised | None = None
) -> list[dict[str, Any]]:
    """One record per simulator x metric; cost columns are the simulator's mean per seed.

    With `norm`, each record also carries the normalised score (NORM_COLUMNS: callers
    append them after their existing columns)."""
    kid = group_key_id(group)
    out = []
    for sim in group.sims:
        cost = group.cost(sim)
        for m in group.metrics:
            c = group.cells[(sim, m)]
            iv = c.interval
            out.append(
                {
                    "task": task,
                    "group": n,
                    "group_key": kid,
                    "simulator": sim,
                    "calibration": sim in group.calibration,
                    "metric": m,
                    "higher_is_better": c.higher_is_better,
                    "n_seeds": len(c.values),
                    "seeds": " ".join(map(str, c.seeds)),
                    "mean": None if iv is None else iv.mean,
                    "ci_low": None if iv is None else iv.low,
                    "ci_high": None if iv is None else iv.high,
                    "half_width": None if iv is None else iv.half_width,
                    "internal_spread": c.spread,
                    "rank": c.rank,
                    "missing_runs": c.missing,
                    **{k: cost[k][0] if k in cost else None for k in COST_FIELDS},
                    **(norm_fields(norm, sim, m) if norm is not None else {}),
                }
            )
    return out


def group_key_id(group: Group) -> str:
    return hashlib.sha256(key_id(group.key).encode()).hexdigest()[:10]


def write_tables(
    records: list[dict[str, Any]], stem: Path, columns: list[str] | None = None
) -> tuple[Path, Path]:
    """`stem`.csv and `stem`.json from `records` (pandas); returns both paths."""
    import pandas as pd

    df = pd.DataFrame.from_records(records, columns=columns or COLUMNS)
    # Integer columns stay integers where some rows have none (calibration, paired rows).
    for col in ("rank", "n_draws", "bootstrap_seed"):
        if col in df:
            df[col] = df[col].astype("Int64")
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = stem.with_suffix(".csv"), stem.with_suffix(".json")
    write_csv(df, csv_path)  # text cells neutralised against formula injection
    df.to_json(json_path, orient="records", indent=2)
    return csv_path, json_path


def markdown_table(group: Group, order: list[str], tie_rule: str) -> str:
    """A GitHub-flavoured Markdown table of `group`, simulators in `order` (best first)."""
    head = ["simulator", "seeds"]
    head += [
        f"{metric_label(m)} {'↑' if group.higher_is_better(m) else '↓'}" for m in group.metrics
    ]
    head += ["simulate s / seed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sim in order:
        note = group.calibration_note(sim)
        label = sim + (f" (calibration, {note})" if note else "")
        cells = [label, ", ".join(map(str, group.seeds(sim)))]
        for m in group.metrics:
            c = group.cells[(sim, m)]
            iv = c.interval
            if iv is None:
                cells.append("failed" if c.missing else "—")
                continue
            # The pages' interval text (round-off of identical replicates shows as ± 0),
            # shortened for one seed, where the note already says there is no interval.
            text = fmt_num(iv.mean) if iv.half_width is None else fmt_interval(iv)
            if c.rank is not None:
                text += f" ({c.rank}{'=' if group.shares_rank(sim, m) else ''})"
            cells.append(text)
        sim_s = group.cost(sim).get("simulate_seconds")
        cells.append("—" if sim_s is None else f"{sim_s[0]:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        "Mean ± half-width of the 95% t-interval over seeds (no ± with one seed); "
        "(rank), '=' marks a shared rank. " + tie_rule
    )
    return "\n".join(lines) + "\n\n" + note + "\n"
