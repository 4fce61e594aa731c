"""End to end: `mop-bench run --task yelp --sim mop` at the default preset.

Measures, in one command:
- a cold run (fresh results directory and embedding cache; only the dequantized model
  cache is kept, as "models cached on disk, nothing else"): wall time and peak memory
  (max RSS of the child process);
- a warm re-run of the same command (nothing to generate or score): wall time;
- `mop-bench --help`: median wall time over 5 calls.

Usage: python benchmarks/end_to_end.py [--task yelp] [--sim mop] [--preset default]
Prints `name: value` lines last. Targets: cold < 600 s, peak < 4 GB, warm < 10 s, help < 0.5 s.
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("--keep", action="store_true", help="keep the results directory")
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
        "--out",
        str(work / "results"),
        "--no-progress",
    ]

    cold = _timed(cmd, env)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB -> GiB
    warm = _timed(cmd, env)
    helps = [_timed([exe, "--help"], env, quiet=True) for _ in range(5)]
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"results kept in {work}")
    print(f"cold_run_seconds: {cold:.1f}")
    print(f"cold_run_peak_rss_gb: {peak_gb:.2f}")
    print(f"warm_rerun_seconds: {warm:.2f}")
    print(f"help_seconds_median: {statistics.median(helps):.3f}")
    print(f"cold_target_ratio: {cold / 600:.2f}")
    print(f"warm_target_ratio: {warm / 10:.2f}")


if __name__ == "__main__":
    main()
