"""Comparisons, ablations and sweeps: many runs under one budget, then one report.

Every simulator in a comparison gets the same contexts (drawn from the golden set with
the replicate's seed), sample count, LM, decoding settings and per-sample seeds: only
the simulator's own switches differ. Runs are ordinary run directories, so a killed
comparison resumes run by run and a finished one re-renders without any LM call.
"""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mop_bench import store
from mop_bench.paths import safe_name
from mop_bench.runner import RunOptions, Workspace, build_spec, run

if TYPE_CHECKING:
    from mop_bench.report.bootstrap import BootstrapSettings

log = logging.getLogger(__name__)

#: MoP and its ablations (REFERENCE.md Table 4, plus uniform gating).
ABLATION_SIMS = [
    "mop",
    "mop-no-exemplars",
    "mop-keyword-personas",
    "mop-random-personas",
    "mop-uniform-gating",
]


def _rel(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())


def compare(
    task: str,
    sims: list[str],
    *,
    preset: str = "default",
    overrides: dict[str, Any] | None = None,
    seeds: list[int] | None = None,
    options: RunOptions | None = None,
    workspace: Workspace | None = None,
    name: str | None = None,
    ablation: bool = False,
    floor: str | None = None,
    bootstrap: BootstrapSettings | None = None,
) -> Path:
    """Run every simulator for every seed, then write the comparison report.

    `floor` (default `temperature-only`) is the simulator the normalised score maps to
    0; it is kept in comparison.json so that a re-render keeps it. `bootstrap`: the
    paired tests' draws and seed (default `BootstrapSettings()`)."""
    from mop_bench.report import render_comparison

    options = options or RunOptions()
    workspace = workspace or Workspace.for_options(options)
    seeds = seeds or [0]
    if floor is not None and floor not in sims:
        # Not an error: the pages say why there is no normalised score.
        log.warning("--floor %s is not among the simulators: no normalised score", floor)
    # Resolve every spec first: a typo in the last simulator should fail before hours of work.
    specs = [
        build_spec(task, sim, preset=preset, overrides=overrides, seed=seed)
        for seed in seeds
        for sim in sims
    ]
    budgets = {store.json.dumps(store.jsonable(s.budget), sort_keys=True) for s in specs}
    assert len(budgets) == 1, "simulators in one comparison must share one budget"
    comp_dir = (
        options.results_dir
        / "comparisons"
        / safe_name(
            name or f"{Path(task).stem}-{preset}-{'_'.join(sims)}-s{'_'.join(map(str, seeds))}"
        )
    )
    comp_dir.mkdir(parents=True, exist_ok=True)
    run_dirs = []
    for n, spec in enumerate(specs, start=1):
        log.info("[%d/%d] %s seed %d", n, len(specs), spec.simulator.name, spec.seed)
        run_dirs.append(run(spec, options, workspace))
    store.write_json(
        comp_dir / "comparison.json",
        {
            "task": task,
            "sims": sims,
            "seeds": seeds,
            "preset": preset,
            "overrides": {k: str(v) for k, v in (overrides or {}).items()},
            "budget": store.jsonable(specs[0].budget),
            "ablation": ablation,
            "runs": [_rel(d, comp_dir) for d in run_dirs],
        }
        | ({"floor": floor} if floor is not None else {}),
    )
    return render_comparison(comp_dir, bootstrap=bootstrap)


def sweep(
    task: str,
    sim: str,
    axes: dict[str, list[str]],
    *,
    preset: str = "default",
    overrides: dict[str, Any] | None = None,
    seeds: list[int] | None = None,
    options: RunOptions | None = None,
    workspace: Workspace | None = None,
    name: str | None = None,
) -> Path:
    """Run the grid of `axes` (setting -> values) for every seed; report metric curves."""
    from mop_bench.overrides import resolve_path
    from mop_bench.report import render_sweep

    options = options or RunOptions()
    workspace = workspace or Workspace.for_options(options)
    seeds = seeds or [0]
    for key in axes:
        resolve_path(key)  # fail early on a misspelt setting
    keys = list(axes)
    grid = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]
    specs = {
        (i, seed): build_spec(
            task, sim, preset=preset, overrides={**(overrides or {}), **point}, seed=seed
        )
        for i, point in enumerate(grid)
        for seed in seeds
    }
    axis_tag = "_".join(f"{k}{len(v)}" for k, v in axes.items())
    sweep_dir = (
        options.results_dir
        / "sweeps"
        / safe_name(name or f"{Path(task).stem}-{Path(sim).stem}-{preset}-{axis_tag}")
    )
    sweep_dir.mkdir(parents=True, exist_ok=True)
    points = []
    for i, point in enumerate(grid):
        dirs = []
        for seed in seeds:
            log.info("sweep point %d/%d %s seed %d", i + 1, len(grid), point, seed)
            dirs.append(_rel(run(specs[(i, seed)], options, workspace), sweep_dir))
        points.append({"values": point, "runs": dirs})
    store.write_json(
        sweep_dir / "sweep.json",
        {
            "task": task,
            "sim": sim,
            "preset": preset,
            "seeds": seeds,
            "axes": axes,
            "points": points,
        },
    )
    return render_sweep(sweep_dir)
