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
    return Workspace(progress=not args.no_progress, lm_batch_size=args.batch_size)


def _options(args: Any, **extra: Any):
    from mop_bench.runner import RunOptions

    return RunOptions(
        results_dir=args.results,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        lm_batch_size=args.batch_size,
        assume_yes=args.yes,
        **extra,
    )


def cmd_run(args: Any) -> int:
    from mop_bench.runner import build_spec, run
    from mop_bench.store import read_json

    ws = _workspace(args)
    options = _options(
        args, gates_from=args.gates_from, allow_foreign_gates=args.allow_foreign_gates
    )
    for seed in _seeds(args):
        spec = build_spec(
            task_name(args), args.sim, preset=args.preset, overrides=spec_overrides(args), seed=seed
        )
        t0 = time.perf_counter()
        run_dir = run(spec, options, ws)
        metrics = read_json(run_dir / "metrics.json")
        summary = "  ".join(
            f"{k}={metrics[k]['value']:.4f}" for k in SUMMARY_METRICS if k in metrics
        )
        print(f"{run_dir}  ({time.perf_counter() - t0:.1f}s)  {summary}")
        print(f"report: {run_dir / 'report.html'}")
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
            out = report.render_comparison(d, bootstrap=paired)
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
        from mop_bench.metrics import METRICS

        for name in METRICS.names():
            print(name)
    elif args.what == "presets":
        from mop_bench.presets import PRESETS

        for name, values in PRESETS.items():
            print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    elif args.what == "backends":
        from mop_bench.lm import LM_BACKENDS

        for name in LM_BACKENDS.names():
            print(name)
    elif args.what == "settings":
        from mop_bench.overrides import ALIASES, field_paths

        print("settings (use with --set KEY=VALUE):")
        for path in field_paths():
            print(f"  {path}")
        print("aliases: " + ", ".join(f"{k}={v}" for k, v in ALIASES.items()))
    return 0


def cmd_compare(args: Any) -> int:
    from mop_bench.compare import compare

    sims = [s.strip() for s in args.sims.split(",") if s.strip()]
    out = compare(
        task_name(args),
        sims,
        preset=args.preset,
        overrides=spec_overrides(args),
        seeds=_seeds(args),
        options=_options(args),
        workspace=_workspace(args),
        name=args.name,
    )
    print(f"comparison report: {out}")
    return 0


def cmd_ablate(args: Any) -> int:
    from mop_bench.compare import ABLATION_SIMS, compare

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

    out = build_leaderboard(args.results_dir, args.out, bootstrap=_bootstrap(args))
    print(f"leaderboard: {out}")
    return 0
