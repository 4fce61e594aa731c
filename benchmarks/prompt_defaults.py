"""Choosing the prompt defaults by measurement (issue 17): style, persona placement,
exemplars per prompt (L) and temperature, for SmolLM2-135M.

Never on the golden sets of the published tables: each task is re-declared as a *dev*
card whose pool and golden set both come from the train split (a fixed label-stratified
partition of it, `holdout_fraction` 0.5), so the test split is not touched. Each
configuration is one `mop-bench run` (the same contexts, seed and budget for all), and
the script prints FID, MAUVE, KL-cosine, `format` failures, copy rate, held-out NLL and
the mixture's spread as a Markdown table.

Usage:
    python benchmarks/prompt_defaults.py --task yelp --preset smoke --set n=128 \
        --config line=sim=mop --config preamble=sim=mop,prompt.persona_placement=preamble \
        --config none=sim=mop,prompt.persona_placement=none --config L1=sim=mop,L=1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def dev_card(task: str, folder: Path) -> Path:
    """A copy of the built-in card whose golden set comes from the train split."""
    import yaml

    from mop_bench.registry import cards_dir

    raw = yaml.safe_load((cards_dir("tasks") / f"{task}.yaml").read_text(encoding="utf-8"))
    train = raw["splits"][raw.get("pool_split", "train")]
    raw |= {
        "name": f"{task}_dev",
        "splits": {"train": train},
        "pool_split": "train",
        "golden_split": "train",
        "holdout_fraction": 0.5,
    }
    path = folder / f"{task}_dev.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _overrides(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key.strip()] = value.strip()
    return out


def run_one(card: Path, preset: str, overrides: dict[str, str], out: Path) -> dict[str, Any]:
    from mop_bench.runner import RunOptions, build_spec, run

    overrides = dict(overrides)
    sim = overrides.pop("sim", "mop")
    spec = build_spec(str(card), sim, preset=preset, overrides=overrides, seed=0)
    t0 = time.perf_counter()
    run_dir = run(spec, RunOptions(results_dir=out, progress=False, report=False))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "generations.jsonl").open()]
    uids = {u for r in rows for u in (r["details"].get("exemplar_uids") or [])}
    personas = {r["details"].get("persona_index") for r in rows} - {None}

    def value(name: str) -> float | None:
        m = metrics.get(name)
        return None if not isinstance(m, dict) else m.get("value")

    return {
        "run": run_dir.name,
        "fid": value("fid"),
        "mauve": value("mauve"),
        "kl_cosine": value("kl_cosine"),
        "format": value("format"),
        "copy_rate": value("copy_rate"),
        "heldout_nll": value("heldout_nll"),
        "exemplars": len(uids),
        "personas": len(personas),
        "seconds": round(time.perf_counter() - t0),
        "samples": [r["text"] for r in rows[:3]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="yelp")
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE for every config")
    ap.add_argument("--config", action="append", required=True, help="NAME=k=v,k=v")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="prompt-defaults-"))
    card = dev_card(args.task, folder)
    out = args.out or folder / "results"
    common = _overrides(",".join(args.set))
    results = {}
    for item in args.config:
        name, _, settings = item.partition("=")
        res = run_one(card, args.preset, common | _overrides(settings), out)
        results[name] = res
        print(f"{name}: " + json.dumps({k: v for k, v in res.items() if k != "samples"}))
        for text in res["samples"]:
            print("   |", " ".join(text.split())[:150])
    cols = ["fid", "mauve", "kl_cosine", "format", "copy_rate", "heldout_nll"]
    print(f"\n{args.task} (dev slice of the train split), preset {args.preset}, {common}")
    print("| config | " + " | ".join(cols) + " | exemplars | personas | s |")
    print("|---" * (len(cols) + 4) + "|")
    for name, res in results.items():
        cells = ["—" if res[c] is None else f"{res[c]:.3f}" for c in cols]
        print(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {res['exemplars']} | {res['personas']} | {res['seconds']} |"
        )


if __name__ == "__main__":
    main()
