"""The paired-difference tables as pages, CSV/JSON records and Markdown show them.

One table per metric, one row per pair: the difference (first - second simulator of the
pair), its 95% interval, the p-value, the Holm-adjusted p-value and the verdict; under
each table a power line, the smallest difference this design would find.
"""

from __future__ import annotations

import statistics
from typing import Any

from mop_bench.report.aggregate import Group, metric_label
from mop_bench.report.paired import PairedAnalysis, PairResult
from mop_bench.report.render import fmt_bounds, fmt_num, fmt_value

#: Columns the paired rows add to a comparison's summary.csv / summary.json.
PAIRED_COLUMNS = [
    "versus",
    "difference",
    "diff_ci_low",
    "diff_ci_high",
    "diff_se",
    "p_value",
    "p_holm",
    "verdict",
    "better",
    "mde",
    "p_bootstrap_empirical",
    "n_draws",
    "bootstrap_seed",
    "test_note",
]

SIGN = (
    "Difference = first − second simulator of the pair, pooled over the seeds both have "
    "(mean of the per-seed differences); for ↓ metrics a negative difference favours the "
    "first, for ↑ metrics a positive one."
)


CONSERVATIVE = (
    " For FID this is an upper bound: in high dimension its bootstrap SE runs up to about "
    "twice the true one (docs/report.md)."
)


def fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def method_text(analysis: PairedAnalysis) -> str:
    s = analysis.settings
    return (
        f"Paired bootstrap: {s.draws} draws ({s.mauve_draws} for MAUVE) from bootstrap seed "
        f"{s.seed}; within each seed one resample of the sample indices shared by both "
        f"simulators and one of the golden set; 95% interval and two-sided p from the "
        f"bootstrap standard error (normal approximation); verdicts Holm-corrected over the "
        f"pairs of each metric at α = {s.alpha}."
    )


def power_line(analysis: PairedAnalysis, group: Group, metric: str) -> str:
    """The smallest difference found with the stated power, from the bootstrap SEs."""
    from scipy.stats import norm

    s = analysis.settings
    tested = [r.test for r in analysis.pairs.get(metric, []) if r.test is not None]
    label = metric_label(metric)
    if not tested:
        return f"Power: no pair could be tested on {label}."
    mdes = [t.mde for t in tested]
    spread = "" if len(mdes) == 1 else f" ({fmt_num(min(mdes))}–{fmt_num(max(mdes))})"
    z = float(norm.ppf(1 - s.alpha / 2)) + float(norm.ppf(s.power))
    z_holm = float(norm.ppf(1 - s.alpha / (2 * len(tested)))) + float(norm.ppf(s.power))
    seeds = len(analysis.seeds)
    return (
        f"Power: at n = {_sizes(analysis.n_synth)} × {seeds} seed{'s' * (seeds > 1)} (golden "
        f"set {_sizes(analysis.n_real)}), a {label} difference of "
        f"{fmt_num(statistics.median(mdes))}{spread} is detected with {s.power:.0%} power at "
        f"α = {s.alpha} ({z:.2f} × the bootstrap SE of the difference, median over "
        f"{len(tested)} pair{'s' * (len(tested) > 1)}; Holm's first step needs "
        f"{z_holm / z:.2f}× that); smaller differences are usually ties."
        + (CONSERVATIVE if metric == "fid" else "")
    )


def _sizes(values: list[int]) -> str:
    return "/".join(f"{v:,}" for v in values) or "?"


def _row(r: PairResult) -> dict[str, Any]:
    t = r.test
    return {
        "pair": f"{r.a} − {r.b}",
        "seeds": ", ".join(map(str, r.seeds)) or "—",
        # Rounded by the interval's width (render.fmt_value), as every estimate.
        "difference": fmt_value(t.difference, (t.ci_high - t.ci_low) / 2) if t else "—",
        "ci": fmt_bounds(t.ci_low, t.ci_high) if t else "—",
        "p": fmt_p(t.p if t else None),
        "p_holm": fmt_p(r.p_holm),
        "verdict": r.verdict,
        "significant": r.better is not None,
        "note": r.note,
    }


def paired_tables(analysis: PairedAnalysis, group: Group) -> list[dict[str, Any]]:
    """Template-ready tables, one per paired metric."""
    return [
        {
            "metric": m,
            "label": metric_label(m),
            "hib": group.higher_is_better(m),
            "rows": [_row(r) for r in analysis.pairs[m]],
            "power": power_line(analysis, group, m),
        }
        for m in analysis.metrics
    ]


def paired_records(
    task: str, n: int, group_key: str, group: Group, analysis: PairedAnalysis
) -> list[dict[str, Any]]:
    """One record per metric x pair for summary.csv / summary.json (table = 'paired')."""
    out = []
    for m in analysis.metrics:
        for r in analysis.pairs[m]:
            t = r.test
            out.append(
                {
                    "table": "paired",
                    "task": task,
                    "group": n,
                    "group_key": group_key,
                    "simulator": r.a,
                    "versus": r.b,
                    "calibration": False,
                    "metric": m,
                    "higher_is_better": group.higher_is_better(m),
                    "n_seeds": len(r.seeds),
                    "seeds": " ".join(map(str, r.seeds)),
                    "difference": t.difference if t else None,
                    "diff_ci_low": t.ci_low if t else None,
                    "diff_ci_high": t.ci_high if t else None,
                    "diff_se": t.se if t else None,
                    "p_value": t.p if t else None,
                    "p_holm": r.p_holm,
                    "verdict": r.verdict,
                    "better": r.better,
                    "mde": t.mde if t else None,
                    "p_bootstrap_empirical": t.p_empirical if t else None,
                    "n_draws": r.draws,
                    "bootstrap_seed": analysis.settings.seed,
                    "test_note": r.note or None,
                }
            )
    return out


def paired_markdown(analysis: PairedAnalysis, group: Group) -> str:
    """The paired tables as Markdown, each followed by its power line."""
    if not analysis.metrics:
        return ""
    parts = ["## Paired differences", "", method_text(analysis) + " " + SIGN, ""]
    for table in paired_tables(analysis, group):
        arrow = "↑" if table["hib"] else "↓"
        parts += [
            f"### {table['label']} {arrow}",
            "",
            "| pair | seeds | difference | 95% CI | p | p (Holm) | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in table["rows"]:
            verdict = row["verdict"] + (f" ({row['note']})" if row["note"] else "")
            cells = [row[k] for k in ("pair", "seeds", "difference", "ci", "p", "p_holm")]
            parts.append("| " + " | ".join([*cells, verdict]) + " |")
        parts += ["", table["power"], ""]
    return "\n".join(parts)
