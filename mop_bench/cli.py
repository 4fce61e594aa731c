"""`mop-bench` command line: argument parsing only; the work happens elsewhere.

Imports here are cheap on purpose (`mop-bench --help` and `mop-bench ls` must answer
instantly): every heavy module is imported inside the command that needs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_RESULTS = Path(os.environ.get("MOP_BENCH_RESULTS", "results"))


def _kv(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _add_spec_args(p: argparse.ArgumentParser, *, sims: str, sim_required: bool = True) -> None:
    p.add_argument(
        "--task",
        help="task name (see `mop-bench ls tasks`) or path of a task card YAML; with --data "
        "it names your data (default: the file's stem)",
    )
    if sims == "one":
        p.add_argument(
            "--sim",
            required=sim_required,
            help="simulator name (see `mop-bench ls sims`) or a simulator YAML"
            + ("" if sim_required else " (or score your own texts with --generations)"),
        )
    elif sims == "many":
        p.add_argument("--sims", required=True, help="comma-separated simulator names")
    p.add_argument("--preset", default="default", help="smoke | default | paper (default: default)")
    p.add_argument("--n", type=int, help="number of synthetic samples (budget.n_samples)")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--seeds", help="comma-separated replicate seeds, e.g. 0,1,2 (overrides --seed)")
    _add_override_args(
        p, "override any setting (dotted path like fit.epochs or an alias like personas)"
    )
    p.add_argument("--model", help="generator LM: alias, Hub id or local path (lm.model)")
    p.add_argument(
        "--backend",
        help="LM backend: transformers (default, in process) | openai (a server; needs "
        "--base-url) | vllm (lm.backend)",
    )
    p.add_argument(
        "--base-url",
        help="server URL for the openai backend, e.g. http://127.0.0.1:8000/v1 (lm.base_url)",
    )
    p.add_argument("--encoder", help="sentence-transformers model name or path (encoder.model)")
    p.add_argument(
        "--data-dir", help="directory of data mirrors (default: $MOP_BENCH_DATA_DIR, then the Hub)"
    )
    p.add_argument(
        "--data",
        help="bring your own data: a .csv, .tsv, .jsonl or .parquet file "
        "(named by --task, else its stem)",
    )
    p.add_argument("--text-column", help="text column of --data")
    p.add_argument("--label-column", help="label column of --data (optional)")
    _add_runtime_args(p)


def _add_override_args(p: argparse.ArgumentParser, set_help: str) -> None:
    """--set and --config, the same for every command that builds a run spec."""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=_kv,
        default=[],
        metavar="KEY=VALUE",
        help=f"{set_help}; repeatable",
    )
    p.add_argument(
        "--config", type=Path, help="YAML file of KEY: VALUE overrides (applied before --set)"
    )


def _add_contexts_args(p: argparse.ArgumentParser) -> None:
    """`contexts` takes what decides a run's contexts (task, data, preset, n, seed,
    settings) and an output file; no LM or encoder option, since neither is loaded."""
    p.add_argument(
        "--task",
        help="task name (see `mop-bench ls tasks`) or path of a task card YAML; with --data "
        "it names your data (default: the file's stem)",
    )
    p.add_argument("--preset", default="default", help="smoke | default | paper (default: default)")
    p.add_argument("--n", type=int, help="number of contexts (budget.n_samples)")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    _add_override_args(p, "override a setting, as for `run` (e.g. pool=200, golden=300)")
    p.add_argument(
        "--data-dir", help="directory of data mirrors (default: $MOP_BENCH_DATA_DIR, then the Hub)"
    )
    p.add_argument("--data", help="bring your own data: a .csv, .tsv, .jsonl or .parquet file")
    p.add_argument("--text-column", help="text column of --data")
    p.add_argument("--label-column", help="label column of --data (optional)")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE.jsonl",
        help="where to write one JSON object per context (index, label, label_name, "
        "context, fields); - writes to standard output",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        "--results",
        dest="results",
        type=Path,
        default=DEFAULT_RESULTS,
        help=f"results directory (default: {DEFAULT_RESULTS}; env MOP_BENCH_RESULTS)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="recompute instead of reusing finished work"
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="start even when the run's size estimate exceeds what the data or machine allow",
    )
    p.add_argument("--batch-size", type=int, help="LM scoring batch size (does not change results)")
    p.add_argument(
        "--device",
        default="auto",
        metavar="{auto,cpu,cuda,mps}",
        help="where the in-process LM and the sentence encoder run (default: auto, a GPU "
        "when torch sees one; cuda:N picks one of several). Recorded in config.json; "
        "off the CPU it enters the fingerprint (kernels round differently)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved settings, each run's directory (and how much of it exists) "
        "and an estimate of time, LM tokens and disk, then exit: reads the task data only, "
        "loads no LM or encoder, writes nothing",
    )


def _add_bootstrap_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bootstrap-draws",
        type=int,
        default=1000,
        help="paired-test draws for FID, KL-cosine, held-out NLL (default 1000)",
    )
    p.add_argument(
        "--mauve-draws", type=int, default=200, help="paired-test draws for MAUVE (default 200)"
    )
    p.add_argument("--bootstrap-seed", type=int, default=0, help="paired-test seed (default 0)")


def _add_table_args(p: argparse.ArgumentParser, *, remembered: bool = False) -> None:
    """The tables' settings: the paired tests' draws and the normalised score's floor."""
    _add_bootstrap_args(p)
    where = (
        "default: the --floor the comparison was run with, else temperature-only"
        if remembered
        else "default: temperature-only"
    )
    p.add_argument(
        "--floor",
        metavar="NAME",
        help="simulator scored 0 by the normalised score (100 = the real calibration row; "
        f"{where})",
    )


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mop-bench",
        description="Benchmark population simulators (Mixture of Personas and baselines) "
        "against real populations with FID, MAUVE and KL-cosine.",
    )
    from mop_bench import __version__

    parser.add_argument("--version", action="version", version=f"mop-bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "run",
        help="run one simulator on one task (resumes and reuses finished work), or score "
        "your own generations (--generations)",
    )
    _add_spec_args(p, sims="one", sim_required=False)
    p.add_argument(
        "--generations",
        type=Path,
        metavar="FILE.jsonl",
        help="score texts you generated elsewhere for the contexts `mop-bench contexts` "
        'writes: one {"index": i, "text": "..."} per line, indices 0..n-1 once each '
        "(instead of --sim)",
    )
    p.add_argument(
        "--name",
        help="with --generations: the simulator name shown in reports (default: the file's stem)",
    )
    p.add_argument(
        "--gates-from", type=Path, help="reuse personas/gates/temperatures fitted in this run dir"
    )
    p.add_argument(
        "--allow-foreign-gates",
        action="store_true",
        help="accept --gates-from gates fitted on another task (recorded in config.json)",
    )

    p = sub.add_parser(
        "contexts",
        help="write the exact contexts a run would request (JSONL), to generate texts for "
        "them with your own system and score them with `run --generations`",
    )
    _add_contexts_args(p)

    p = sub.add_parser("score", help="re-score stored generations (no generation)")
    p.add_argument(
        "run_dirs",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="run directory (results/<task>/<sim>-<fingerprint>) whose generations to re-score",
    )
    p.add_argument("-q", "--quiet", action="store_true")

    p = sub.add_parser(
        "report", help="rebuild HTML reports of run, comparison or sweep directories"
    )
    p.add_argument(
        "dirs",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="a run directory, or a comparison or sweep directory (holding comparison.json "
        "or sweep.json)",
    )
    _add_table_args(p, remembered=True)
    p.add_argument(
        "--plot-reference",
        metavar="NAME",
        help="simulator the comparison plots show paired differences from (default: "
        'comparison.json\'s "reference", else mop, else the first simulator)',
    )
    p.add_argument("-q", "--quiet", action="store_true")

    p = sub.add_parser(
        "ls", help="list tasks, simulators, metrics, presets, backends, settings or runs"
    )
    p.add_argument(
        "what", choices=["tasks", "sims", "metrics", "presets", "backends", "settings", "runs"]
    )
    p.add_argument(
        "results_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_RESULTS,
        metavar="RESULTS_DIR",
        help=f"`ls runs`: the results folder to list (default: {DEFAULT_RESULTS})",
    )
    p.add_argument("--data-dir", help="data mirror directory (for row counts)")

    p = sub.add_parser("compare", help="several simulators under one budget, with replicate seeds")
    _add_spec_args(p, sims="many")
    p.add_argument(
        "--name", help="comparison directory name (default: derived from task, sims, preset)"
    )
    _add_table_args(p)

    p = sub.add_parser(
        "sweep", help="a grid over settings, e.g. --set personas=4,8,16 --set pool=250,500"
    )
    _add_spec_args(p, sims="one")
    p.add_argument("--name", help="sweep directory name")

    p = sub.add_parser("ablate", help="MoP and its ablations (the paper's Table 4) as one table")
    _add_spec_args(p, sims="none")
    p.add_argument("--name", help="comparison directory name")
    _add_table_args(p)

    p = sub.add_parser(
        "doctor",
        help="check that an LM backend (e.g. an OpenAI-compatible server) generates and "
        "scores as MoP needs; one line per capability",
    )
    p.add_argument("--backend", default="openai", help="openai (default) | vllm | transformers")
    p.add_argument(
        "--base-url", help="server URL for the openai backend, e.g. http://127.0.0.1:8000/v1"
    )
    p.add_argument("--model", required=True, help="the model name the server serves")
    p.add_argument(
        "--reference",
        help="in-process transformers model to compare log-probs with (default: --model "
        "when it is an alias or local path; 'none' to skip)",
    )
    p.add_argument(
        "--reference-dtype", default="float32", help="dtype of the reference (default float32)"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true")

    p = sub.add_parser("leaderboard", help="HTML/CSV/JSON leaderboard over all comparable runs")
    p.add_argument(
        "results_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_RESULTS,
        help=f"folder searched for scored runs (default: {DEFAULT_RESULTS})",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="directory to write leaderboard.html, .csv and .json into (created if missing; "
        "default: the results directory)",
    )
    _add_table_args(p)
    p.add_argument("-q", "--quiet", action="store_true")

    p = sub.add_parser(
        "table",
        help="rendered comparisons as the paper's Table 1 (Markdown, LaTeX, CSV), beside "
        "the published numbers",
    )
    p.add_argument(
        "comparisons",
        nargs="+",
        type=Path,
        metavar="COMPARISON_DIR",
        help="rendered comparison folders (comparison.json + summary.json, e.g. "
        "results/comparisons/yelp-default); one column group each, in this order",
    )
    p.add_argument(
        "--out",
        metavar="PREFIX_OR_DIR",
        help="a file prefix: writes PREFIX.md, PREFIX.tex and PREFIX.csv; an existing "
        "directory or a path ending in '/': writes DIR/table1.md, .tex and .csv (default: "
        "print the Markdown only)",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    from mop_bench.logs import quiet_broken_pipe, setup_logging

    setup_logging(quiet=getattr(args, "quiet", False))
    from mop_bench import commands

    try:
        return int(getattr(commands, f"cmd_{args.command}")(args) or 0)
    except BrokenPipeError:  # `mop-bench ls settings | head`: the reader left early
        if not quiet_broken_pipe():
            raise
        return 0
    except Exception as exc:
        # Expected failures (unknown names, bad data, missing files, an unreachable LM
        # server): one clear line, no traceback, credentials masked. Anything else is a
        # bug and keeps its traceback.
        msg = user_error(exc)
        if msg is None or os.environ.get("MOP_BENCH_DEBUG"):
            raise
        from mop_bench.redact import scrub

        one_line = " ".join(scrub(msg).splitlines())
        print(f"mop-bench: error: {one_line}", file=sys.stderr)
        return 2


def user_error(exc: BaseException) -> str | None:
    """The message to show for an expected failure, or None for a bug."""
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else "missing key"
    if isinstance(exc, ValueError | FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return str(exc)
    import urllib.error

    from mop_bench.lm.openai_compat import ServerError

    if isinstance(exc, ServerError | ConnectionError | urllib.error.URLError):
        return (
            f"the LM server failed: {exc}. Check that the server is running and that "
            "--base-url (lm.base_url) points at it"
        )
    return None


if __name__ == "__main__":
    sys.exit(main())
