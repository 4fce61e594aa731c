"""The CLI's commands: each turns parsed arguments into library calls."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from mop_bench.arguments import spec_overrides, task_name

log = logging.getLogger("mop_bench")

#: Metrics printed after `run` and `score`: the distribution match, and beside it the
#: share of broken texts (a scaffolding failure must not pass for a worse FID).
SUMMARY_METRICS = ("fid", "mauve", "kl_cosine", "format")


def _seeds(args: Any) -> list[int]:
    if getattr(args, "seeds", None):
        try:
            return [int(s) for s in str(args.seeds).split(",") if s.strip()]
        except ValueError as exc:
            raise ValueError(
                f"--seeds must be comma-separated integers, got {args.seeds!r}"
            ) from exc
    return [args.seed]


def _workspace(args: Any):
    from mop_bench.runner import Workspace

    if getattr(args, "data", None) and not args.text_column:
        raise ValueError("--data needs --text-column (the column holding the texts)")
    from mop_bench.devices import resolve_device

    return Workspace(
        progress=not args.no_progress,
        lm_batch_size=args.batch_size,
        device=resolve_device(getattr(args, "device", "auto")),
    )


def _options(args: Any, **extra: Any):
    from mop_bench.runner import RunOptions

    return RunOptions(
        results_dir=args.results,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        lm_batch_size=args.batch_size,
        assume_yes=args.yes,
        device=getattr(args, "device", "auto"),
        **extra,
    )


def cmd_run(args: Any) -> int:
    from mop_bench.runner import build_spec, run

    if getattr(args, "generations", None) is not None:
        return _run_external(args)
    if not args.sim:
        raise ValueError(
            "name a simulator with --sim (see `mop-bench ls sims`), or score your own "
            "texts with --generations FILE.jsonl"
        )
    if getattr(args, "name", None):
        raise ValueError("--name names the simulator of --generations; --sim runs are named by it")
    ws = _workspace(args)
    options = _options(
        args, gates_from=args.gates_from, allow_foreign_gates=args.allow_foreign_gates
    )
    if args.dry_run:
        return _dry_run(_specs(args, [args.sim]), args, "run", options)
    for seed in _seeds(args):
        spec = build_spec(
            task_name(args), args.sim, preset=args.preset, overrides=spec_overrides(args), seed=seed
        )
        t0 = time.perf_counter()
        run_dir = run(spec, options, ws)
        _print_run(run_dir, time.perf_counter() - t0)
    return 0


def _dry_run(
    specs: list[Any], args: Any, what: str, options: Any = None, labels: list[str] | None = None
) -> int:
    """Print what the command would do and cost (mop_bench/dryrun.py); writes nothing."""
    from mop_bench.dryrun import dry_run

    options = options or _options(args)
    return dry_run(specs, options, _workspace(args), what=what, labels=labels)


def _print_run(run_dir: Path, seconds: float) -> None:
    from mop_bench.store import read_json

    metrics = read_json(run_dir / "metrics.json")
    summary = "  ".join(f"{k}={metrics[k]['value']:.4f}" for k in SUMMARY_METRICS if k in metrics)
    print(f"{run_dir}  ({seconds:.1f}s)  {summary}")
    print(f"report: {run_dir / 'report.html'}")


def _run_external(args: Any) -> int:
    """`run --generations FILE`: score texts made elsewhere for one seed's contexts."""
    from mop_bench.external import default_name, external_spec, run_external

    if args.sim:
        raise ValueError("--sim and --generations exclude each other: give one of them")
    if args.dry_run:
        raise ValueError("--dry-run estimates a --sim run; --generations only scores a file")
    if args.gates_from is not None:
        raise ValueError("--gates-from transfers fitted gates; --generations fits nothing")
    seeds = _seeds(args)
    if len(seeds) != 1:
        raise ValueError(
            "--generations scores one file against one seed's contexts: give --seed S "
            "(one file per seed, from `mop-bench contexts --seed S`)"
        )
    spec = external_spec(
        task_name(args),
        name=args.name or default_name(args.generations),
        description=f"external generations from {args.generations.name}",
        preset=args.preset,
        overrides=spec_overrides(args),
        seed=seeds[0],
    )
    t0 = time.perf_counter()
    run_dir = run_external(spec, args.generations, _options(args), _workspace(args))
    _print_run(run_dir, time.perf_counter() - t0)
    return 0


def cmd_contexts(args: Any) -> int:
    """Write the contexts a run of this task, preset and seed requests (no LM, no
    encoder: only the task's data is read)."""
    import sys

    from mop_bench.external import context_rows, contexts_for, external_spec, write_contexts
    from mop_bench.workspace import Workspace

    if getattr(args, "data", None) and not args.text_column:
        raise ValueError("--data needs --text-column (the column holding the texts)")
    spec = external_spec(
        task_name(args),
        name="contexts",
        preset=args.preset,
        overrides=spec_overrides(args),
        seed=args.seed,
    )
    task_data = Workspace(progress=not args.quiet).task(spec)
    rows = context_rows(contexts_for(spec, task_data), tuple(task_data.card.label_names))
    write_contexts(rows, args.out)
    where = "standard output" if str(args.out) == "-" else str(args.out)
    print(
        f"{where}: {len(rows)} contexts of task {task_data.card.name} (preset {args.preset}, "
        f"seed {spec.seed}, data {task_data.data_hash}); score your texts for them with "
        f"`mop-bench run --task {spec.task} --preset {args.preset} --seed {spec.seed} "
        "--generations FILE.jsonl` (the same --set options too)",
        file=sys.stderr if str(args.out) == "-" else sys.stdout,
    )
    return 0


def cmd_score(args: Any) -> int:
    from mop_bench.runner import Workspace, report_stage
    from mop_bench.scoring import rescore

    ws = Workspace()
    for run_dir in args.run_dirs:
        if not (run_dir / "config.json").is_file():
            raise FileNotFoundError(f"{run_dir}: not a run directory (no config.json)")
        metrics = rescore(run_dir, ws)
        report_stage(run_dir)
        print(
            f"{run_dir}: "
            + "  ".join(f"{k}={metrics[k]['value']:.4f}" for k in SUMMARY_METRICS if k in metrics)
        )
    return 0


def cmd_report(args: Any) -> int:
    """Render each directory; an incomplete run is skipped with a note (and rc 2)."""
    import sys

    from mop_bench import report
    from mop_bench.store import incomplete_reason

    paired = _bootstrap(args)
    skipped = 0
    for d in args.dirs:
        if (d / "comparison.json").exists():
            out = report.render_comparison(
                d, bootstrap=paired, floor=args.floor, reference=args.plot_reference
            )
        elif (d / "sweep.json").exists():
            out = report.render_sweep(d)
        elif (d / "config.json").exists():
            why = incomplete_reason(d)
            if why is not None:
                print(f"mop-bench: skipped {d}: {why}", file=sys.stderr)
                skipped += 1
                continue
            out = report.render_run(d)
        else:
            raise FileNotFoundError(
                f"{d}: not a run, comparison or sweep directory "
                "(no config.json, comparison.json or sweep.json)"
            )
        print(out)
    return 2 if skipped else 0


def cmd_ls(args: Any) -> int:
    if args.what == "tasks":
        from mop_bench.data import TASKS, format_summary, task_summary

        for name in TASKS.names():
            print(format_summary(task_summary(TASKS.get(name), args.data_dir)))
    elif args.what == "sims":
        from mop_bench.simulators import SIMULATORS

        for name in SIMULATORS.names():
            print(f"{name:22s} {SIMULATORS.get(name).description}")
    elif args.what == "metrics":
        from mop_bench.listing import print_metrics

        print_metrics()
    elif args.what == "presets":
        from mop_bench.presets import PRESETS

        for name, values in PRESETS.items():
            print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    elif args.what == "backends":
        from mop_bench.lm import LM_BACKENDS

        for name in LM_BACKENDS.names():
            print(name)
    elif args.what == "settings":
        from mop_bench.listing import print_settings

        print_settings()
    elif args.what == "runs":
        from mop_bench.listing import print_runs

        return print_runs(args.results_dir)
    return 0


def _specs(args: Any, sims: list[str], points: list[dict[str, Any]] | None = None) -> list[Any]:
    """Every run's spec (seeds x sweep points x simulators), resolved as the commands
    resolve them, for --dry-run."""
    from mop_bench.runner import build_spec

    return [
        build_spec(task_name(args), sim, preset=args.preset, overrides=point, seed=seed)
        for seed in _seeds(args)
        for point in (points or [spec_overrides(args)])
        for sim in sims
    ]


def cmd_compare(args: Any) -> int:
    from mop_bench.compare import compare

    sims = [s.strip() for s in args.sims.split(",") if s.strip()]
    if args.dry_run:
        return _dry_run(_specs(args, sims), args, "compare")
    out = compare(
        task_name(args),
        sims,
        preset=args.preset,
        overrides=spec_overrides(args),
        seeds=_seeds(args),
        options=_options(args),
        workspace=_workspace(args),
        name=args.name,
        floor=args.floor,
        bootstrap=_bootstrap(args),
    )
    print(f"comparison report: {out}")
    return 0


def cmd_ablate(args: Any) -> int:
    from mop_bench.compare import ABLATION_SIMS, compare

    if args.dry_run:
        return _dry_run(_specs(args, ABLATION_SIMS), args, "ablate")
    out = compare(
        task_name(args),
        ABLATION_SIMS,
        preset=args.preset,
        overrides=spec_overrides(args),
        seeds=_seeds(args),
        options=_options(args),
        workspace=_workspace(args),
        name=args.name or f"ablate-{Path(task_name(args)).stem}-{args.preset}",
        ablation=True,
        floor=args.floor,
        bootstrap=_bootstrap(args),
    )
    print(f"ablation report: {out}")
    return 0


def cmd_sweep(args: Any) -> int:
    from mop_bench.compare import sweep

    axes: dict[str, list[str]] = {}
    fixed: dict[str, Any] = {}
    for key, value in spec_overrides(args).items():
        if isinstance(value, str) and "," in value and not key.endswith("mauve_seeds"):
            axes[key] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            fixed[key] = value
    if not axes:
        raise ValueError("a sweep needs at least one --set KEY=V1,V2,... axis")
    if args.dry_run:
        from mop_bench.dryrun import grid_points

        grid = grid_points(axes)
        specs = _specs(args, [args.sim], [{**fixed, **point} for point in grid])
        labels = [" ".join(f"{k}={v}" for k, v in p.items()) for _ in _seeds(args) for p in grid]
        return _dry_run(specs, args, "sweep", labels=labels)
    out = sweep(
        task_name(args),
        args.sim,
        axes,
        preset=args.preset,
        overrides=fixed,
        seeds=_seeds(args),
        options=_options(args),
        workspace=_workspace(args),
        name=args.name,
    )
    print(f"sweep report: {out}")
    return 0


def cmd_doctor(args: Any) -> int:
    """Exit 0 when scoring can be trusted, 1 when a scoring check failed (the server
    may still generate), 2 on a usage error or an unreachable server."""
    import json
    import os

    from mop_bench.lm.doctor import doctor_command

    report = doctor_command(
        backend=args.backend,
        model=args.model,
        base_url=args.base_url,
        reference=args.reference,
        reference_dtype=args.reference_dtype,
        timeout=args.timeout,
        api_key=os.environ.get("OPENAI_API_KEY"),
    )
    first = report.checks[0]
    if first.name == "server" and first.status == "FAIL":
        raise ValueError(first.detail)  # down or wrong model: one line, rc 2
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print("\n".join(report.lines()))
    return 0 if report.scoring_ok else 1


def _bootstrap(args: Any):
    """The paired tests' settings from --bootstrap-draws, --mauve-draws, --bootstrap-seed."""
    from mop_bench.report.bootstrap import BootstrapSettings

    return BootstrapSettings(
        draws=args.bootstrap_draws, mauve_draws=args.mauve_draws, seed=args.bootstrap_seed
    )


def cmd_leaderboard(args: Any) -> int:
    from mop_bench.report import build_leaderboard
    from mop_bench.report.normalised import DEFAULT_FLOOR

    floor = args.floor or DEFAULT_FLOOR
    out = build_leaderboard(args.results_dir, args.out, bootstrap=_bootstrap(args), floor=floor)
    print(f"leaderboard: {out}")
    return 0


def cmd_table(args: Any) -> int:
    """Table 1 from rendered comparisons: Markdown on stdout, or three files with --out."""
    from mop_bench.report.table import build_table
    from mop_bench.report.table_render import to_markdown, write_table

    table = build_table(args.comparisons)
    if args.out is None:
        print(to_markdown(table), end="")
        return 0
    for path in write_table(table, args.out):
        print(path)
    return 0
