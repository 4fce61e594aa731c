"""End to end: `mop-bench run --task yelp --sim mop` at the default preset.

Measures, in one command:
- a cold run (fresh results directory and embedding cache; only the dequantized model
  cache is kept, as "models cached on disk, nothing else"): wall time and peak memory
  (max RSS of the child process);
- a warm re-run of the same command (nothing to generate or score): wall time;
- `mop-bench --help`: median wall time over 5 calls;
- per stage of the cold run (from its `timing.json`): wall time and throughput: the fit
  and held-out likelihood (LM scoring: continuation and prompt tokens/s), generation
  (new tokens/s, prompt tokens/s), embedding and metrics, report;
- beside them, in the same command on the same machine: the run's own first chunk of
  prompts generated again in one call (the sampler's speed on the run's prompts, outside
  the run), and the microbenchmarks `generation.py` and `scoring.py` (`--no-micro` skips
  them), so a gap between the product and its kernels shows.

Usage: python benchmarks/end_to_end.py [--task yelp] [--sim mop] [--preset default] [--device auto]
Prints `name: value` lines last. Targets: cold < 600 s (issue 20: 300 s), peak < 4 GB
(3 GB), warm < 10 s, help < 0.5 s; in-run generation >= 250 new tok/s and scoring
>= 700 continuation tok/s (issue 20).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed(cmd: list[str], env: dict[str, str], *, quiet: bool = False) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL if quiet else None)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="yelp")
    ap.add_argument("--sim", default="mop")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--keep", action="store_true", help="keep the results directory")
    ap.add_argument("--no-micro", action="store_true", help="skip the microbenchmarks")
    args = ap.parse_args()

    exe = shutil.which("mop-bench") or str(Path(sys.executable).with_name("mop-bench"))
    work = Path(tempfile.mkdtemp(prefix="mop-e2e-"))
    env = dict(os.environ)
    from mop_bench.paths import cache_dir

    # Cold: a private cache that holds only the (already built) dequantized model.
    models = cache_dir() / "models"
    private = work / "cache"
    private.mkdir()
    if models.exists():
        (private / "models").symlink_to(models.resolve())
    env["MOP_BENCH_CACHE"] = str(private)
    cmd = [
        exe,
        "run",
        "--task",
        args.task,
        "--sim",
        args.sim,
        "--preset",
        args.preset,
        "--device",
        args.device,
        "--out",
        str(work / "results"),
        "--no-progress",
    ]

    cold = _timed(cmd, env)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB -> GiB
    warm = _timed(cmd, env)
    helps = [_timed([exe, "--help"], env, quiet=True) for _ in range(5)]
    (run_dir,) = (work / "results" / args.task).glob(f"{args.sim}-*")
    stages = stage_figures(run_dir)
    replay = {} if args.no_micro else replay_chunk(run_dir, args.device)
    micro = {} if args.no_micro else microbenchmarks(env)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"results kept in {work}")
    for name, value in [*stages.items(), *replay.items(), *micro.items()]:
        print(f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}")
    print(f"cold_run_seconds: {cold:.1f}")
    print(f"cold_run_peak_rss_gb: {peak_gb:.2f}")
    print(f"warm_rerun_seconds: {warm:.2f}")
    print(f"help_seconds_median: {statistics.median(helps):.3f}")
    print(f"cold_target_ratio: {cold / 600:.2f}")
    print(f"warm_target_ratio: {warm / 10:.2f}")


def stage_figures(run_dir: Path) -> dict[str, float]:
    """Per-stage seconds and rates of the cold run, from its timing.json (first entry)."""
    first = json.loads((run_dir / "timing.json").read_text())["history"][0]
    seconds, sim = first["seconds"], first.get("simulate", {})
    lm = sim.get("lm", {})
    heldout = sim.get("heldout_seconds", 0.0)
    out: dict[str, float] = {
        "stage_load_seconds": seconds.get("load", 0.0),
        "stage_fit_seconds": sim.get("prepare_seconds", 0.0) - heldout,
        "stage_heldout_seconds": heldout,
        "stage_generate_seconds": lm.get("generate_seconds", 0.0),
        "stage_embed_and_score_seconds": seconds.get("embed_and_score", 0.0),
        "stage_report_seconds": seconds.get("report", 0.0),
        "stage_simulate_seconds": seconds.get("simulate", 0.0),
    }
    gen_s, score_s = lm.get("generate_seconds", 0.0), lm.get("score_seconds", 0.0)
    if gen_s:
        out["run_generate_new_tokens"] = float(lm["generate_tokens"])
        out["run_generate_new_tokens_per_s"] = lm["generate_tokens"] / gen_s
        out["run_generate_prompt_tokens_per_s"] = lm.get("generate_prompt_tokens", 0) / gen_s
    if score_s:
        out["run_score_continuation_tokens"] = float(lm["score_tokens"])
        out["run_score_continuation_tokens_per_s"] = lm["score_tokens"] / score_s
        out["run_score_prompt_tokens_per_s"] = lm.get("score_prompt_tokens", 0) / score_s
        out["run_score_seconds"] = score_s
    return out


def replay_chunk(run_dir: Path, device: str) -> dict[str, float]:
    """The run's first chunk of prompts generated again in one call, outside the run:
    what the sampler does on exactly these prompts (texts must match the run's)."""
    from mop_bench.devices import resolve_device
    from mop_bench.lm.base import RawPrompt
    from mop_bench.lm.hf import TransformersLM

    config = json.loads((run_dir / "config.json").read_text())
    budget = config["spec"]["budget"]
    rows = [json.loads(line) for line in (run_dir / "generations.jsonl").open()]
    rows = sorted(rows, key=lambda r: r["index"])[: budget["chunk_size"]]
    if not rows or not isinstance(rows[0]["details"].get("prompt"), str):
        return {}
    lm = TransformersLM.from_pretrained(
        config["spec"]["lm"]["model"], dtype=config["spec"]["lm"]["dtype"],
        device=resolve_device(device),
    )  # fmt: skip
    prompts = [RawPrompt(r["details"]["prompt"]) for r in rows]
    t0 = time.perf_counter()
    out = lm.generate(
        prompts,
        temperatures=[r["details"]["temperature"] for r in rows],
        seeds=[r["details"]["seed"] for r in rows],
        max_new_tokens=budget["max_new_tokens"],
        top_p=budget["top_p"],
        stop=config["comparable_key"].get("scored_cut") or (),
    )
    seconds = time.perf_counter() - t0
    tokens = sum(c.n_tokens for c in out)
    same = sum(r["text"] in c.text for r, c in zip(rows, out, strict=True))
    return {
        "replay_chunk_new_tokens_per_s": tokens / seconds,
        "replay_chunk_rows": float(len(rows)),
        "replay_chunk_texts_equal_to_run": float(same),
    }


def microbenchmarks(env: dict[str, str]) -> dict[str, float]:
    """generation.py and scoring.py in child processes; their headline figures."""
    here = Path(__file__).resolve().parent
    wanted = {
        "generation.py": ("ours_new_tokens_per_s",),
        "scoring.py": ("ours_tokens_per_s", "ours_scored_tokens_per_s", "fraction_of_matmul"),
    }
    out: dict[str, float] = {}
    for script, names in wanted.items():
        text = subprocess.run(
            [sys.executable, str(here / script)], env=env, check=True,
            capture_output=True, text=True,
        ).stdout  # fmt: skip
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if name in names:
                out[f"micro_{script.removesuffix('.py')}_{name}"] = float(value)
    return out


if __name__ == "__main__":
    main()
