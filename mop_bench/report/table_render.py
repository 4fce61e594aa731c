"""Writers of `mop-bench table` (report/table.py): Markdown, LaTeX booktabs and CSV.

Names come from user files (simulator and task names), so each writer escapes them for
its format: Markdown's table and emphasis characters, LaTeX's ten specials, and the
CSV's formula starts (safe_csv).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mop_bench import reference
from mop_bench.report.table import (
    BEST,
    DEFAULT_STEM,
    METRICS,
    PAPER_CAVEAT,
    TIE,
    Cell,
    Column,
    Table1,
)

Cells = Mapping[tuple[str, str, str], Cell]

_LABEL = {"fid": "FID", "mauve": "MAUVE", "kl_cosine": "KL-cos"}
_TEX_ARROW = {True: r"$\uparrow$", False: r"$\downarrow$"}
_SUFFIXES = (".md", ".tex", ".csv")

_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """`text` with LaTeX's special characters made literal."""
    return "".join(_LATEX.get(ch, ch) for ch in text)


def markdown_escape(text: str) -> str:
    """`text` safe inside a Markdown table cell (no column breaks, no emphasis, no HTML)."""
    return "".join("\\" + ch if ch in "\\|*_`[]<>" else ch for ch in text.replace("\n", " "))


def _num(cell: Cell, *, pm: str, sep: str = " ") -> str:
    text = f"{cell.mean:.3f}"
    if cell.half_width is not None:
        text += f"{sep}{pm}{sep}{cell.half_width:.3f}"
    return text


def _legend(t: Table1, *, pm: str = "±", dagger: str = "†") -> str:
    seeds = sorted({c.n_seeds for c in t.cells.values()})
    return (
        f"Mean over seeds (seeds per cell: {'/'.join(map(str, seeds))}); {pm} the half-width "
        "of the 95% t-interval where there are several seeds. Bold: the best mean of the "
        f"column (calibration rows excluded); {dagger} not found different from the best by "
        "the comparison's paired bootstrap test (Holm-corrected, the test behind its page's "
        "ranks). Pairs that could not be tested carry no mark (see the CSV)."
    )


def _latex_text(text: str, **symbols: str) -> str:
    """Prose for a caption: escaped, "quotes" as ``quotes'', SYMBOL tokens as LaTeX."""
    out = re.sub(r'"([^"]*)"', r"``\1''", latex_escape(text))
    for token, tex in symbols.items():
        out = out.replace(token, tex)
    return out


def _caveat() -> str:
    return PAPER_CAVEAT[:1].upper() + PAPER_CAVEAT[1:]


def _paper_title() -> str:
    return (
        f"Published: the paper's Table 1 ({reference.CITATION}; Llama-3-8B-Instruct, "
        "all-mpnet-base-v2, 5,000 samples)"
    )


# ----------------------------------------------------------------------------- Markdown


def to_markdown(t: Table1) -> str:
    head = ["simulator"] + [
        f"{markdown_escape(c.label)} {_LABEL[m]} {'↑' if METRICS[m] else '↓'}"
        for c in t.columns
        for m in METRICS
    ]
    lines = ["## Ours: Table 1 layout", ""]
    lines += _md_rows(head, t.sims, t.cells, t.columns, t.calibration)
    lines += ["", _legend(t), *t.notes, ""]
    if t.paper_methods:
        paper_cols = [c for c in t.columns if c.paper_task]
        head = ["method"] + [
            f"{c.paper_task} {_LABEL[m]} {'↑' if METRICS[m] else '↓'}"
            for c in paper_cols
            for m in METRICS
        ]
        lines += [f"## {_paper_title()}", "", f"*{_caveat()}.*", ""]
        lines += _md_rows(head, t.paper_methods, t.paper, tuple(paper_cols), frozenset())
        lines += [
            "",
            "Bold: the paper's best of the column. Its rows are the paper's methods, not our "
            "simulators: its MoP is the method `mop` reproduces.",
            "",
        ]
    return "\n".join(lines)


def _md_rows(
    head: list[str],
    sims: tuple[str, ...],
    cells: Cells,
    columns: tuple[Column, ...],
    calibration: frozenset[str],
) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for sim in sims:
        name = markdown_escape(sim) + (" (calibration)" if sim in calibration else "")
        row = [name]
        for c in columns:
            for m in METRICS:
                cell = cells.get((sim, c.label, m))
                if cell is None:
                    row.append("—")
                    continue
                text = _num(cell, pm="±")
                if cell.mark == BEST:
                    text = f"**{text}**"
                elif cell.mark == TIE:
                    text += " †"
                row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    return lines


# ----------------------------------------------------------------------------- LaTeX


def to_latex(t: Table1) -> str:
    """Two booktabs tables (needs \\usepackage{booktabs}): ours, then the paper's."""
    # Placeholders survive escaping; then they become LaTeX's own symbols.
    legend = _latex_text(
        _legend(t, pm="PMSIGN", dagger="DAGGERSIGN"),
        PMSIGN="$\\pm$",
        DAGGERSIGN="$^{\\dagger}$",
    )
    out = [
        "% mop-bench table: Table 1 layout. Needs \\usepackage{booktabs}.",
        *_latex_table(t.columns, t.sims, t.cells, t.calibration, legend, "Ours"),
    ]
    if t.paper_methods:
        cols = tuple(c for c in t.columns if c.paper_task)
        caption = _latex_text(f"{_paper_title()}. {_caveat()}.")
        out += ["", "% Published numbers (REFERENCE.md section 6): " + PAPER_CAVEAT + "."]
        out += _latex_table(cols, t.paper_methods, t.paper, frozenset(), caption, "Paper")
    return "\n".join(out) + "\n"


def _latex_table(
    columns: tuple[Column, ...],
    sims: tuple[str, ...],
    cells: Cells,
    calibration: frozenset[str],
    caption: str,
    kind: str,
) -> list[str]:
    k = len(METRICS)
    spec = "l" + (" " + "c" * k) * len(columns)
    groups, rules = [], []
    for n, c in enumerate(columns):
        name = c.paper_task if kind == "Paper" and c.paper_task else c.label
        groups.append(f"\\multicolumn{{{k}}}{{c}}{{{latex_escape(name)}}}")
        rules.append(f"\\cmidrule(lr){{{2 + n * k}-{1 + (n + 1) * k}}}")
    arrows = [f"{_LABEL[m]} {_TEX_ARROW[METRICS[m]]}" for m in METRICS]
    first = "Simulator" if kind == "Ours" else "Method"
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & " + " & ".join(groups) + " \\\\",
        "".join(rules),
        first + " & " + " & ".join(arrows * len(columns)) + " \\\\",
        "\\midrule",
    ]
    for sim in sims:
        if sim in calibration and not lines[-1].startswith("\\midrule"):
            lines.append("\\midrule")
        row = [latex_escape(sim) + (" (calibration)" if sim in calibration else "")]
        for c in columns:
            for m in METRICS:
                cell = cells.get((sim, c.label, m))
                if cell is None:
                    row.append("--")
                    continue
                text = _num(cell, pm="$\\pm$")
                if cell.mark == BEST:
                    text = f"\\textbf{{{text}}}"
                elif cell.mark == TIE:
                    text += "$^{\\dagger}$"
                row.append(text)
        lines.append(" & ".join(row) + " \\\\")
    lines += [
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{caption}}}",
        "\\end{table}",
    ]
    return lines


# ----------------------------------------------------------------------------- CSV


def to_frame(t: Table1) -> Any:
    """One row per (block, simulator); per column group and metric: mean, pm, n_seeds, mark."""
    import pandas as pd

    records = []
    for block, sims, cells in (("ours", t.sims, t.cells), ("paper", t.paper_methods, t.paper)):
        for sim in sims:
            rec: dict[str, object] = {
                "block": block,
                "simulator": sim,
                "calibration": sim in t.calibration if block == "ours" else False,
            }
            for c in t.columns:
                for m in METRICS:
                    cell = cells.get((sim, c.label, m))
                    key = f"{c.label}.{m}"
                    rec[key] = None if cell is None else cell.mean
                    rec[f"{key}.pm"] = None if cell is None else cell.half_width
                    rec[f"{key}.n_seeds"] = (
                        None if cell is None or block == "paper" else cell.n_seeds
                    )
                    rec[f"{key}.mark"] = None if cell is None else cell.mark or None
            records.append(rec)
    frame = pd.DataFrame.from_records(records)
    for col in frame.columns:
        if col.endswith(".n_seeds"):  # integers, empty on the paper's rows
            frame[col] = frame[col].astype("Int64")
    return frame


# ----------------------------------------------------------------------------- files


def output_paths(out: str | Path) -> tuple[Path, Path, Path]:
    """`out` is a directory (existing, or written with a trailing slash): DIR/table1.*;
    else a prefix: PREFIX.md, PREFIX.tex, PREFIX.csv (a trailing .md/.tex/.csv is dropped)."""
    # A str keeps its trailing slash (Path drops it): "tables/" is a directory to create.
    text = str(out)
    out = Path(out)
    if out.is_dir() or text.endswith(("/", "\\")):
        stem = out / DEFAULT_STEM
    else:
        stem = out.with_suffix("") if out.suffix.lower() in _SUFFIXES else out
    md, tex, csv = (stem.with_name(stem.name + s) for s in _SUFFIXES)
    return md, tex, csv


def write_table(t: Table1, out: str | Path) -> tuple[Path, Path, Path]:
    """Write the three files; returns their paths (Markdown, LaTeX, CSV)."""
    from mop_bench.safe_csv import write_csv

    md, tex, csv = output_paths(out)
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(to_markdown(t), encoding="utf-8")
    tex.write_text(to_latex(t), encoding="utf-8")
    write_csv(to_frame(t), csv)
    return md, tex, csv
