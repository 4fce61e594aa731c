"""Options are checked before any work, and errors and help say what to do (issue 19,
items 8, 10 and 11)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mop_bench import __version__
from mop_bench.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, out: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """The real entry point in a fresh process, so the time includes every import."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "MOP_BENCH_RESULTS": str(out)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mop_bench.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,  # before the fix these loaded the data and the encoder first
        cwd=out,
    )
    return proc, time.perf_counter() - start


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backend", "foo"], "'foo' is not a backend"),
        (["--backend", "openai"], "the openai backend needs the server's address: --base-url"),
        (["--backend", "openai", "--base-url", "localhost:8000"], "is not an http(s) URL"),
        (["--model", " "], "lm.model (--model) must name a model"),
    ],
)
def test_bad_options_fail_at_once_with_one_line(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    proc, seconds = _cli("run", "--task", "yelp", "--sim", "mop", *extra, out=tmp_path)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err.startswith("mop-bench: error: invalid settings: ") and "\n" not in err
    assert message in err
    assert seconds < 3.0, f"took {seconds:.1f} s: options must be checked before any work"
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_version_and_help_name_positionals_and_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"mop-bench {__version__}"
    helps = {}
    for command in ("score", "report", "run"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        helps[command] = " ".join(capsys.readouterr().out.split())
    assert "RUN_DIR run directory (results/<task>/<sim>-<fingerprint>)" in helps["score"]
    assert "DIR a run directory, or a comparison or sweep directory" in helps["report"]
    assert "transformers (default, in process)" in helps["run"]


def test_config_and_set_errors_are_short_and_name_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.yaml"
    args = ["run", "--task", "yelp", "--sim", "mop", "--out", str(tmp_path)]
    assert main([*args, "--config", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mop-bench: error: {missing}: --config file not found"
    assert main([*args, "--set", "fit.epoch=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown setting 'fit.epoch' (did you mean 'fit.epochs'" in err
    assert "metrics.kl_bins" not in err and len(err) < 200  # not the ~80 names any more
    assert "mop-bench ls settings" in err
