"""Same spec, same bytes: a smoke MoP run in two processes with 1 and 2 threads gives
identical generations and metrics (and one fingerprint) on the CPU kinds where that was
measured (`mop_bench.runtime.THREAD_INVARIANT`); elsewhere (an AVX2 CPU in fp32 generated
other texts with 2 threads) the two are other runs: their fingerprints differ.
`config.json` records the resolved dtype and the thread count. Uses the real default
models (slow)."""

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


def _run(out: Path, threads: int, cache: Path, *, dry_run: bool = False) -> Path:
    env = dict(os.environ, MOP_BENCH_THREADS=str(threads), MOP_BENCH_CACHE=str(cache))
    # Both processes share the dequantized model (not the embedding cache).
    models = Path(os.environ.get("MOP_BENCH_CACHE", Path.home() / ".cache" / "mop-bench"))
    cache.mkdir(parents=True, exist_ok=True)
    if (models / "models").exists() and not (cache / "models").exists():
        (cache / "models").symlink_to((models / "models").resolve())
    cmd = [sys.executable, "-m", "mop_bench.cli", "run", "--task", "yelp", "--sim", "mop"]
    cmd += ["--preset", "smoke", "--seed", "0", "--n", "32", "--data-dir", str(DATA)]
    cmd += ["--out", str(out), "--no-progress", "-q"]
    if dry_run:  # prints the run folder it would make, and makes nothing
        text = subprocess.run(
            [*cmd, "--dry-run"], env=env, check=True, timeout=600, capture_output=True, text=True
        ).stdout
        line = next(ln for ln in text.splitlines() if ln.startswith("run dir"))
        return Path(line.split()[2].rstrip(":"))
    subprocess.run(cmd, env=env, check=True, timeout=1800)
    (run_dir,) = (out / "yelp").glob("mop-*")
    return run_dir


def test_one_and_two_threads_give_identical_runs(tmp_path: Path) -> None:
    from mop_bench.runner import build_spec
    from mop_bench.runtime import runtime_identity, thread_invariant

    if not thread_invariant(runtime_identity(build_spec("yelp", "mop", preset="smoke"))):
        # not measured invariant here: 1 and 2 threads must be two runs, not one
        one = _run(tmp_path / "one", 1, tmp_path / "cache1", dry_run=True)
        two = _run(tmp_path / "two", 2, tmp_path / "cache2", dry_run=True)
        assert one.name != two.name
        assert not (tmp_path / "one").exists() and not (tmp_path / "two").exists()
        return
    one = _run(tmp_path / "one", 1, tmp_path / "cache1")
    two = _run(tmp_path / "two", 2, tmp_path / "cache2")
    assert one.name == two.name  # one fingerprint: threads do not change outputs
    for name in ("generations.jsonl", "metrics.json", "heldout.json", "fit/personas.json"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    configs = [json.loads((d / "config.json").read_text()) for d in (one, two)]
    assert [c["runtime"]["threads"] for c in configs] == [1, 2]
    assert configs[0]["runtime"]["lm_dtype"] in ("bfloat16", "float32")
    assert configs[0]["comparable_key"]["lm_dtype"] == configs[0]["runtime"]["lm_dtype"]
