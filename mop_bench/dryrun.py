"""`--dry-run`: what a run (or a comparison, ablation or sweep) would do and cost.

Resolves every spec exactly as the real command does (preset, --config, --set), reads
the task data (its hash is part of the fingerprint, and its sizes feed the estimate),
and prints the resolved settings, the run directory each run would use and how much of
it exists, and the cost estimate of `mop_bench.estimate`. Neither the LM nor the
encoder is loaded, and nothing is written: no run, results or cache directory.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mop_bench.estimate import CostEstimate, Work, size
from mop_bench.rates import Rates
from mop_bench.run_status import RunState, run_state

NOTE = "dry run: only the task data was read; no LM or encoder loaded, nothing written"


@dataclass
class Plan:
    """One run as it would start."""

    spec: Any
    task_data: Any
    run_dir: Path
    state: RunState
    runtime: dict[str, Any]
    cost: CostEstimate
    memory_line: str
    """The runner's memory estimate (mop_bench/guard.py), and why it would refuse."""
    overwrite: bool = False


def plan_run(spec: Any, options: Any, workspace: Any, rates: dict[Any, Rates]) -> Plan:
    """Resolve `spec` as `runner.run` does, up to its run directory; estimate its cost."""
    from mop_bench.estimate import run_cost
    from mop_bench.guard import estimate as size_estimate
    from mop_bench.rates import MACHINE_KEYS, recorded_rates
    from mop_bench.runner import _gates_source, run_dir_for
    from mop_bench.runtime import runtime_identity

    t0 = time.perf_counter()
    task_data = workspace.task(spec)
    load_seconds = time.perf_counter() - t0
    source = _gates_source(spec, task_data, workspace, options)
    runtime = runtime_identity(spec, workspace.device)
    run_dir = run_dir_for(spec, task_data, options.results_dir, source, runtime)
    machine = tuple(runtime.get(k) for k in MACHINE_KEYS)
    key = (str(options.results_dir), spec.lm.model, spec.lm.backend, machine)
    if key not in rates:
        rates[key] = recorded_rates(options.results_dir, spec.lm, runtime=runtime)
    cost = run_cost(
        spec,
        task_data,
        run_dir,
        results_dir=options.results_dir,
        overwrite=options.overwrite,
        encoder=workspace.encoder(spec.encoder),  # unloaded: only its cache is looked at
        transfer=source is not None,
        rates=rates[key],
    )
    if not cost.reused:
        cost.items.insert(0, Work("load the data", 0, 0, load_seconds))
    est = size_estimate(spec, task_data, options.results_dir, cost)
    memory = f"about {size(est.memory_bytes)} to score the samples"
    if est.available_memory is not None and est.free_disk is not None:
        memory += (
            f" (this machine: {size(est.available_memory)} memory available, "
            f"{size(est.free_disk)} free disk)"
        )
    if est.problems:
        memory += f"; the run would refuse to start without --yes: {'; '.join(est.problems)}"
    state = run_state(run_dir, spec)
    return Plan(spec, task_data, run_dir, state, runtime, cost, memory, options.overwrite)


def describe_run(plan: Plan) -> list[str]:
    """The resolved configuration of one run, its directory and its estimate."""
    spec, data = plan.spec, plan.task_data
    sim, b = spec.simulator, spec.budget
    dtype = plan.runtime.get("lm_dtype") or "n/a"
    lines = [
        f"task         {data.card.name}: pool {len(data.pool):,}, golden {len(data.golden):,}, "
        f"held-out {len(data.heldout):,} (data {data.data_hash})",
        f"simulator    {sim.name} ({sim.kind}): {simulator_summary(spec)}",
        f"preset       {spec.preset}, seed {spec.seed}",
        f"budget       {b.n_samples:,} samples x <= {b.max_new_tokens} new tokens, chunks of "
        f"{b.chunk_size}, temperature {b.temperature:g}, top_p {b.top_p:g}",
        f"LM           {lm_summary(spec, dtype)}; encoder {spec.encoder.model}",
        f"prompt       {prompt_summary(spec)}",
    ]
    if sim.kind == "mop":
        f, m = spec.fit, spec.metrics
        lines.append(
            f"fit          {f.epochs} epochs, {f.n_train} training examples, {f.candidates} "
            f"candidate pairs per block of {f.train_batch_size}, <= {f.score_max_tokens} "
            f"scored tokens each; held-out NLL on {m.heldout_n} examples x "
            f"{m.heldout_samples} pairs"
        )
    lines += [
        f"fingerprint  {plan.run_dir.name.rsplit('-', 1)[-1]}",
        f"run dir      {plan.run_dir}: {state_summary(plan.state, plan.overwrite)}",
        f"memory       {plan.memory_line}",
        "estimate     a small model of the run from its settings (LM calls x token caps "
        "/ rates), erring high; not a measurement:",
        *plan.cost.lines(),
    ]
    return lines


def simulator_summary(spec: Any) -> str:
    sim = spec.simulator
    if sim.kind == "real":
        cut = f"cut to {spec.budget.max_new_tokens} tokens" if sim.length_matched else "full"
        return f"held-out real texts ({cut}), no LM"
    if sim.kind == "template":
        source = str(sim.template.get("source", "")).split(":")[0]
        return f"a literature generator ({source}); labels {sim.label_prior}"
    ex = sim.exemplars
    if ex != "none":
        match = f", match {'/'.join(sim.exemplar_match)}" if sim.exemplar_match else ""
        ex = f"{ex} L={sim.exemplars_per_prompt}{match}"
        if sim.exemplar_selection != "seeded":
            ex += f" ({sim.exemplar_selection})"
    personas = sim.personas if sim.personas == "none" else f"{sim.personas} x{sim.n_personas}"
    return (
        f"personas {personas}, exemplars {ex}, gating {sim.gating}, temperature {sim.temperature}"
    )


def lm_summary(spec: Any, dtype: str) -> str:
    if spec.simulator.kind == "real":
        return f"none (the tokenizer of {spec.lm.model} only)"
    where = f", {spec.lm.base_url}" if spec.lm.base_url else ""
    return f"{spec.lm.model} ({spec.lm.backend}{where}, dtype {spec.lm.dtype} -> {dtype})"


def prompt_summary(spec: Any) -> str:
    p = spec.prompt
    if spec.simulator.kind == "template":
        return "the generator's own prompts (simulator.template)"
    if spec.simulator.kind == "real":
        return "none"
    stops = ", ".join(repr(s) for s in p.stop) or "EOS only"
    return (
        f"{p.style} (personas shown: {p.persona_placement}, stop {stops}, exemplars "
        f"cut at {p.exemplar_words} words)"
    )


def state_summary(state: RunState, overwrite: bool = False) -> str:
    if not state.exists:
        return "does not exist yet (a fresh run)"
    if overwrite:
        return f"exists ({state.status}); --overwrite would recompute it from scratch"
    if state.status == "scored":
        reused = f"exists and is scored ({state.created}): it would be reused, no LM work"
        if state.rescore:
            # embeddings of the golden set (and, cold, of the samples): seconds to a minute
            reused += f"; its metrics would be computed again ({'; '.join(state.rescore)})"
        return reused
    done = f"{state.chunks_done}/{state.chunks_total} chunks generated"
    fit = ", fit done" if state.fitted else ""
    return f"exists, {state.status}; it would resume ({done}{fit})"


def print_plans(plans: list[Plan], *, what: str, labels: list[str] | None = None) -> None:
    """One full block for a single run; a shared header and one line per run else
    (`labels`: what tells runs apart beyond simulator and seed, e.g. a sweep point)."""
    print(f"mop-bench {what} --dry-run ({NOTE})")
    if len(plans) == 1:
        print("\n".join(describe_run(plans[0])))
        return
    # the shared lines of a run that uses the LM (a `real` run has no LM or prompt)
    first = next((p for p in plans if p.spec.simulator.kind == "mop"), plans[0])
    header = describe_run(first)[:6]
    print("\n".join(line for line in header if not line.startswith(("simulator", "preset"))))
    print(f"preset       {first.spec.preset}; {len(plans)} runs:")
    for p, label in zip(plans, labels or [""] * len(plans), strict=True):
        name = f"{p.spec.simulator.name} {label}".strip()
        print(
            f"  {name:24s} seed {p.spec.seed:<3d} {p.run_dir}  "
            f"[{short_state(p.state)}]  {p.cost.summary()}"
        )
    total = CostEstimate(rates=first.cost.rates)
    total.items = [w for p in plans for w in p.cost.items]
    total.disk_bytes = sum(p.cost.disk_bytes for p in plans)
    total.cache_bytes = sum(p.cost.cache_bytes for p in plans)
    print(
        "estimate     a small model of each run from its settings (LM calls x token caps / "
        "rates), erring high; not a measurement"
    )
    print(f"  total: {total.summary()}")
    print(f"  rates assumed: {first.cost.rates.describe()}")


def short_state(state: RunState) -> str:
    return "new" if not state.exists else state.status


def grid_points(axes: dict[str, list[str]]) -> list[dict[str, str]]:
    """The points of a sweep's grid, in the order `compare.sweep` runs them."""
    keys = list(axes)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]


def dry_run(
    specs: list[Any], options: Any, workspace: Any, *, what: str, labels: list[str] | None = None
) -> int:
    rates: dict[Any, Rates] = {}
    plans = [plan_run(spec, options, workspace, rates) for spec in specs]
    print_plans(plans, what=what, labels=labels)
    return 0
