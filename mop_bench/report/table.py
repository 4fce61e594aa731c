"""`mop-bench table`: rendered comparisons as the paper's Table 1 (simulators x tasks).

Reads what a comparison page already computed (its `summary.json`: the per-simulator
means over seeds, the 95% t half-widths and the paired, Holm-corrected verdicts) and
lays it out as Table 1: simulators as rows, one column group per comparison (task),
FID / MAUVE / KL-cosine in each. The best mean of a column (calibration rows excluded)
is bold; a simulator the comparison's paired test did not find different from that
best carries a dagger. No test is run here: the marks are the verdicts behind the
comparison page's ranks. A second, separately labelled block gives the paper's
published Table 1 (mop_bench/reference.py, restated from REFERENCE.md section 6) for
the tasks the paper reports. Writers: table_render.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mop_bench import reference
from mop_bench.report.comparison import SUMMARY

#: Table 1's metrics, in its column order, with their direction (True: higher is better).
METRICS: dict[str, bool] = dict(reference.PAPER_METRICS)
#: Row order: the zero-shot floor, then the baselines, then MoP; others after, by name.
ROW_ORDER = ("temperature-only", "fixed-few-shot", "persona-only", "mop")
#: File stem used when `--out` names a directory.
DEFAULT_STEM = "table1"
PAPER_CAVEAT = "another LM, encoder and n: comparable in ordering, not in value"
#: Marks of a cell against its column's best (CSV `mark` column).
BEST, TIE, WORSE, UNTESTED = "best", "tie", "worse", "not tested"


@dataclass(frozen=True)
class Cell:
    """One simulator's mean over seeds on one metric of one comparison."""

    mean: float
    half_width: float | None
    """Half-width of the 95% t-interval over seeds (None with one seed)."""
    n_seeds: int
    mark: str = ""
    """BEST, TIE (the paired test found no difference from the best), WORSE, UNTESTED,
    or "" (calibration rows, or a column without paired tests)."""


@dataclass(frozen=True)
class Column:
    """One column group: a comparison folder and its task."""

    label: str
    """The task, or `task (folder)` when two folders hold one task."""
    task: str
    paper_task: str | None
    """The paper's name for the task (AGNews, Yelp, ...), None if it did not run it."""


@dataclass(frozen=True)
class Table1:
    """Our rows and the paper's rows, ready for the writers."""

    columns: tuple[Column, ...]
    sims: tuple[str, ...]
    calibration: frozenset[str]
    cells: Mapping[tuple[str, str, str], Cell]
    """(simulator, column label, metric) -> cell; absent where a comparison lacks it."""
    paper_methods: tuple[str, ...]
    paper: Mapping[tuple[str, str, str], Cell]
    """(paper method, column label, metric) -> published value (mark BEST on the best)."""
    notes: tuple[str, ...]
    """Columns without paired tests, and other things a reader must know."""


@dataclass(frozen=True)
class Summary:
    """What one comparison folder contributes: its task and its summary records."""

    folder: Path
    task: str
    records: tuple[dict[str, Any], ...]


def read_summary(folder: Path) -> Summary:
    """A rendered comparison's summary.json; ValueError naming the folder otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a comparison folder (not a directory)")
    if not (folder / "comparison.json").is_file():
        raise ValueError(f"{folder}: not a comparison folder (no comparison.json)")
    path = folder / f"{SUMMARY}.json"
    if not path.is_file():
        raise ValueError(
            f"{folder}: comparison not rendered (no {SUMMARY}.json); run `mop-bench report "
            f"{folder}` first"
        )
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from None
    ok = isinstance(records, list) and all(
        isinstance(r, dict) and {"table", "simulator", "metric"} <= r.keys() for r in records
    )
    sims = [r for r in records if r.get("table") == "simulators"] if ok else []
    if not sims:
        raise ValueError(f"{path}: not a comparison summary (no simulator rows)")
    tasks = {str(r.get("task")) for r in sims}
    if len(tasks) != 1:
        raise ValueError(f"{path}: expected one task, found {', '.join(sorted(tasks))}")
    return Summary(folder, tasks.pop(), tuple(records))


def build_table(folders: list[Path]) -> Table1:
    """Table 1 from comparison folders (one column group each, in the given order)."""
    summaries = [read_summary(f) for f in folders]
    counts: dict[str, int] = {}
    for s in summaries:
        counts[s.task] = counts.get(s.task, 0) + 1
    columns, cells, notes = [], {}, []
    calibration: set[str] = set()
    sims: set[str] = set()
    for s in summaries:
        label = s.task if counts[s.task] == 1 else f"{s.task} ({s.folder.name})"
        if label in {c.label for c in columns}:
            raise ValueError(f"{s.folder}: given twice")
        columns.append(Column(label, s.task, reference.paper_task(s.task)))
        rows = [r for r in s.records if r["table"] == "simulators" and r["metric"] in METRICS]
        calibration |= {str(r["simulator"]) for r in rows if r.get("calibration")}
        for metric, hib in METRICS.items():
            got = _column(s, label, metric, hib, [r for r in rows if r["metric"] == metric])
            cells.update(got[0])
            sims |= {sim for sim, _, _ in got[0]}
            notes += got[1]
    paper_cols = [c for c in columns if c.paper_task is not None]
    methods = tuple(reference.TABLE1) if paper_cols else ()
    paper = _paper_cells(paper_cols)
    if not paper_cols:
        notes.append("The paper reports none of these tasks: no published block.")
    order = sorted(sims, key=lambda s: (s in calibration, _order(s), s))
    return Table1(
        tuple(columns), tuple(order), frozenset(calibration), cells, methods, paper, tuple(notes)
    )


def _order(sim: str) -> int:
    return ROW_ORDER.index(sim) if sim in ROW_ORDER else len(ROW_ORDER)


def _column(
    s: Summary, label: str, metric: str, hib: bool, rows: list[dict[str, Any]]
) -> tuple[dict[tuple[str, str, str], Cell], list[str]]:
    """One metric column of one comparison: cells marked against the best mean."""
    values = {str(r["simulator"]): r for r in rows if isinstance(r.get("mean"), int | float)}
    ranked = {sim: float(r["mean"]) for sim, r in values.items() if not r.get("calibration")}
    notes: list[str] = []
    if not ranked:
        return {}, notes
    best_value = max(ranked.values()) if hib else min(ranked.values())
    best = {sim for sim, v in ranked.items() if v == best_value}
    verdicts = _verdicts(s.records, metric)
    if not verdicts and len(ranked) > 1:
        notes.append(f"{label}: no paired test on {metric} in {SUMMARY}.json: no tie marks")
    out = {}
    for sim, r in values.items():
        mark = ""
        if sim in best:
            mark = BEST
        elif sim in ranked and verdicts:
            found = [verdicts.get(frozenset((sim, b)), UNTESTED) for b in sorted(best)]
            mark = TIE if "tie" in found else UNTESTED if UNTESTED in found else WORSE
        hw = r.get("half_width")
        n = int(r.get("n_seeds") or 0)
        out[(sim, label, metric)] = Cell(
            mean=float(r["mean"]),
            half_width=float(hw) if isinstance(hw, int | float) and n > 1 else None,
            n_seeds=n,
            mark=mark,
        )
    return out, notes


def _verdicts(records: tuple[dict[str, Any], ...], metric: str) -> dict[frozenset[str], str]:
    """{pair: 'tie' | 'worse' | UNTESTED} from the comparison's paired rows."""
    out = {}
    for r in records:
        if r.get("table") != "paired" or r.get("metric") != metric:
            continue
        pair = frozenset((str(r["simulator"]), str(r.get("versus"))))
        verdict = str(r.get("verdict") or "")
        out[pair] = "tie" if verdict == "tie" else UNTESTED if verdict == "not tested" else WORSE
    return out


def _paper_cells(columns: list[Column]) -> dict[tuple[str, str, str], Cell]:
    out = {}
    for col in columns:
        rows = reference.table1_rows(col.task)
        for metric, hib in METRICS.items():
            vals = {r.method: r.value(metric) for r in rows}
            best = max(vals.values()) if hib else min(vals.values())
            for method, v in vals.items():
                out[(method, col.label, metric)] = Cell(v, None, 0, BEST if v == best else "")
    return out
