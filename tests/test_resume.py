"""A run killed with SIGKILL part-way through generation, then started again, ends with
generations byte-identical to an uninterrupted run; a finished run makes no LM call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent


def _csv(path: Path) -> Path:
    rng = np.random.default_rng(1)
    words = ["great", "awful", "food", "slow", "friendly", "cold", "fresh", "loud"]
    lines = ["text,label"] + [
        f"{' '.join(rng.choice(words, size=10))},{'pos' if i % 3 else 'neg'}" for i in range(600)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cmd(data: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        str(HERE / "_fake_cli.py"),
        "run",
        "--task",
        "toy",
        "--sim",
        "mop",
        "--preset",
        "smoke",
        "--data",
        str(data),
        "--text-column",
        "text",
        "--label-column",
        "label",
        "--backend",
        "fake",
        "--n",
        "96",
        "--set",
        "budget.chunk_size=8",
        "--set",
        "pool=120",
        "--set",
        "golden=150",
        "--set",
        "metrics.mauve_seeds=25",
        "--out",
        str(out),
        "--no-progress",
        "-q",
    ]


def _gen_file(out: Path) -> Path:
    files = list(out.glob("toy/mop-*/generations.jsonl"))
    assert len(files) == 1, files
    return files[0]


def test_kill_9_mid_generation_then_resume_is_byte_identical(tmp_path):
    data = _csv(tmp_path / "toy.csv")
    env = {**os.environ, "FAKE_LM_DELAY": "0.3", "MOP_BENCH_CACHE": str(tmp_path / "cache")}

    # Reference: an uninterrupted run.
    subprocess.run(_cmd(data, tmp_path / "ref"), env=env, check=True, timeout=240)
    reference = _gen_file(tmp_path / "ref").read_bytes()

    # Killed run: wait until a few chunks are on disk, then SIGKILL.
    proc = subprocess.Popen(_cmd(data, tmp_path / "killed"), env=env)
    deadline = time.time() + 200
    while time.time() < deadline:
        files = list((tmp_path / "killed").glob("toy/mop-*/generations.jsonl"))
        if files and files[0].read_bytes().count(b"\n") >= 24:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the run never started writing generations")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _gen_file(tmp_path / "killed").read_bytes().count(b"\n")
    assert 0 < partial < 96, "the kill must land part-way through generation"

    subprocess.run(_cmd(data, tmp_path / "killed"), env=env, check=True, timeout=240)
    assert _gen_file(tmp_path / "killed").read_bytes() == reference

    # A finished run is reused: no LM is built (an LM that fails to load proves it).
    t0 = time.perf_counter()
    env_broken = {**env, "FAKE_LM_DELAY": "not-a-number"}
    subprocess.run(_cmd(data, tmp_path / "killed"), env=env_broken, check=True, timeout=120)
    assert time.perf_counter() - t0 < 60
    assert _gen_file(tmp_path / "killed").read_bytes() == reference

    # Cost accounting: the fit's LM scoring is charged to the run, and totals count
    # only invocations that finished (the killed one left no entry).
    from mop_bench.report.load import read_cost

    ref_cost = read_cost(_gen_file(tmp_path / "ref").parent)
    assert ref_cost["invocations"] == 1
    assert ref_cost["lm_score_tokens"] > 0 and ref_cost["lm_generate_tokens"] > 0
    assert 0 < ref_cost["prepare_seconds"] < ref_cost["simulate_seconds"]
    assert read_cost(_gen_file(tmp_path / "killed").parent)["invocations"] == 2


def test_two_processes_on_one_results_dir_do_not_corrupt_it(tmp_path):
    """The same run started twice at once: one generates, the other waits on the run
    lock and then reuses; a different seed runs beside them. All match lone runs."""
    data = _csv(tmp_path / "toy.csv")
    env = {**os.environ, "FAKE_LM_DELAY": "0.3", "MOP_BENCH_CACHE": str(tmp_path / "cache")}
    seed1 = ["--seed", "1"]
    subprocess.run(_cmd(data, tmp_path / "ref"), env=env, check=True, timeout=240)
    subprocess.run(_cmd(data, tmp_path / "ref") + seed1, env=env, check=True, timeout=240)
    procs = [
        subprocess.Popen(_cmd(data, tmp_path / "both") + extra, env=env)
        for extra in ([], [], seed1)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    for ref, got in zip(
        sorted((tmp_path / "ref").glob("toy/mop-*")),
        sorted((tmp_path / "both").glob("toy/mop-*")),
        strict=True,
    ):
        for name in ("generations.jsonl", "metrics.json"):
            assert (got / name).read_bytes() == (ref / name).read_bytes(), (got, name)
