"""Same spec, same bytes: a smoke MoP run in two processes with 1 and 2 threads gives
identical generations and metrics (and one fingerprint); `config.json` records the
resolved dtype and the thread count. Uses the real default models (slow)."""

from __future__ import annotations

import json
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


def _run(out: Path, threads: int, cache: Path) -> Path:
    env = dict(os.environ, MOP_BENCH_THREADS=str(threads), MOP_BENCH_CACHE=str(cache))
    # Both processes share the dequantized model (not the embedding cache).
    models = Path(os.environ.get("MOP_BENCH_CACHE", Path.home() / ".cache" / "mop-bench"))
    cache.mkdir(parents=True, exist_ok=True)
    if (models / "models").exists() and not (cache / "models").exists():
        (cache / "models").symlink_to((models / "models").resolve())
    cmd = [sys.executable, "-m", "mop_bench.cli", "run", "--task", "yelp", "--sim", "mop"]
    cmd += ["--preset", "smoke", "--seed", "0", "--n", "32", "--data-dir", str(DATA)]
    cmd += ["--out", str(out), "--no-progress", "-q"]
    subprocess.run(cmd, env=env, check=True, timeout=1800)
    (run_dir,) = (out / "yelp").glob("mop-*")
    return run_dir


def test_one_and_two_threads_give_identical_runs(tmp_path: Path) -> None:
    one = _run(tmp_path / "one", 1, tmp_path / "cache1")
    two = _run(tmp_path / "two", 2, tmp_path / "cache2")
    assert one.name == two.name  # one fingerprint: threads do not change outputs
    for name in ("generations.jsonl", "metrics.json", "heldout.json", "fit/personas.json"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    configs = [json.loads((d / "config.json").read_text()) for d in (one, two)]
    assert [c["runtime"]["threads"] for c in configs] == [1, 2]
    assert configs[0]["runtime"]["lm_dtype"] in ("bfloat16", "float32")
    assert configs[0]["comparable_key"]["lm_dtype"] == configs[0]["runtime"]["lm_dtype"]
