"""The thread count is part of a CPU run's identity: a smoke MoP run asked for with
`MOP_BENCH_THREADS=1` and `=2` is two runs (two fingerprints), checked by `--dry-run` in
two processes (seconds; nothing is computed or written). Whether the count changes the
bytes depends on the very CPU: 1 and 2 threads gave identical runs on one AVX512
machine, other generations on an AVX2 machine and other generations and embeddings on
another AVX512 machine (2026-12-07; docs/report.md, "Reproducibility"). Uses the real
task data (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(
    os.environ.get("MOP_BENCH_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA / "yelp").is_dir(), reason=f"data mirrors not found at {DATA}"),
]


def _run_dir(out: Path, threads: int, cache: Path) -> Path:
    """The run folder `mop-bench run --dry-run` names for `threads` threads."""
    env = dict(os.environ, MOP_BENCH_THREADS=str(threads), MOP_BENCH_CACHE=str(cache))
    cmd = [sys.executable, "-m", "mop_bench.cli", "run", "--task", "yelp", "--sim", "mop"]
    cmd += ["--preset", "smoke", "--seed", "0", "--n", "32", "--data-dir", str(DATA)]
    cmd += ["--out", str(out), "--no-progress", "-q", "--dry-run"]
    text = subprocess.run(
        cmd, env=env, check=True, timeout=600, capture_output=True, text=True
    ).stdout
    line = next(ln for ln in text.splitlines() if ln.startswith("run dir"))
    return Path(line.split()[2].rstrip(":"))


def test_one_and_two_threads_are_two_runs(tmp_path: Path) -> None:
    one = _run_dir(tmp_path / "one", 1, tmp_path / "cache1")
    two = _run_dir(tmp_path / "two", 2, tmp_path / "cache2")
    again = _run_dir(tmp_path / "two", 2, tmp_path / "cache3")
    assert one.name != two.name and two.name == again.name
    assert not any((tmp_path / d).exists() for d in ("one", "two"))
