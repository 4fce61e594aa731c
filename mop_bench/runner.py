"""The recipe of one run: load -> simulate -> embed -> score -> report.

Each stage reads what the previous one left in the run directory, so any stage can be
redone alone (`mop-bench score`, `mop-bench report`) and a killed run resumes where it
stopped. Shared heavy resources (the LM, the encoder, loaded task data) live in a
`Workspace`, so a comparison of many simulators loads each of them once.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mop_bench import store
from mop_bench.estimate import run_cost
from mop_bench.guard import check_size
from mop_bench.overrides import with_overrides
from mop_bench.paths import safe_name
from mop_bench.presets import preset as preset_values
from mop_bench.runtime import comparable_lm_dtype, fingerprinted, runtime_identity
from mop_bench.scoring import HELDOUT, score_stage
from mop_bench.spec import RunSpec
from mop_bench.types import Context, Generation
from mop_bench.validate import validate_spec
from mop_bench.workspace import Workspace

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
    allow_foreign_gates: bool = False
    """Accept `gates_from` gates fitted on another task or encoder (recorded in config.json)."""
    assume_yes: bool = False
    """Start a run even when its size estimate exceeds what the data or machine allow."""
    device: str = "auto"
    """Where the in-process LM and the encoder run: auto, cpu, cuda[:N] or mps
    (`mop_bench.devices`; recorded in config.json, and in the fingerprint off the CPU)."""


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
    spec = with_overrides(spec, overrides or {})
    validate_spec(spec)  # every range at once, before any data is read
    return spec


def run_dir_for(
    spec: RunSpec,
    task_data,
    results_dir: Path,
    gates_source=None,
    runtime=None,
    identity: dict[str, Any] | None = None,
) -> Path:
    """`<results>/<task>/<simulator>-<fingerprint>`; the fingerprint covers the spec, the
    data, transferred gates and what the machine contributes (`runtime.fingerprinted`),
    plus `identity` (e.g. an external generations file's hash: mop_bench/external.py)."""
    extra = _data_identity(task_data, gates_source)
    if runtime is not None:
        extra["runtime"] = fingerprinted(runtime)
    if identity:
        extra.update(identity)
    fingerprint = spec.fingerprint(extra=extra)
    # The card's name, not the --task string: that may be a path to a card or data file.
    # Both names become path components, so neither may climb out of `results_dir`.
    sim = safe_name(spec.simulator.name, "simulator")
    return results_dir / safe_name(task_data.card.name, "task") / f"{sim}-{fingerprint}"


def _data_identity(task_data, gates_source=None) -> dict[str, Any]:
    out = {"data_hash": task_data.data_hash, "task_version": task_data.card.version}
    # the card's prompt strings decide every prompt: an edited header is another run
    # even when the card's version was not bumped
    out["card_prompt"] = task_data.card.prompt_strings()
    if gates_source is not None:  # transferred gates decide the output as much as a setting
        out["gates_from"] = gates_source.content_hash
    return out


def chunk_indices(n: int, size: int) -> list[list[int]]:
    return [list(range(s, min(s + size, n))) for s in range(0, n, size)]


def run(
    spec: RunSpec, options: RunOptions | None = None, workspace: Workspace | None = None
) -> Path:
    """Run (or resume, or reuse) one run; returns its directory."""
    options = options or RunOptions()
    workspace = workspace or Workspace.for_options(options)
    timing: dict[str, float] = {}

    t0 = time.perf_counter()
    task_data = workspace.task(spec)  # stage 1: load
    timing["load"] = time.perf_counter() - t0
    source = _gates_source(spec, task_data, workspace, options)
    runtime = runtime_identity(spec, workspace.device)
    run_dir = run_dir_for(spec, task_data, options.results_dir, source, runtime)
    cost = run_cost(
        spec,
        task_data,
        run_dir,
        results_dir=options.results_dir,
        overwrite=options.overwrite,
        encoder=workspace.encoder(spec.encoder),  # not loaded: its cache is looked at
        transfer=source is not None,
        runtime=runtime,
    )
    # The estimate line (memory, disk, time, LM tokens), and no run directory at all
    # when the run cannot fit.
    check_size(spec, task_data, options.results_dir, assume_yes=options.assume_yes, cost=cost)
    with store.run_lock(run_dir):
        if options.overwrite:
            _clear(run_dir)
        _write_config(run_dir, spec, task_data, source, runtime)
        try:
            t0 = time.perf_counter()
            generations, gen_record = simulate_stage(
                spec, task_data, run_dir, workspace, options, source
            )
            timing["simulate"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            score_stage(run_dir, spec, task_data, generations, workspace)
            timing["embed_and_score"] = time.perf_counter() - t0
        except Exception as exc:
            store.mark_failed(run_dir, exc)  # report/compare/leaderboard then skip it
            raise
        store.clear_failed(run_dir)
        if options.report:
            t0 = time.perf_counter()
            report_stage(run_dir)
            timing["report"] = time.perf_counter() - t0
        _record_timing(run_dir, timing, gen_record)
    return run_dir


def _gates_source(spec: RunSpec, task_data, workspace: Workspace, options: RunOptions):
    """The checked identity of `options.gates_from` (None without a transfer)."""
    if options.gates_from is None:
        return None
    from mop_bench.mop.transfer import resolve_source

    return resolve_source(
        options.gates_from,
        spec,
        task_name=task_data.card.name,
        encoder_identity=str(workspace.encoder(spec.encoder).identity),
        allow_foreign=options.allow_foreign_gates,
    )


def _clear(run_dir: Path) -> None:
    for child in run_dir.iterdir():
        if child.name == ".lock":
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _write_config(
    run_dir: Path,
    spec: RunSpec,
    task_data,
    gates_source=None,
    runtime=None,
    extra: dict[str, Any] | None = None,
) -> None:
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
    if gates_source is not None:
        config["gates_from"] = gates_source.to_json()
        config["comparable_key"]["gates_from"] = gates_source.content_hash
    if runtime is not None:
        config["runtime"] = runtime  # resolved dtype, CPU kernels, threads
        config["comparable_key"]["lm_dtype"] = comparable_lm_dtype(spec, runtime)
    config.update(extra or {})  # e.g. `external`: the scored file's name and hash
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
    spec: RunSpec,
    task_data,
    run_dir: Path,
    workspace: Workspace,
    options: RunOptions,
    gates_source=None,
) -> tuple[list[Generation], dict[str, Any]]:
    """Fit (if needed), measure the held-out likelihood, and generate whatever chunks
    are missing; a finished run builds no simulator at all."""
    from mop_bench.data import draw_contexts

    contexts = draw_contexts(
        task_data, spec.budget.n_samples, spec.seed, spec.simulator.label_prior
    )
    chunks = chunk_indices(len(contexts), spec.budget.chunk_size)
    gen_log = store.GenerationLog(run_dir, chunks)
    missing = gen_log.missing_chunks()
    need_heldout = spec.simulator.kind in ("mop", "template") and not (run_dir / HELDOUT).is_file()
    record: dict[str, Any] = {"chunks": len(chunks), "chunks_generated": len(missing)}
    if missing or need_heldout:
        log.info("%s: %d of %d chunks to generate", run_dir.name, len(missing), len(chunks))
        # Counters are read before prepare() so that a fit's LM scoring (and persona
        # synthesis, and the held-out likelihood) is charged to this run's cost.
        lm_before = _lm_counters(workspace, spec)
        sim = _build(spec, task_data, run_dir, workspace, gates_source)
        t0 = time.perf_counter()
        fit_record = sim.prepare()
        store.write_json(run_dir / "fit_record.json", fit_record)
        if need_heldout:
            t1 = time.perf_counter()
            examples = heldout_examples(task_data, spec)
            result, cost = _heldout(sim, examples, run_dir)
            store.write_json(run_dir / HELDOUT, result)
            record["heldout_seconds"] = time.perf_counter() - t1
            record["heldout_cost"] = cost
        # The fit's cost includes the held-out likelihood's LM work (it needs the fit).
        record["prepare_seconds"] = time.perf_counter() - t0
        todo: list[list[Context]] = [[contexts[i] for i in chunks[n]] for n in missing]
        bar = _progress(
            total=len(contexts) - len(gen_log.rows), desc="generating", enabled=options.progress
        )
        if hasattr(sim, "resume"):  # a stateful simulator (ProGen) sees what is on disk
            sim.resume(list(gen_log.rows.values()))
        with workspace.stage_bar():
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
    if missing or not store.check_generations_hash(run_dir):
        store.record_generations_hash(run_dir)  # what `score` later checks the file against
    return gen_log.ordered(), record


def _heldout(sim, examples: list, run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The held-out likelihood, or why this backend cannot give it (a server that
    scores only at temperature 1, or whose echoed log-probs failed `mop-bench doctor`):
    generation through such a backend stays allowed, and the metric records the reason."""
    from mop_bench.lm.doctor import ScoringRefused

    try:
        result, cost = sim.heldout(examples, run_dir / "fit" / "heldout_cache")
    except (NotImplementedError, ScoringRefused) as exc:
        log.warning("%s: heldout_nll not available: %s", run_dir.name, exc)
        return {"unavailable": str(exc)}, {}
    log.info(
        "%s: heldout_nll %.4f nats/token (%s, %d examples)",
        run_dir.name,
        result["value"],
        result["estimator"],
        result["n_examples"],
    )
    return result, cost


def heldout_examples(task_data, spec: RunSpec) -> list:
    """The golden examples `heldout_nll` is measured on: a seeded subset (the run seed),
    the same for every simulator of that seed, so that runs pair row by row."""
    from mop_bench.data._sample import rng_for

    golden = task_data.golden
    n = min(spec.metrics.heldout_n, len(golden))
    picks = rng_for(spec.seed, "heldout_nll").choice(len(golden), size=n, replace=False)
    return [golden[i] for i in sorted(picks.tolist())]


def _build(spec, task_data, run_dir, workspace: Workspace, gates_source=None):
    from mop_bench.simulators import SimulationInputs, build_simulator

    inputs = SimulationInputs(
        spec=spec,
        task=task_data,
        encoder=workspace.encoder(spec.encoder),
        lm_factory=lambda: workspace.lm(spec.lm),
        artifacts_dir=run_dir / "fit",
        gates_from=gates_source,
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
