"""Where a run directory stands, read from its files alone (no lock, no LM, no data).

`mop-bench ls runs` lists it for every run of a results folder, and `--dry-run` says
whether the run it would start exists already and how much of it is done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mop_bench import store


@dataclass
class RunState:
    """What a run directory holds."""

    run_dir: Path
    exists: bool
    task: str = ""
    simulator: str = ""
    fingerprint: str = ""
    created: str = ""
    """config.json's creation time (UTC, ISO 8601); empty before the run started."""
    n_samples: int = 0
    chunks_total: int = 0
    chunks_done: int = 0
    generated: int = 0
    """Distinct sample indices in generations.jsonl."""
    fitted: bool = False
    """The simulator's preparation finished (fit_record.json: a fit, personas...)."""
    heldout: bool = False
    scored: bool = False
    failed: str | None = None
    """The last invocation's error, when it failed."""
    rescore: list[str] = field(default_factory=list)
    """Why a scored run's metrics would be computed again under the spec `run_state` was
    given (`mop_bench.scoring.rescore_reasons`); empty when they are up to date."""

    @property
    def status(self) -> str:
        """scored | failed (...) | generated | incomplete (k/N chunks) | absent."""
        if not self.exists:
            return "absent"
        if self.failed is not None:
            return f"failed ({self.chunks_done}/{self.chunks_total} chunks): {self.failed}"
        if self.scored:
            return "scored"
        if self.chunks_total and self.chunks_done == self.chunks_total:
            return "generated"
        return f"incomplete ({self.chunks_done}/{self.chunks_total} chunks)"


def run_state(run_dir: Path, spec: Any = None) -> RunState:
    """The state of `run_dir`; `spec` (a RunSpec) sizes the run when config.json is
    missing (a run that was never started)."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        state = RunState(run_dir=run_dir, exists=False)
        if spec is not None:
            state.n_samples = spec.budget.n_samples
            state.chunks_total = -(-spec.budget.n_samples // spec.budget.chunk_size)
        return state
    try:
        config = store.read_json(config_path)
        run = config["spec"]
        n, size = int(run["budget"]["n_samples"]), int(run["budget"]["chunk_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return RunState(run_dir=run_dir, exists=True, failed=f"unreadable config.json ({exc})")
    indices = _generated_indices(run_dir / store.GENERATIONS, n)
    chunks = [range(s, min(s + size, n)) for s in range(0, n, size)]
    state = RunState(
        run_dir=run_dir,
        exists=True,
        task=str(config.get("task", {}).get("name", run.get("task", ""))),
        simulator=str(run.get("simulator", {}).get("name", "")),
        fingerprint=str(config.get("fingerprint", run_dir.name.rsplit("-", 1)[-1])),
        created=str(config.get("created", "")),
        n_samples=n,
        chunks_total=len(chunks),
        chunks_done=sum(all(i in indices for i in chunk) for chunk in chunks),
        generated=len(indices),
        fitted=(run_dir / "fit_record.json").is_file(),
        heldout=(run_dir / "heldout.json").is_file(),
        scored=(run_dir / "metrics.json").is_file(),
    )
    if state.scored and spec is not None:
        from mop_bench.scoring import rescore_reasons

        state.rescore = rescore_reasons(run_dir, spec)
    failed = run_dir / store.FAILED
    if failed.is_file():
        try:
            info = store.read_json(failed)
            state.failed = f"{info.get('error')}: {info.get('message')}"
        except (OSError, ValueError, AttributeError):
            state.failed = "unreadable failed.json"
    return state


def _generated_indices(path: Path, n: int) -> set[int]:
    """Sample indices in a generations file; a torn last line (a killed run) is skipped,
    as the run's own recovery drops it."""
    found: set[int] = set()
    if not path.is_file():
        return found
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                index = json.loads(line).get("index")
            except (ValueError, AttributeError):
                continue
            if isinstance(index, int) and 0 <= index < n:
                found.add(index)
    return found


def find_runs(results_dir: Path) -> list[Path]:
    """Run directories (holding config.json) under `results_dir`, at any depth up to
    `<task>/<run>`; comparison, sweep and cache folders are not runs."""
    if store.is_run_dir(results_dir):
        return [results_dir]
    runs = [p.parent for p in results_dir.glob("*/*/config.json")]
    return sorted(runs, key=lambda p: (p.parent.name, p.name))
