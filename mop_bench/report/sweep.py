"""Sweep page: each metric against each swept setting, mean and interval over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mop_bench.report.aggregate import Group, metric_label, metric_order, summarise
from mop_bench.report.comparison import load_comparable
from mop_bench.report.load import REPORT, load_run, read_json_file, resolve_run_paths
from mop_bench.report.render import fmt_interval, relative_link, render_page
from mop_bench.report.stats import Interval


def render_sweep(sweep_dir: Path, *, render_runs: bool = True) -> Path:
    """Write sweep.html into `sweep_dir` (and each run's report unless `render_runs` is False)."""
    sweep_dir = Path(sweep_dir)
    meta_path = sweep_dir / "sweep.json"
    meta = read_json_file(meta_path)
    axes = meta.get("axes") if isinstance(meta, dict) else None
    if not isinstance(axes, dict) or not axes:
        raise ValueError(f"{meta_path}: field 'axes' must map setting names to value lists")
    raw_points = meta.get("points")
    if not isinstance(raw_points, list) or not raw_points:
        raise ValueError(f"{meta_path}: field 'points' lists no sweep points")
    axis_names = list(axes)
    points: list[dict[str, Any]] = []
    excluded: list[dict[str, Any]] = []
    for n, point in enumerate(raw_points):
        values = point.get("values") if isinstance(point, dict) else None
        if not isinstance(values, dict) or set(values) != set(axis_names):
            raise ValueError(f"{meta_path}: points[{n}].values must give exactly {axis_names}")
        paths = resolve_run_paths(sweep_dir, list(point.get("runs") or []), meta_path)
        runs = [load_run(p) for p in paths]
        if render_runs:
            from mop_bench.report.run import render_run

            for run in runs:
                render_run(run.path)
        kept, left_out = load_comparable(runs)
        for run, why in left_out:
            excluded.append(
                {
                    "point": values,
                    "seed": run.seed,
                    "reason": why,
                    "href": relative_link(run.path / REPORT, sweep_dir),
                }
            )
        group = summarise(kept[0].comparable_key, kept) if kept else None
        points.append({"values": values, "group": group})
    metrics = metric_order({m for p in points if p["group"] for m in p["group"].metrics})
    hib = _directions(points, metrics)
    rows = []
    for p in points:
        g: Group | None = p["group"]
        sim = g.sims[0] if g and g.sims else None
        cells = {m: _cell_text(g, sim, m) for m in metrics}
        links = (
            []
            if g is None or sim is None
            else [
                {"seed": r.seed, "href": relative_link(r.path / REPORT, sweep_dir)}
                for r in g.runs_of(sim)
            ]
        )
        rows.append(
            {"values": [p["values"][a] for a in axis_names], "cells": cells, "links": links}
        )
    context = {
        "title": f"Sweep of {meta.get('sim', 'a simulator')} on {meta.get('task', 'a task')}",
        "axes": [(a, ", ".join(map(str, axes[a]))) for a in axis_names],
        "axis_names": axis_names,
        "metrics": [(m, metric_label(m), hib[m]) for m in metrics],
        "rows": rows,
        "plots": _plots(points, axis_names, metrics, hib),
        "excluded": excluded,
    }
    return render_page(sweep_dir / "sweep.html", "sweep.html.j2", **context)


def _directions(points: list[dict[str, Any]], metrics: list[str]) -> dict[str, bool]:
    out = {}
    for m in metrics:
        out[m] = next(
            c.higher_is_better
            for p in points
            if p["group"]
            for (s, mm), c in p["group"].cells.items()
            if mm == m
        )
    return out


def _interval(g: Group | None, m: str) -> Interval | None:
    if g is None or not g.sims:
        return None
    cell = g.cells.get((g.sims[0], m))
    return cell.interval if cell else None


def _cell_text(g: Group | None, sim: str | None, m: str) -> str:
    iv = _interval(g, m)
    return "—" if iv is None else f"{fmt_interval(iv)} (n={iv.n})"


def _as_number(v: Any) -> float | None:
    """Axis values come from the command line as strings ('4'); plot them as numbers."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(str(v))
    except ValueError:
        return None


def _plots(
    points: list[dict[str, Any]], axis_names: list[str], metrics: list[str], hib: dict[str, bool]
) -> list[dict[str, str]]:
    """One plot per (metric, axis); a line per combination of the other axes' values."""
    from mop_bench.report import plots

    out = []
    for m in metrics:
        for axis in axis_names:
            others = [a for a in axis_names if a != axis]
            series: dict[str, list[tuple[Any, Interval]]] = {}
            for p in points:
                iv = _interval(p["group"], m)
                if iv is None:
                    continue
                name = ", ".join(f"{a}={p['values'][a]}" for a in others) or metric_label(m)
                series.setdefault(name, []).append((p["values"][axis], iv))
            if not series:
                continue
            xs_all = [x for pts in series.values() for x, _ in pts]
            numeric = all(_as_number(x) is not None for x in xs_all)
            if numeric:
                series = {k: [(_as_number(x), iv) for x, iv in v] for k, v in series.items()}
            data = []
            for name, pts in series.items():
                pts.sort(key=lambda xi: xi[0] if numeric else str(xi[0]))
                data.append(
                    (
                        name,
                        [x for x, _ in pts],
                        [iv.mean for _, iv in pts],
                        [iv.low for _, iv in pts],
                        [iv.high for _, iv in pts],
                    )
                )
            uri = plots.interval_plot(
                data,
                xlabel=axis,
                ylabel=f"{metric_label(m)} ({'higher' if hib[m] else 'lower'} is better)",
                categorical=not numeric,
            )
            out.append(
                {
                    "uri": uri,
                    "caption": f"{metric_label(m)} against {axis}: mean and 95% interval over seeds",
                }
            )
    return out
