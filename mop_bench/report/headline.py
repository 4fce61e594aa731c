"""What every page opens with: model, preset, n and seeds, one line per paired metric
saying what the paired tests found, and links to the comparison and the index.

The verdict lines are written from summary records (the rows of a comparison's
summary.json: `simulators` rows with ranks, `paired` rows with Holm-corrected verdicts),
so a comparison page, the index and a run page that read the same summary.json say the
same thing, and a reader can check any line against the JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mop_bench.report.aggregate import metric_label
from mop_bench.report.bootstrap import PAIRED_METRICS
from mop_bench.report.load import CONFIG, RunData, read_json_file, resolve_run_paths
from mop_bench.report.paired_view import fmt_p
from mop_bench.report.render import fmt_num, relative_link

#: File name of the index page of a results folder (report/index.py writes it).
INDEX = "index.html"
COMPARISONS = "comparisons"


@dataclass(frozen=True)
class Verdict:
    metric: str
    label: str
    text: str
    best: tuple[str, ...] = ()
    """The simulators ranked first (empty when nothing could be tested)."""


@dataclass
class Headline:
    facts: list[tuple[str, str]] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    note: str = ""
    """A line under the verdicts (why there are none, or what they come from)."""


def facts(
    runs: list[RunData], *, preset: Any = None, seeds: Iterable[int] | None = None
) -> list[tuple[str, str]]:
    """Model, preset, n and seeds of runs that share one comparable key."""
    if not runs:
        return []
    spec = runs[0].spec
    lm = spec.get("lm") or {}
    backend = f" ({lm['backend']})" if lm.get("backend") else ""
    n = (spec.get("budget") or {}).get("n_samples")
    golden = (runs[0].config.get("data") or {}).get("golden_size") or (
        (runs[0].comparable_key.get("data") or {}).get("golden_size")
    )
    seed_list = sorted(set(seeds if seeds is not None else (r.seed for r in runs)))
    out = [
        ("task", runs[0].task),
        ("model", f"{lm.get('model', '?')}{backend}"),
        ("preset", str(preset if preset is not None else spec.get("preset", "?"))),
        (
            "n",
            f"{fmt_num(n)} texts per simulator and seed"
            + (f" (golden set {fmt_num(golden)})" if isinstance(golden, int) else ""),
        ),
        ("seed" if len(seed_list) == 1 else "seeds", ", ".join(map(str, seed_list))),
    ]
    return out


# ----------------------------------------------------------------------------- verdicts


def _names(names: list[str]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _p_bound(rows: list[dict[str, Any]], word: str = "≤") -> str:
    ps = [r["p_holm"] for r in rows if isinstance(r.get("p_holm"), int | float)]
    if not ps:
        return ""
    if len(ps) == 1:
        return f"p_Holm = {fmt_p(ps[0])}"
    return f"p_Holm {word} {fmt_p(max(ps) if word == '≤' else min(ps))}"


def verdicts(records: Iterable[dict[str, Any]]) -> list[Verdict]:
    """One line per paired metric, from summary records: `simulators` rows (a record
    without "table" counts as one, as leaderboard records) and `paired` rows."""
    sims, pairs = [], []
    for r in records:
        (pairs if r.get("table") == "paired" else sims).append(r)
    out = []
    for m in PAIRED_METRICS:
        rows = [p for p in pairs if p.get("metric") == m]
        if not rows:
            continue
        ranks = {
            str(r["simulator"]): float(r["rank"])
            for r in sims
            if r.get("metric") == m and not r.get("calibration") and r.get("rank") is not None
        }
        out.append(_verdict(m, ranks, rows))
    return out


def _verdict(metric: str, ranks: dict[str, float], rows: list[dict[str, Any]]) -> Verdict:
    label = metric_label(metric)
    tested = [r for r in rows if r.get("verdict") not in (None, "not tested")]
    if not tested or not ranks:
        return Verdict(metric, label, "no pair could be tested (the paired table says why)")
    by_pair = {frozenset((str(r["simulator"]), str(r["versus"]))): r for r in rows}

    def pair(a: str, b: str) -> dict[str, Any]:
        return by_pair.get(frozenset((a, b)), {})

    first = min(ranks.values())
    top = sorted(s for s, k in ranks.items() if k == first)
    rest = sorted((s for s in ranks if s not in top), key=lambda s: (ranks[s], s))
    beaten = [b for b in rest if all(pair(t, b).get("better") == t for t in top)]
    if len(top) == 1:
        lead = top[0]
        open_ = [s for s in rest if pair(lead, s).get("better") != lead]
        if not rest:
            text = f"{lead} is the only simulator ranked"
        elif not open_:
            wins = _p_bound([pair(lead, b) for b in beaten])
            text = f"{lead} best (beats {_names(beaten)} in paired tests, {wins})"
        else:
            text = f"{lead} ranks first, but is not separated from {_names(open_)}"
            text += _paren([pair(lead, s) for s in open_], "≥")
            if beaten:
                wins = _p_bound([pair(lead, b) for b in beaten])
                text += f"; beats {_names(beaten)} ({wins})"
        return Verdict(metric, label, text, (lead,))
    inner = [pair(a, b) for i, a in enumerate(top) for b in top[i + 1 :]]
    text = f"{_names(top)} tied for best (not separated by the paired tests"
    bound = _p_bound(inner, "≥")
    text += f", {bound})" if bound else ")"
    if beaten and len(beaten) == len(rest):
        both = "both" if len(top) == 2 else "all"
        wins = _p_bound([pair(t, b) for t in top for b in beaten])
        text += f"; {both} beat {_names(beaten)} ({wins})"
    elif rest:
        text += "; then " + ", ".join(f"{s} (rank {ranks[s]:g})" for s in rest)
    return Verdict(metric, label, text, tuple(top))


def _paren(rows: list[dict[str, Any]], word: str) -> str:
    bound = _p_bound(rows, word)
    untested = any(r.get("verdict") in (None, "not tested") for r in rows)
    bits = [b for b in (bound, "some pairs not tested" if untested else "") if b]
    return f" ({'; '.join(bits)})" if bits else ""


# ----------------------------------------------------------------------------- summaries


def read_summary(comp_dir: Path) -> list[dict[str, Any]] | None:
    """A rendered comparison's summary.json records (None when not rendered yet)."""
    path = comp_dir / "summary.json"
    if not path.is_file():
        return None
    data = read_json_file(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of records")
    return [r for r in data if isinstance(r, dict)]


def comparison_page(comp_dir: Path, meta: dict[str, Any]) -> Path:
    return comp_dir / ("ablation.html" if meta.get("ablation") else "comparison.html")


def comparisons_of(results: Path | None) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, comparison.json) of each comparison under `results`/comparisons."""
    if results is None or not (results / COMPARISONS).is_dir():
        return []
    out = []
    for meta_path in sorted((results / COMPARISONS).glob("*/comparison.json")):
        try:
            meta = read_json_file(meta_path)
        except ValueError:
            continue  # a broken comparison.json fails its own page, not its neighbours'
        if isinstance(meta, dict):
            out.append((meta_path.parent, meta))
    return out


def runs_of(comp_dir: Path, meta: dict[str, Any]) -> list[Path]:
    """The comparison's run folders that exist (a missing one is its page's error)."""
    out = []
    for p in meta.get("runs") or []:
        try:
            out.extend(resolve_run_paths(comp_dir, [p], comp_dir / "comparison.json"))
        except (FileNotFoundError, ValueError):
            continue
    return out


def results_root(comp_dir: Path) -> Path | None:
    """The results folder of a comparison made by `compare` (<results>/comparisons/NAME)."""
    return comp_dir.parent.parent if comp_dir.parent.name == COMPARISONS else None


def nav(
    page_dir: Path, root: Path | None, extra: list[tuple[str, Path]] = ()
) -> list[tuple[str, str]]:
    """Links a page shows under its title: the index and leaderboard of its results
    folder (where they exist) and `extra` (its comparisons)."""
    links = []
    if root is not None:
        for label, name in (("index", INDEX), ("leaderboard", "leaderboard.html")):
            if (root / name).is_file():
                links.append((label, relative_link(root / name, page_dir)))
    links += [(label, relative_link(path, page_dir)) for label, path in extra]
    return links


def run_comparisons(run_dir: Path) -> list[dict[str, Any]]:
    """Comparisons under the run's results folder that list it, each with its page and
    the verdict lines of its summary.json (empty before the comparison is rendered)."""
    root = run_dir.parent.parent
    target = run_dir.resolve()
    out = []
    for comp_dir, meta in comparisons_of(root):
        if target not in {p.resolve() for p in runs_of(comp_dir, meta)}:
            continue
        try:
            records = read_summary(comp_dir)
        except ValueError:
            records = None  # a broken neighbour: its own page reports it
        page = comparison_page(comp_dir, meta)
        out.append(
            {
                "name": comp_dir.name,
                "page": page,
                # Rendered (its summary exists; its page may be written just after).
                "rendered": records is not None or page.is_file(),
                "verdicts": verdicts(records or []),
            }
        )
    return out


def comparison_facts(comp_dir: Path, meta: dict[str, Any]) -> list[tuple[str, str]]:
    """facts() of a comparison from comparison.json and its first run's config.json."""
    from mop_bench.report.load import load_run

    for path in runs_of(comp_dir, meta):
        if (path / CONFIG).is_file():
            run = load_run(path)
            return facts([run], preset=meta.get("preset"), seeds=meta.get("seeds") or [run.seed])
    return []
