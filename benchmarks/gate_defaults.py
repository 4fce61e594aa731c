"""Choosing MoP's fit defaults by held-out likelihood (issue 9): fit each configuration
and measure `heldout_nll` on the same golden subset, without generating samples.

Every configuration shares one set of synthesized personas (written once, copied) and
one fit score cache (triples scored for one configuration are reused by the next), so
the comparison isolates the fit's settings. Lower held-out NLL is better; the gate
diagnostics say whether a setting keeps the mixture spread.

Usage:
    python benchmarks/gate_defaults.py --task yelp \
        --config default= --config no-entropy=fit.gate_entropy=0 \
        --config legacy=fit.selection=distinct_personas,fit.gate_logits=dot,...
Prints one `name: value` block per configuration, then a table.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any


def _overrides(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key.strip()] = value.strip()
    return out


def run_config(
    task: str, preset: str, seed: int, overrides: dict[str, str], work: Path, shared: Path
) -> dict[str, Any]:
    from mop_bench.mop import MoPSimulator
    from mop_bench.runner import build_spec, heldout_examples
    from mop_bench.simulators import SimulationInputs
    from mop_bench.workspace import Workspace

    overrides = dict(overrides)
    sim_name = overrides.pop("sim", "mop")  # e.g. sim=mop-uniform-gating
    spec = build_spec(task, sim_name, preset=preset, overrides=overrides, seed=seed)
    ws = WORKSPACE.setdefault("ws", Workspace(progress=False))
    task_data = ws.task(spec)
    work.mkdir(parents=True, exist_ok=True)
    for name in ("personas.json", "score_cache"):  # shared across configurations
        src, dst = shared / name, work / name
        if name == "score_cache":
            src.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                dst.symlink_to(src.resolve(), target_is_directory=True)
        elif src.exists() and not dst.exists():
            shutil.copy(src, dst)
    inputs = SimulationInputs(
        spec=spec,
        task=task_data,
        encoder=ws.encoder(spec.encoder),
        lm_factory=lambda: ws.lm(spec.lm),
        artifacts_dir=work,
    )
    sim = MoPSimulator(inputs)
    t0 = time.perf_counter()
    record = sim.prepare()
    fit_s = time.perf_counter() - t0
    if not (shared / "personas.json").exists():
        shutil.copy(work / "personas.json", shared / "personas.json")
    result, cost = sim.heldout(heldout_examples(task_data, spec), work / "heldout_cache")
    diag = record.get("diagnostics") or {}
    return {
        "heldout_nll": result["value"],
        "estimator": result["estimator"],
        "effective_personas": diag.get("effective_personas_marginal"),
        "effective_exemplars": diag.get("effective_exemplars"),
        "heldout_effective_exemplars": result["gates"].get("effective_exemplars"),
        "taus": record.get("taus"),
        "fit_lm_scorings": record["train"].get("lm_scorings"),
        "fit_seconds": round(fit_s, 1),
        "heldout_seconds": cost.get("wall_seconds"),
    }


WORKSPACE: dict[str, Any] = {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="yelp")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", action="append", default=[], help="NAME=key=v,key=v")
    ap.add_argument("--out", type=Path, default=Path("build/gate-defaults"))
    args = ap.parse_args()
    configs = [c.partition("=") for c in args.config] or [("default", "", "")]
    shared = args.out / args.task / f"seed{args.seed}" / "_shared"
    rows = []
    for name, _, text in configs:
        work = args.out / args.task / f"seed{args.seed}" / name
        res = run_config(args.task, args.preset, args.seed, _overrides(text), work, shared)
        rows.append((name, res))
        print(f"[{name}] " + "  ".join(f"{k}={v}" for k, v in res.items()), flush=True)
    print("\n| config | heldout_nll | eff. personas | eff. exemplars (fit / held out) |")
    print("|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['heldout_nll']:.4f} | {r['effective_personas']:.1f} | "
            f"{r['effective_exemplars']:.1f} / {r['heldout_effective_exemplars']:.1f} |"
        )


if __name__ == "__main__":
    main()
