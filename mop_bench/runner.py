"""The recipe of one run: load -> simulate -> embed -> score -> report.

Each stage reads what the previous one left in the run directory, so any stage can be
redone alone (`mop-bench score`, `mop-bench report`) and a killed run resumes where it
stopped. Shared heavy resources (the LM, the encoder, loaded task data) live in a
`Workspace`, so a comparison of many simulators loads each of them once.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mop_bench import store
from mop_bench.presets import preset as preset_values
from mop_bench.scoring import score_stage
from mop_bench.spec import EncoderSpec, LMSpec, RunSpec, with_overrides
from mop_bench.types import Context, Generation

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """How to run, never what is computed: none of this enters the fingerprint."""

    results_dir: Path = Path("results")
    progress: bool = True
    overwrite: bool = False
    """Recompute everything, discarding the run directory's previous contents."""
    gates_from: Path | None = None
    """Reuse personas, gates and temperatures fitted in this earlier run (transfer)."""
    lm_batch_size: int | None = None
    """Scoring batch size for the LM backend (generation batches are the budget's chunks)."""
    report: bool = True


def build_spec(
    task: str,
    simulator: str,
    *,
    preset: str = "default",
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
) -> RunSpec:
    """Resolve names and a preset into a RunSpec; overrides win over the preset."""
    from mop_bench.simulators import resolve_simulator

    sim = resolve_simulator(simulator)
    spec = RunSpec(task=task, simulator=sim, seed=seed, preset=preset)
    values = preset_values(preset)
    if sim.kind == "mop" and "simulator.n_personas" in values and sim.personas == "none":
        values.pop("simulator.n_personas")  # a persona count means nothing without personas
    spec = with_overrides(spec, values)
    return with_overrides(spec, overrides or {})


@dataclass
class Workspace:
    """Loaded resources shared by the runs of one process."""

    progress: bool = True
    lm_batch_size: int | None = None
    _lms: dict[LMSpec, Any] = field(default_factory=dict)
    _encoders: dict[EncoderSpec, Any] = field(default_factory=dict)
    _tasks: dict[tuple, Any] = field(default_factory=dict)
    _cards: dict[tuple, Any] = field(default_factory=dict)

    def card(self, spec: RunSpec):
        d = spec.data
        key = (spec.task, d.data_file, d.text_column, d.label_column)
        if key not in self._cards:
            from mop_bench.data import resolve_task

            self._cards[key] = resolve_task(
                spec.task,
                data_file=d.data_file,
                text_column=d.text_column,
                label_column=d.label_column,
            )
        return self._cards[key]

    def task(self, spec: RunSpec):
        key = (spec.task, spec.data, spec.seed)
        if key not in self._tasks:
            from mop_bench.data import load_task

            self._tasks[key] = load_task(
                self.card(spec), spec.data, spec.seed, progress=self.progress
            )
        return self._tasks[key]

    def encoder(self, spec: EncoderSpec):
        if spec not in self._encoders:
            from mop_bench.embed import Encoder

            self._encoders[spec] = Encoder(spec, progress=self.progress)
        return self._encoders[spec]

    def lm(self, spec: LMSpec):
        if spec not in self._lms:
            from mop_bench.lm import load_lm

            t0 = time.perf_counter()
            kwargs = {"progress": self.progress}
            if self.lm_batch_size:
                kwargs["batch_size"] = self.lm_batch_size
            self._lms[spec] = load_lm(spec, **kwargs)
            log.info("loaded LM %s in %.1fs", spec.model, time.perf_counter() - t0)
        return self._lms[spec]


def run_dir_for(spec: RunSpec, task_data, results_dir: Path) -> Path:
    fingerprint = spec.fingerprint(extra=_data_identity(task_data))
    # The card's name, not the --task string: that may be a path to a card or data file.
    safe_task = re.sub(r"[^A-Za-z0-9_.-]+", "_", task_data.card.name).strip("._") or "task"
    return results_dir / safe_task / f"{spec.simulator.name}-{fingerprint}"


def _data_identity(task_data) -> dict[str, Any]:
    return {"data_hash": task_data.data_hash, "task_version": task_data.card.version}


def chunk_indices(n: int, size: int) -> list[list[int]]:
    return [list(range(s, min(s + size, n))) for s in range(0, n, size)]


def run(
    spec: RunSpec, options: RunOptions | None = None, workspace: Workspace | None = None
) -> Path:
    """Run (or resume, or reuse) one run; returns its directory."""
    options = options or RunOptions()
    workspace = workspace or Workspace(
        progress=options.progress, lm_batch_size=options.lm_batch_size
    )
    timing: dict[str, float] = {}

    t0 = time.perf_counter()
    task_data = workspace.task(spec)  # stage 1: load
    timing["load"] = time.perf_counter() - t0
    run_dir = run_dir_for(spec, task_data, options.results_dir)
    with store.run_lock(run_dir):
        if options.overwrite:
            _clear(run_dir)
        _write_config(run_dir, spec, task_data)
        t0 = time.perf_counter()
        generations, gen_record = simulate_stage(spec, task_data, run_dir, workspace, options)
        timing["simulate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        score_stage(run_dir, spec, task_data, generations, workspace)
        timing["embed_and_score"] = time.perf_counter() - t0
        if options.report:
            t0 = time.perf_counter()
            report_stage(run_dir)
            timing["report"] = time.perf_counter() - t0
        _record_timing(run_dir, timing, gen_record)
    return run_dir


def _clear(run_dir: Path) -> None:
    for child in run_dir.iterdir():
        if child.name == ".lock":
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _write_config(run_dir: Path, spec: RunSpec, task_data) -> None:
    from mop_bench.environment import capture, code_version

    card = task_data.card
    config = {
        "spec": spec.to_json(),
        "fingerprint": run_dir.name.rsplit("-", 1)[-1],
        "task": dataclasses.asdict(card),
        "data": {
            "hash": task_data.data_hash,
            "pool_size": len(task_data.pool),
            "golden_size": len(task_data.golden),
            "heldout_size": len(task_data.heldout),
            "sources": task_data.sources,
        },
        "comparable_key": spec.comparable_key()
        | {"source_hash": task_data.source_hash, "task_version": card.version},
        "code": code_version(),
    }
    path = run_dir / "config.json"
    if path.exists():
        old = store.read_json(path)
        stable = {"created", "code"}
        if {k: v for k, v in old.items() if k not in stable} == {
            k: v for k, v in store.jsonable(config).items() if k not in stable
        }:
            return  # unchanged: keep the original creation time and code version
    config["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    store.write_json(path, config)
    store.write_json(run_dir / "environment.json", capture())


def simulate_stage(
    spec: RunSpec, task_data, run_dir: Path, workspace: Workspace, options: RunOptions
) -> tuple[list[Generation], dict[str, Any]]:
    """Generate whatever chunks are missing; a finished run builds no simulator at all."""
    from mop_bench.data import draw_contexts

    contexts = draw_contexts(task_data, spec.budget.n_samples, spec.seed)
    chunks = chunk_indices(len(contexts), spec.budget.chunk_size)
    gen_log = store.GenerationLog(run_dir, chunks)
    missing = gen_log.missing_chunks()
    record: dict[str, Any] = {"chunks": len(chunks), "chunks_generated": len(missing)}
    if missing:
        log.info("%s: %d of %d chunks to generate", run_dir.name, len(missing), len(chunks))
        # Counters are read before prepare() so that a fit's LM scoring (and persona
        # synthesis) is charged to this run's cost, not only the sampling.
        lm_before = _lm_counters(workspace, spec)
        sim = _build(spec, task_data, run_dir, workspace, options)
        t0 = time.perf_counter()
        fit_record = sim.prepare()
        record["prepare_seconds"] = time.perf_counter() - t0
        store.write_json(run_dir / "fit_record.json", fit_record)
        todo: list[list[Context]] = [[contexts[i] for i in chunks[n]] for n in missing]
        bar = _progress(
            total=len(contexts) - len(gen_log.rows), desc="generating", enabled=options.progress
        )
        for gens in sim.simulate(todo):
            gen_log.append_chunk(gens)
            bar.update(len(gens))
        bar.close()
        record["lm"] = _lm_delta(lm_before, _lm_counters(workspace, spec))
    else:
        log.info(
            "%s: all %d generations already present; no LM needed", run_dir.name, len(contexts)
        )
    gen_log.finalize()
    return gen_log.ordered(), record


def _build(spec, task_data, run_dir, workspace: Workspace, options: RunOptions):
    from mop_bench.simulators import SimulationInputs, build_simulator

    inputs = SimulationInputs(
        spec=spec,
        task=task_data,
        encoder=workspace.encoder(spec.encoder),
        lm_factory=lambda: workspace.lm(spec.lm),
        artifacts_dir=run_dir / "fit",
        gates_from=options.gates_from,
    )
    return build_simulator(inputs)


def _lm_counters(workspace: Workspace, spec: RunSpec) -> dict[str, float]:
    """The LM's work counters so far; all zero while no LM is loaded (a `real` run
    never loads one, and its cost then says 0 tokens rather than "unknown")."""
    from mop_bench.lm.base import LMStats

    lm = workspace._lms.get(spec.lm)
    stats = lm.stats if lm is not None else LMStats()
    return {k: v for k, v in vars(stats).items() if isinstance(v, int | float)}


def _lm_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0) for k in after}


def _progress(*, total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, unit="sample")


def report_stage(run_dir: Path) -> Path:
    from mop_bench.report import render_run

    return render_run(run_dir)


def _record_timing(run_dir: Path, timing: dict[str, float], gen_record: dict[str, Any]) -> None:
    """Wall times go in their own file: metrics.json must not change between re-runs.

    `history` keeps the last 20 invocations; `totals` sums every finished invocation,
    so a run's cost survives any number of cheap re-runs.
    """
    path = run_dir / "timing.json"
    old = store.read_json(path) if path.exists() else {}
    history = old.get("history", [])
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": timing,
        "simulate": gen_record,
    }
    totals = old.get("totals") or store.timing_totals(history)
    store.write_json(
        path,
        {
            "latest": entry,
            "totals": store.timing_totals([entry], totals),
            "history": [*history, entry][-20:],
        },
    )
